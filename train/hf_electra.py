"""strata's ELECTRA (train/electra.py) -> transformers' ELECTRA classes, weight for weight.

    discriminator  -> ElectraForPreTraining: the post-LN encoder stack, then
                      discriminator_predictions (dense, GELU, dense_prediction <-
                      discriminator_head 0 and 2)
    generator      -> ElectraForMaskedLM: the shared embeddings (embedding_size = the
                      discriminator's width), embeddings_project <- generator.project, the
                      generator's post-LN blocks, generator_predictions (dense, GELU,
                      LayerNorm <- generator.head), generator_lm_head tied to the token
                      matrix with generator_bias

A post-LN block (train/encoder.py's PostLNBlock) is BERT's layer: c_attn is query, key and
value stacked; attn.c_proj and ln_1 are attention.output's dense and LayerNorm; mlp.c_fc
is intermediate.dense; mlp.c_proj and ln_2 are output's dense and LayerNorm. ELECTRA
numbers positions from 0, as strata; its single token-type row is zero.
"""

from __future__ import annotations

import torch

from strata.train.electra import Electra, generator_config
from strata.train.encoder import EncoderConfig
from strata.train.hf_common import QKV, ArchitectureError, renamed, split_linear, with_zero_biases

LAYER = {"ln_1": "attention.output.LayerNorm", "attn.c_proj": "attention.output.dense",
         "mlp.c_fc": "intermediate.dense", "mlp.c_proj": "output.dense", "ln_2": "output.LayerNorm"}


def electra_config(config: EncoderConfig, specials: dict, generator: bool):
    """The discriminator's config, or (`generator`) the generator's."""
    from transformers import ElectraConfig

    if not config.post_ln:
        raise ArchitectureError("this ELECTRA model has pre-LN blocks (post_ln=False); transformers' ELECTRA is post-LN")
    if config.activation != "gelu":
        raise ArchitectureError("ELECTRA's prediction heads use the exact GELU; this model uses gelu_tanh")
    width = generator_config(config, config.generator_ratio) if generator else config
    return ElectraConfig(
        vocab_size=config.vocab_size, embedding_size=config.n_embd, hidden_size=width.n_embd,
        num_hidden_layers=config.n_layer, num_attention_heads=width.n_head, intermediate_size=4 * width.n_embd,
        hidden_act="gelu", max_position_embeddings=config.seq_len, type_vocab_size=1, layer_norm_eps=config.norm_eps,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=specials.get("pad"),
        bos_token_id=specials.get("bos"), eos_token_id=specials.get("eos"), tie_word_embeddings=True,
        architectures=["ElectraForMaskedLM" if generator else "ElectraForPreTraining"],
    )


def _electra_body(ours: dict, stack: str, n_layer: int) -> dict:
    """`electra.*` of HF: the shared embeddings and the blocks under `stack` (discriminator.h
    or generator.h)."""
    C = ours["discriminator.wte.weight"].shape[1]
    state = {"electra.embeddings.word_embeddings.weight": ours["discriminator.wte.weight"],
             "electra.embeddings.position_embeddings.weight": ours["discriminator.wpe.weight"],
             "electra.embeddings.token_type_embeddings.weight": torch.zeros(1, C),
             **renamed(ours, {"discriminator.ln_e": "electra.embeddings.LayerNorm"})}
    for i in range(n_layer):
        block, layer = f"{stack}.{i}", f"electra.encoder.layer.{i}"
        state.update(renamed(ours, {f"{block}.{a}": f"{layer}.{b}" for a, b in LAYER.items()}))
        state.update(split_linear(ours, f"{block}.attn.c_attn", [f"{layer}.attention.self.{p}" for p in QKV]))
    return state


def discriminator_to_hf(model: Electra, specials: dict):
    from transformers import ElectraForPreTraining

    hf = ElectraForPreTraining(electra_config(model.config, specials, generator=False))
    ours = with_zero_biases(model.state_dict(), model)
    state = _electra_body(ours, "discriminator.h", model.config.n_layer)
    state.update(renamed(ours, {"discriminator_head.0": "discriminator_predictions.dense",
                                "discriminator_head.2": "discriminator_predictions.dense_prediction"}))
    hf.load_state_dict(state, strict=True)
    return hf.eval()


def generator_to_hf(model: Electra, specials: dict):
    """ElectraForMaskedLM, or None when the generator is as wide as the discriminator (HF's
    ELECTRA then has no embeddings_project for generator.project)."""
    from transformers import ElectraForMaskedLM

    config = electra_config(model.config, specials, generator=True)
    if config.hidden_size == config.embedding_size:
        return None
    hf = ElectraForMaskedLM(config)
    ours = with_zero_biases(model.state_dict(), model)
    state = _electra_body(ours, "generator.h", model.config.n_layer)
    state.update(renamed(ours, {"generator.project": "electra.embeddings_project",
                                "generator.head.0": "generator_predictions.dense",
                                "generator.head.2": "generator_predictions.LayerNorm"}))
    state["generator_lm_head.weight"] = ours["discriminator.wte.weight"]
    state["generator_lm_head.bias"] = ours["generator_bias"]
    hf.load_state_dict(state, strict=True)
    return hf.eval()
