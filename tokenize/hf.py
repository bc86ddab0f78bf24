"""A sentencepiece model as a Hugging Face fast tokenizer (`tokenizer.json`) that gives
exactly sentencepiece's ids, and the tokenizer folder `AutoTokenizer` loads.

How sentencepiece encodes, and the `tokenizers` parts that do the same:

    spaces -> "▁" (identity normalization otherwise)   Metaspace pre-tokenizer, split=False
    dummy prefix "▁" at the start of the text          prepend_scheme "first" (strata: off)
    user-defined symbols ("<mask>", "\\n") matched     non-special added tokens, matched in raw
      first in raw text, never merged                  text before the model (but see below)
    BPE: merge the adjacent pair whose result has      BPE with one merge per (left, right)
      the highest score, leftmost first                split of each piece, ranked by the
                                                       piece's score
    byte fallback: unknown characters -> <0xXX>        byte_fallback=True
    control pieces (<pad> <unk> <s> </s>) are never    special tokens, with split_special_tokens
      matched in text                                  so that text "<s>" is not matched either

Unigram models are refused: HF's Unigram breaks ties between equal-score segmentations
(runs of whitespace pieces) differently from sentencepiece, and matches control and byte
pieces in text, so its ids would differ.

One difference remains: transformers makes every named special token special when it
loads a tokenizer, and with split_special_tokens none is matched in text, so a literal
"<mask>" in text is the mask id for sentencepiece and plain pieces for AutoTokenizer.

Nothing is added around the text: `tokenizer(text)["input_ids"]` is
`SentencePieceProcessor.encode(text)`, with or without add_special_tokens. The trainer's
documents are that plus EOS (strata's shards end every document with EOS; no BOS).
"""

from __future__ import annotations

import json
import os

from strata.tokenize.spm_proto import SentencePieceModel, read_model

SPACE = "\u2581"
SPECIAL_NAMES = ("bos", "eos", "unk", "pad", "mask")


class UnsupportedTokenizer(ValueError):
    pass


def _check(model: SentencePieceModel) -> None:
    if model.model_type != "bpe":
        raise UnsupportedTokenizer(f"sentencepiece {model.model_type} models have no exact HF counterpart here; "
                                   "strata exports bpe tokenizers (tokenizer.model_type: bpe, the default)")
    if model.normalizer != "identity" or model.remove_extra_whitespaces or not model.escape_whitespaces:
        raise UnsupportedTokenizer(
            f"sentencepiece normalization {model.normalizer!r} (remove_extra_whitespaces="
            f"{model.remove_extra_whitespaces}) has no exact HF counterpart here; strata's tokenizers use identity"
        )


def bpe_merges(model: SentencePieceModel) -> list[tuple[str, str]]:
    """Every (left, right) split of a normal piece into two normal pieces, the pieces of
    higher score first: sentencepiece merges the pair whose result scores highest."""
    ids = {p.piece: i for i, p in enumerate(model.pieces) if p.type == "normal"}
    ranked = []
    for piece, i in ids.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in ids and right in ids:
                ranked.append((-model.pieces[i].score, i, ids[left], ids[right], left, right))
    return [(left, right) for *_, left, right in sorted(ranked)]


def sentencepiece_to_tokenizer(model_bytes: bytes):
    """A `tokenizers.Tokenizer` that encodes as the sentencepiece model does."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    model = read_model(model_bytes)
    _check(model)
    unk = next((i for i, p in enumerate(model.pieces) if p.type == "unknown"), None)
    vocab = {p.piece: i for i, p in enumerate(model.pieces)}
    tokenizer = Tokenizer(models.BPE(vocab, bpe_merges(model), unk_token=model.pieces[unk].piece if unk is not None else None,
                                     byte_fallback=model.byte_fallback, fuse_unk=True))
    scheme = "first" if model.add_dummy_prefix else "never"
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme=scheme, split=False)
    steps = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if model.add_dummy_prefix:
        steps.append(decoders.Strip(" ", 1, 0))
    tokenizer.decoder = decoders.Sequence(steps)
    tokenizer.add_tokens([AddedToken(p.piece, normalized=False, special=False)
                          for p in model.pieces if p.type == "user_defined"])
    tokenizer.add_special_tokens([AddedToken(p.piece, normalized=False, special=True)
                                  for p in model.pieces if p.type in ("control", "unknown")])
    return tokenizer


def save_tokenizer_folder(tokenizer, specials: dict[str, int | None], out_dir: str, model_max_length: int) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json for
    `AutoTokenizer.from_pretrained(out_dir)`. `specials`: {bos, eos, unk, pad, mask} -> id."""
    from transformers import PreTrainedTokenizerFast

    names = {f"{name}_token": tokenizer.id_to_token(i) for name, i in specials.items() if name in SPECIAL_NAMES and i is not None}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=model_max_length, split_special_tokens=True,
        clean_up_tokenization_spaces=False, **names,
    )
    fast.save_pretrained(out_dir)
    # transformers 5 writes its own class name; the generic one loads in 4.x and 5.x alike.
    path = os.path.join(out_dir, "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
