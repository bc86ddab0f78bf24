"""`strata export RUN [--step N] --out DIR`: a checkpoint as a Hugging Face model folder.

    DIR/config.json, model.safetensors   GPT2LMHeadModel (clm) or RobertaPreLayerNormForMaskedLM
                                         (mlm), loaded by AutoModelForCausalLM / ...ForMaskedLM
                                         without custom code (mapping: train/hf_models.py)
    DIR/tokenizer.json, tokenizer_config.json, special_tokens_map.json
                                         the build's tokenizer for AutoTokenizer: same ids as
                                         strata's (tokenize/hf.py), nothing added around text
    DIR/README.md                        model card: objective, data manifest fingerprint,
                                         realized mixture, tokens seen, validation figures
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import fsspec

from strata.manifests.audit import audit_run
from strata.manifests.layout import MANIFEST
from strata.manifests.lineage import read_metrics
from strata.manifests.manifest import read_manifest
from strata.storage import join
from strata.tokenize.encoders import build_tokenizer_path
from strata.tokenize.hf import save_tokenizer_folder, sentencepiece_to_tokenizer
from strata.train.checkpoint import run_model
from strata.train.hf_models import to_hf


def export_run(run: str, out_dir: str, step: int | None = None) -> dict:
    """Write DIR from RUN's checkpoint at `step` (default: latest); returns what it wrote."""
    model, record, meta = run_model(run, step)
    build = record["data"]
    manifest = read_manifest(build)
    specials = manifest["tokenizer"]["special_ids"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf = to_hf(model, specials)
    hf.save_pretrained(out, safe_serialization=True)
    tokenizer = build_tokenizer(build, manifest)
    save_tokenizer_folder(tokenizer, specials, str(out), model.config.seq_len)
    card = model_card(run, record, meta, build, manifest, type(hf).__name__)
    (out / "README.md").write_text(card, encoding="utf-8")
    return {"out": str(out), "architecture": type(hf).__name__, "step": meta["step"], "tokens": meta.get("tokens")}


def build_tokenizer(build: str, manifest: dict):
    """The build's tokenizer as a `tokenizers.Tokenizer`."""
    from tokenizers import Tokenizer

    path = build_tokenizer_path(build, manifest)
    with fsspec.open(path, "rb") as f:
        data = f.read()
    if manifest["tokenizer"]["type"].startswith("hf-"):
        return Tokenizer.from_str(data.decode("utf-8"))
    return sentencepiece_to_tokenizer(data)


def _manifest_sha256(build: str) -> str:
    with fsspec.open(join(build, MANIFEST), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _val_rows(run: str, step: int) -> dict[str, dict]:
    """The last validation row per category at or before `step`."""
    rows = {}
    for row in read_metrics(run):
        if row.get("kind") == "val" and row["step"] <= step:
            rows[row["category"]] = row
    return rows


def model_card(run: str, record: dict, meta: dict, build: str, manifest: dict, architecture: str) -> str:
    audit = audit_run(run)
    objective = {"clm": "causal language modelling (next-token prediction)",
                 "mlm": f"masked language modelling ({record['config'].get('mlm_rate', 0.15):.0%} of non-special tokens, 80/10/10)"}
    mixture = "\n".join(
        f"| {name} | {c['share']:.1%} | {c['realized_share']:.1%} | {c['tokens']:,} | {c['epochs']:.3f} |"
        for name, c in audit["categories"].items()
    )
    val = _val_rows(run, meta["step"])
    figures = "\n".join(f"| {name} | {r['loss']:.4f} | {r['perplexity']:.2f} | {r.get('bpb', float('nan')):.4f} | {r['tokens']:,} |"
                        for name, r in sorted(val.items()))
    doc_mask = record["config"].get("doc_mask")
    return f"""---
library_name: transformers
tags: [strata]
---
# {Path(run).name}, step {meta['step']}

Trained with strata; exported as `{architecture}` (stock transformers, no custom code).

```python
from transformers import AutoModelFor{'CausalLM' if record['objective'] == 'clm' else 'MaskedLM'}, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("PATH")
model = AutoModelFor{'CausalLM' if record['objective'] == 'clm' else 'MaskedLM'}.from_pretrained("PATH")
```

- objective: {objective[record['objective']]}
- window: {record['seq_len']} tokens; global batch {record['global_batch']} windows; seed {record['seed']}
- steps: {meta['step']} of {record['steps']}; tokens seen: {meta.get('tokens', 0):,}
- parameters: {record.get('parameters', 0):,}
- started from: {record.get('init_from') or 'random initialization'}

## Data

- build: `{build}`
- manifest sha256: `{_manifest_sha256(build)}`; config hash `{manifest.get('config_hash')}`
- stream fingerprint: `{record.get('stream_fingerprint')}`
- tokenizer: {manifest['tokenizer']['type']}, {manifest['tokenizer']['vocab_size']} ids, sha256 `{manifest['tokenizer']['sha256']}`

Realized mixture (the run's consumed lineage, {audit['tokens']:,} tokens over {audit['steps']} steps):

| category | share | realized | tokens | epochs |
|---|---|---|---|---|
{mixture}

## Validation (step {max((r['step'] for r in val.values()), default='-')})

| category | loss (nats/token) | perplexity | bits per byte | tokens |
|---|---|---|---|---|
{figures}

## Tokens and documents

The tokenizer adds nothing around a text: `tokenizer(text)` gives the ids strata's
tokenizer gives. In training every document ended with EOS (`{manifest['tokenizer']['special_ids'].get('eos')}`) and
documents were packed back to back into windows, with no BOS; to score or continue a
document as the model saw them, end the previous one (or start) with EOS.

{'Trained with document-boundary masking (attention and positions restart at each EOS), which transformers does not do: give it one document per sequence to match training.' if doc_mask else 'Trained without document-boundary masking: a window of packed documents reads as one text, as in transformers.'}
"""
