"""The model card (DIR/README.md) `strata export` writes beside the weights: how to load
the export, the objective, the data's lineage (manifest fingerprint, realized mixture,
tokens seen), validation figures, and where the HF class differs from strata's model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import fsspec

from strata.manifests.audit import audit_run
from strata.manifests.layout import MANIFEST
from strata.manifests.lineage import read_metrics
from strata.manifests.manifest import Manifest
from strata.storage import join

AUTO_CLASSES = {"GPT2LMHeadModel": "AutoModelForCausalLM", "RobertaPreLayerNormForMaskedLM": "AutoModelForMaskedLM",
                "MBartForConditionalGeneration": "AutoModelForSeq2SeqLM", "ElectraForPreTraining": "AutoModelForPreTraining"}


def objective_text(objective: str, cfg: dict) -> str:
    rate = cfg.get("mlm_rate", 0.15)
    return {
        "clm": "causal language modelling (next-token prediction)",
        "mlm": f"masked language modelling ({rate:.0%} of non-special tokens, 80/10/10)",
        "prefix_lm": "prefix language modelling (T5/UL2): fully visible over a prefix, predict the continuation",
        "span_corruption": f"T5 span corruption ({cfg.get('noise_density', 0.15):.0%} of the tokens dropped in spans of "
                           f"mean length {cfg.get('mean_span', 3.0):g}, each span a sentinel in the source; the target "
                           "lists the spans after their sentinels)",
        "ul2": f"UL2's mixture of denoisers (modes and shares {cfg.get('ul2_mixture')}; the mode token starts the source)",
        "bart": f"BART denoising (text infilling of {cfg.get('bart_rate', 0.3):.0%} of the tokens, sentence permutation; "
                "the target is the original window)",
        "electra": f"ELECTRA replaced token detection (a generator's MLM on {rate:.0%} of the tokens + 50 x the "
                   "discriminator's loss on every token)",
    }[objective]


def differences(record: dict, architecture: str, generator: bool) -> list[str]:
    """What a user of the export must know where transformers' class and strata differ."""
    cfg = record["config"]
    notes = []
    if architecture == "GPT2LMHeadModel" and record["objective"] != "clm":
        notes.append("Trained through a prefix mask: attention fully visible over the source (the prefix), causal "
                     "over the target. GPT2LMHeadModel attends causally everywhere: its logits equal strata's for "
                     "an empty prefix (a causal window), not where strata reads a source bidirectionally.")
    if architecture == "MBartForConditionalGeneration":
        notes.append("The decoder starts from the pad token (`decoder_start_token_id`), as in training: "
                     "`model(input_ids, decoder_input_ids=...)` with decoder_input_ids = pad + target[:-1] gives "
                     "strata's logits, and `generate` starts there. mBART's own shift for `labels` without "
                     "`decoder_input_ids` starts each row from its last token instead: pass decoder_input_ids to "
                     "continue training as strata did. Pad sources at the end with an attention_mask.")
    if architecture == "ElectraForPreTraining":
        notes.append("This is the discriminator, the network to fine-tune (the ELECTRA classes for sequence or "
                     "token classification load its body); its logits > 0 mark tokens it judges replaced."
                     + (" The generator is in `generator/` as ElectraForMaskedLM (the embeddings it shares with the "
                        "discriminator are stored in both)." if generator else ""))
    notes.append("Trained with document-boundary masking (attention and positions restart at each EOS), which "
                 "transformers does not do: give it one document per sequence to match training."
                 if cfg.get("doc_mask") else
                 "Trained without document-boundary masking: a window of packed documents reads as one text, as "
                 "in transformers.")
    return notes


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


def model_card(run: str, record: dict, meta: dict, build: str, manifest: Manifest, architecture: str,
               generator: bool = False) -> str:
    audit = audit_run(run)
    auto = AUTO_CLASSES[architecture]
    mixture = "\n".join(
        f"| {name} | {c['share']:.1%} | {c['realized_share']:.1%} | {c['tokens']:,} | {c['epochs']:.3f} |"
        for name, c in audit["categories"].items()
    )
    val = _val_rows(run, meta["step"])
    figures = "\n".join(f"| {name} | {r['loss']:.4f} | {r['perplexity']:.2f} | {r.get('bpb', float('nan')):.4f} | {r['tokens']:,} |"
                        for name, r in sorted(val.items()))
    load_generator = ('\ngenerator = AutoModelForMaskedLM.from_pretrained("PATH", subfolder="generator")'
                      if generator else "")
    notes = "\n\n".join(differences(record, architecture, generator))
    return f"""---
library_name: transformers
tags: [strata]
---
# {Path(run).name}, step {meta['step']}

Trained with strata; exported as `{architecture}` (stock transformers, no custom code).

```python
from transformers import {auto},{' AutoModelForMaskedLM,' if generator else ''} AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("PATH")
model = {auto}.from_pretrained("PATH"){load_generator}
```

- objective: {objective_text(record['objective'], record['config'])}
- window: {record['seq_len']} tokens; global batch {record['global_batch']} windows; seed {record['seed']}
- steps: {meta['step']} of {record['steps']}; tokens seen: {meta.get('tokens', 0):,}
- parameters: {record.get('parameters', 0):,}
- started from: {record.get('init_from') or 'random initialization'}

## Data

- build: `{build}`
- manifest sha256: `{_manifest_sha256(build)}`; config hash `{manifest.config_hash}`
- stream fingerprint: `{record.get('stream_fingerprint')}`
- tokenizer: {manifest.tokenizer.type}, {manifest.tokenizer.vocab_size} ids, sha256 `{manifest.tokenizer.sha256}`

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
tokenizer gives. In training every document ended with EOS (`{manifest.tokenizer.special_ids.get('eos')}`) and
documents were packed back to back into windows, with no BOS; to score or continue a
document as the model saw them, end the previous one (or start) with EOS.

## Where transformers differs from strata

{notes}
"""
