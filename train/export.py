"""`strata export RUN [--step N] --out DIR`: a checkpoint as a Hugging Face model folder.

    DIR/config.json, model.safetensors   the run's model as its transformers class, loaded
                                         by the Auto class without custom code (mappings:
                                         train/hf_models.py, hf_seq2seq.py, hf_electra.py):
        GPT (clm; prefix_lm, --decoder-only)    GPT2LMHeadModel            AutoModelForCausalLM
        MLM encoder (mlm)                       RobertaPreLayerNormForMaskedLM  AutoModelForMaskedLM
        encoder-decoder (span_corruption, ul2, bart)
                                                MBartForConditionalGeneration   AutoModelForSeq2SeqLM
        ELECTRA (electra): the discriminator    ElectraForPreTraining      AutoModelForPreTraining
    DIR/generator/                       ELECTRA's generator as ElectraForMaskedLM
    DIR/tokenizer.json, tokenizer_config.json, special_tokens_map.json
                                         the build's tokenizer for AutoTokenizer: same ids as
                                         strata's (tokenize/hf.py), nothing added around text
    DIR/README.md                        model card (train/model_card.py): objective, data
                                         manifest fingerprint, realized mixture, tokens seen,
                                         validation figures, what differs from strata's model

The other objectives' models (spanbert, nsp, sop, xlnet) have no transformers class that
holds them exactly: export refuses them.
"""

from __future__ import annotations

from pathlib import Path

import fsspec

from strata.manifests.manifest import Manifest, TokenizerEntry
from strata.tokenize.encoders import build_tokenizer_path
from strata.tokenize.hf import save_tokenizer_folder, sentencepiece_to_tokenizer
from strata.train.checkpoint import run_model
from strata.train.electra import Electra
from strata.train.hf_electra import generator_to_hf
from strata.train.hf_models import to_hf
from strata.train.model_card import model_card


def export_run(run: str, out_dir: str, step: int | None = None) -> dict:
    """Write DIR from RUN's checkpoint at `step` (default: latest); returns what it wrote."""
    model, record, meta = run_model(run, step)
    build = record["data"]
    manifest = Manifest.read(build)
    specials = manifest.tokenizer.special_ids
    hf = to_hf(model, specials)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out, safe_serialization=True)
    generator = generator_to_hf(model, specials) if isinstance(model, Electra) else None
    if generator is not None:
        generator.save_pretrained(out / "generator", safe_serialization=True)
    tokenizer = build_tokenizer(build, manifest.tokenizer)
    save_tokenizer_folder(tokenizer, specials, str(out), model.config.seq_len)
    card = model_card(run, record, meta, build, manifest, type(hf).__name__, generator is not None)
    (out / "README.md").write_text(card, encoding="utf-8")
    return {"out": str(out), "architecture": type(hf).__name__, "step": meta["step"], "tokens": meta.get("tokens")}


def build_tokenizer(build: str, entry: TokenizerEntry):
    """The build's tokenizer as a `tokenizers.Tokenizer`."""
    from tokenizers import Tokenizer

    path = build_tokenizer_path(build, entry)
    with fsspec.open(path, "rb") as f:
        data = f.read()
    if entry.type.startswith("hf-"):
        return Tokenizer.from_str(data.decode("utf-8"))
    return sentencepiece_to_tokenizer(data)
