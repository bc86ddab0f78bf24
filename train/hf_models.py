"""strata's models <-> their Hugging Face classes, weight for weight (no approximation):
the GPT and the MLM encoder both ways (here), the encoder-decoder (hf_seq2seq.py) and
ELECTRA (hf_electra.py) out; `to_hf` picks the mapping by the model's class.

    GPT (train/gpt.py)          <-> GPT2LMHeadModel: same names; HF's Conv1D stores Linear
                                    weights transposed; activation "gelu" <-> "gelu",
                                    "gelu_tanh" <-> "gelu_new"; norm_eps <-> layer_norm_epsilon
    Encoder (train/encoder.py)  <-> RobertaPreLayerNormForMaskedLM: c_attn is query, key and
                                    value stacked; RoBERTa numbers positions from pad_id + 1,
                                    so strata's position p is HF's row pad_id + 1 + p, the rows
                                    before it unused; the single token-type row is zero on
                                    export and folded into the position table on import

A strata model without biases (`bias=False`) exports with zero biases, which is the same
function. Document-boundary masking (`--doc-mask`) has no HF counterpart: an exported model
reads a packed window as one text.
"""

from __future__ import annotations

import torch

from strata.train.electra import Electra
from strata.train.encoder import Encoder, EncoderConfig
from strata.train.gpt import GPT, GPTConfig
from strata.train.hf_common import QKV, ArchitectureError, split_linear, with_zero_biases
from strata.train.hf_electra import discriminator_to_hf
from strata.train.hf_seq2seq import t5_to_hf
from strata.train.t5 import T5

GPT2_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_new"}
FROM_GPT2_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


# --------------------------------------------------------------------------- GPT <-> GPT-2


def gpt2_config(config: GPTConfig, specials: dict):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.seq_len, n_embd=config.n_embd, n_layer=config.n_layer,
        n_head=config.n_head, activation_function=GPT2_ACTIVATIONS[config.activation],
        layer_norm_epsilon=config.norm_eps, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=specials.get("bos"), eos_token_id=specials.get("eos"), pad_token_id=specials.get("pad"),
        tie_word_embeddings=True, architectures=["GPT2LMHeadModel"],
    )


def gpt_to_hf(model: GPT, specials: dict):
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel(gpt2_config(model.config, specials))
    state = {}
    for name, tensor in with_zero_biases(model.state_dict(), model).items():
        state[name] = tensor.t().contiguous() if name.endswith(TRANSPOSED) else tensor
    hf.load_state_dict(state, strict=True)
    return hf.eval()


def gpt_from_hf(hf, dropout: float = 0.0) -> GPT:
    c = hf.config
    if c.activation_function not in FROM_GPT2_ACTIVATIONS:
        raise ArchitectureError(f"GPT-2 activation_function {c.activation_function!r} is not one strata's GPT has")
    if c.n_inner not in (None, 4 * c.n_embd) or c.scale_attn_by_inverse_layer_idx or c.reorder_and_upcast_attn:
        raise ArchitectureError("this GPT-2 variant (n_inner, scaled or reordered attention) is not strata's GPT")
    model = GPT(GPTConfig(vocab_size=c.vocab_size, seq_len=c.n_positions, n_layer=c.n_layer, n_head=c.n_head,
                          n_embd=c.n_embd, activation=FROM_GPT2_ACTIVATIONS[c.activation_function],
                          norm_eps=c.layer_norm_epsilon, dropout=dropout))
    state = {name: tensor.t() if name.endswith(TRANSPOSED) else tensor for name, tensor in hf.state_dict().items()
             if not name.endswith((".attn.bias", ".attn.masked_bias"))}
    model.load_state_dict(state, strict=True)
    return model


# --------------------------------------------------------------------------- Encoder <-> RoBERTa-PreLayerNorm

PREFIX = "roberta_prelayernorm"
LAYER_NAMES = {  # strata block -> RoBERTa-PreLayerNorm layer
    "ln_1": "attention.LayerNorm",
    "attn.c_proj": "attention.output.dense",
    "ln_2": "intermediate.LayerNorm",
    "mlp.c_fc": "intermediate.dense",
    "mlp.c_proj": "output.dense",
}
TOP_NAMES = {
    "transformer.ln_e": f"{PREFIX}.embeddings.LayerNorm",
    "transformer.ln_f": f"{PREFIX}.LayerNorm",
    "head.0": "lm_head.dense",
    "head.2": "lm_head.layer_norm",
}


def _pad_id(specials: dict) -> int:
    pad = specials.get("pad")
    if pad is None:
        raise ArchitectureError("RoBERTa numbers positions from the pad id; the tokenizer has no pad token")
    return pad


def roberta_config(config: EncoderConfig, specials: dict):
    from transformers import RobertaPreLayerNormConfig

    if config.activation != "gelu":
        raise ArchitectureError("RoBERTa-PreLayerNorm's MLM head uses the exact GELU; this encoder uses gelu_tanh")
    return RobertaPreLayerNormConfig(
        vocab_size=config.vocab_size, hidden_size=config.n_embd, num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head, intermediate_size=4 * config.n_embd, hidden_act="gelu",
        max_position_embeddings=config.seq_len + _pad_id(specials) + 1, type_vocab_size=1,
        layer_norm_eps=config.norm_eps, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        pad_token_id=_pad_id(specials), bos_token_id=specials.get("bos"), eos_token_id=specials.get("eos"),
        tie_word_embeddings=True, architectures=["RobertaPreLayerNormForMaskedLM"],
    )


def _encoder_names(n_layer: int) -> dict[str, str]:
    """strata parameter name -> HF name, for every weight and bias but the embeddings and attention."""
    names = {}
    for i in range(n_layer):
        for ours, theirs in LAYER_NAMES.items():
            names[f"transformer.h.{i}.{ours}"] = f"{PREFIX}.encoder.layer.{i}.{theirs}"
    names.update(TOP_NAMES)
    return {f"{a}.{kind}": f"{b}.{kind}" for a, b in names.items() for kind in ("weight", "bias")}


def encoder_to_hf(model: Encoder, specials: dict):
    from transformers import RobertaPreLayerNormForMaskedLM

    config = roberta_config(model.config, specials)
    hf = RobertaPreLayerNormForMaskedLM(config)
    ours = with_zero_biases(model.state_dict(), model)
    state = {theirs: ours[name] for name, theirs in _encoder_names(model.config.n_layer).items()}
    C, first = model.config.n_embd, _pad_id(specials) + 1
    positions = torch.zeros(config.max_position_embeddings, C)
    positions[first:] = ours["transformer.wpe.weight"]
    e = f"{PREFIX}.embeddings"
    state.update({
        f"{e}.word_embeddings.weight": ours["transformer.wte.weight"],
        f"{e}.position_embeddings.weight": positions,
        f"{e}.token_type_embeddings.weight": torch.zeros(1, C),
        "lm_head.decoder.weight": ours["lm_head.weight"],
        "lm_head.decoder.bias": ours["lm_head.bias"],
        "lm_head.bias": ours["lm_head.bias"],
    })
    for i in range(model.config.n_layer):
        layer = f"{PREFIX}.encoder.layer.{i}.attention.self"
        state.update(split_linear(ours, f"transformer.h.{i}.attn.c_attn", [f"{layer}.{p}" for p in QKV]))
    hf.load_state_dict(state, strict=True)
    return hf.eval()


def encoder_from_hf(hf, dropout: float = 0.0) -> Encoder:
    c = hf.config
    if c.hidden_act != "gelu" or c.intermediate_size != 4 * c.hidden_size:
        raise ArchitectureError(f"hidden_act {c.hidden_act!r} / intermediate_size {c.intermediate_size}: "
                                "strata's encoder has the exact GELU and 4 x hidden_size")
    first = c.pad_token_id + 1
    model = Encoder(EncoderConfig(vocab_size=c.vocab_size, seq_len=c.max_position_embeddings - first,
                                  n_layer=c.num_hidden_layers, n_head=c.num_attention_heads, n_embd=c.hidden_size,
                                  norm_eps=c.layer_norm_eps, dropout=dropout))
    theirs = hf.state_dict()
    state = {name: theirs[hf_name] for name, hf_name in _encoder_names(c.num_hidden_layers).items()}
    e = f"{PREFIX}.embeddings"
    state["transformer.wte.weight"] = theirs[f"{e}.word_embeddings.weight"]
    # HF adds token type 0 at every position: the same as adding it to every position row
    state["transformer.wpe.weight"] = theirs[f"{e}.position_embeddings.weight"][first:] + theirs[f"{e}.token_type_embeddings.weight"][0]
    state["lm_head.weight"] = theirs["lm_head.decoder.weight"]
    state["lm_head.bias"] = theirs["lm_head.bias"]
    for i in range(c.num_hidden_layers):
        layer = f"{PREFIX}.encoder.layer.{i}.attention.self"
        for kind in ("weight", "bias"):
            state[f"transformer.h.{i}.attn.c_attn.{kind}"] = torch.cat([theirs[f"{layer}.{p}.{kind}"] for p in QKV])
    model.load_state_dict(state, strict=True)
    return model


# --------------------------------------------------------------------------- dispatch


EXPORTS = {GPT: gpt_to_hf, Encoder: encoder_to_hf, T5: t5_to_hf, Electra: discriminator_to_hf}


def to_hf(model: torch.nn.Module, specials: dict):
    """The HF model of a strata model: its class picks the mapping (EXPORTS)."""
    if type(model) not in EXPORTS:
        raise ArchitectureError(f"{type(model).__name__}: transformers has no class strata exports it to; strata "
                                "exports the GPT, the MLM encoder, the encoder-decoder and ELECTRA")
    return EXPORTS[type(model)](model, specials)


SUPPORTED = {"gpt2": ("clm", gpt_from_hf), "roberta-prelayernorm": ("mlm", encoder_from_hf)}


def from_hf(hf, dropout: float = 0.0) -> tuple[str, GPT | Encoder]:
    """(objective, strata model) of a loaded HF model of a supported architecture."""
    model_type = hf.config.model_type
    if model_type not in SUPPORTED:
        raise ArchitectureError(f"model_type {model_type!r}: strata loads {sorted(SUPPORTED)} "
                                "(GPT-2 family for clm, RoBERTa-PreLayerNorm for mlm)")
    objective, convert = SUPPORTED[model_type]
    return objective, convert(hf, dropout)
