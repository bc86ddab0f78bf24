"""strata's encoder-decoder (train/t5.py) -> transformers' `MBartForConditionalGeneration`,
weight for weight (no approximation).

mBART is BART with pre-LN blocks, and so has t5.py's layout: learned positions per side,
a LayerNorm on each side's embeddings (`layernorm_embedding` <- `ln_e`), pre-LN blocks, a
final LayerNorm per side (`layer_norm` <- `ln_f`), one tied token matrix, unscaled
(`scale_embedding=False`). The names:

    c_attn (query, key, value stacked)  -> self_attn.q_proj, k_proj, v_proj
    attn.c_proj                         -> self_attn.out_proj
    cross.q_proj, cross.kv_proj, c_proj -> encoder_attn.q_proj, k_proj + v_proj, out_proj
    ln_1, ln_cross, ln_2                -> self_attn_layer_norm, encoder_attn_layer_norm,
                                           final_layer_norm (mBART's name for the MLP's)
    mlp.c_fc, mlp.c_proj                -> fc1, fc2

mBART numbers positions from row 2 of its tables (BART's offset): strata's position p is
HF's row p + 2, rows 0 and 1 zero. `final_logits_bias` is zero. The decoder starts from
the pad token (`decoder_start_token_id`), as strata's teacher forcing does
(objectives/examples.py). mBART's own label shift (`model(labels=...)` without
`decoder_input_ids`) starts the decoder from each row's last token instead: pass
`decoder_input_ids` (pad + target[:-1]) to reproduce strata's loss.
"""

from __future__ import annotations

import torch

from strata.train.gpt import GPTConfig
from strata.train.hf_common import ArchitectureError, check_layer_norm_eps, renamed, split_linear, with_zero_biases
from strata.train.t5 import T5

ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_new"}  # strata's -> ACT2FN's
OFFSET = 2  # mBART's first position row
SELF_ATTENTION = ["q_proj", "k_proj", "v_proj"]
SHARED = {"ln_1": "self_attn_layer_norm", "attn.c_proj": "self_attn.out_proj", "ln_2": "final_layer_norm",
          "mlp.c_fc": "fc1", "mlp.c_proj": "fc2"}
CROSS = {"ln_cross": "encoder_attn_layer_norm", "cross.q_proj": "encoder_attn.q_proj",
         "cross.c_proj": "encoder_attn.out_proj"}


def mbart_config(config: GPTConfig, specials: dict):
    from transformers import MBartConfig

    check_layer_norm_eps(config.norm_eps, "mBART")
    if specials.get("pad") is None:
        raise ArchitectureError("the decoder starts from the pad token; the tokenizer has no pad token")
    return MBartConfig(
        vocab_size=config.vocab_size, d_model=config.n_embd, max_position_embeddings=config.seq_len,
        encoder_layers=config.n_layer, decoder_layers=config.n_layer, encoder_attention_heads=config.n_head,
        decoder_attention_heads=config.n_head, encoder_ffn_dim=4 * config.n_embd, decoder_ffn_dim=4 * config.n_embd,
        activation_function=ACTIVATIONS[config.activation], scale_embedding=False,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        pad_token_id=specials["pad"], bos_token_id=specials.get("bos"), eos_token_id=specials.get("eos"),
        decoder_start_token_id=specials["pad"], forced_eos_token_id=None, tie_word_embeddings=True,
        architectures=["MBartForConditionalGeneration"],
    )


def _side(ours: dict, side: str, n_layer: int, seq_len: int) -> dict:
    """One side's HF entries: positions, embedding and final LayerNorms, blocks."""
    theirs = f"model.{side}"
    positions = torch.zeros(seq_len + OFFSET, ours[f"{side}.wpe.weight"].shape[1])
    positions[OFFSET:] = ours[f"{side}.wpe.weight"]
    state = {f"{theirs}.embed_positions.weight": positions,
             **renamed(ours, {f"{side}.ln_e": f"{theirs}.layernorm_embedding", f"{side}.ln_f": f"{theirs}.layer_norm"})}
    for i in range(n_layer):
        block, layer = f"{side}.h.{i}", f"{theirs}.layers.{i}"
        names = {**SHARED, **(CROSS if side == "decoder" else {})}
        state.update(renamed(ours, {f"{block}.{a}": f"{layer}.{b}" for a, b in names.items()}))
        state.update(split_linear(ours, f"{block}.attn.c_attn", [f"{layer}.self_attn.{p}" for p in SELF_ATTENTION]))
        if side == "decoder":
            state.update(split_linear(ours, f"{block}.cross.kv_proj", [f"{layer}.encoder_attn.{p}" for p in ("k_proj", "v_proj")]))
    return state


def t5_to_hf(model: T5, specials: dict):
    from transformers import MBartForConditionalGeneration

    config = mbart_config(model.config, specials)
    hf = MBartForConditionalGeneration(config)
    ours = with_zero_biases(model.state_dict(), model)
    c = model.config
    state = {**_side(ours, "encoder", c.n_layer, c.seq_len), **_side(ours, "decoder", c.n_layer, c.seq_len)}
    for name in ("model.shared", "model.encoder.embed_tokens", "model.decoder.embed_tokens", "lm_head"):
        state[f"{name}.weight"] = ours["wte.weight"]
    state["final_logits_bias"] = torch.zeros(1, c.vocab_size)
    hf.load_state_dict(state, strict=True)
    return hf.eval()
