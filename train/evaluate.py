"""`strata eval RUN|DIR --data BUILD|FILES`: loss, perplexity and bits per byte per category.

On a build: the trainer's own validation (trainer.Validation, the same windows, batches and
masks), so a run's figures are the ones its metrics.jsonl holds for the same settings (for
a RUN, the run's seq_len, batch, eval_batches, seed and doc_mask by default).

On files (.jsonl with a `text` field and optional `category`, or .txt, one document per
file; category: the record's, else the file's name without suffix), documents are encoded
as the trainer sees them: the tokenizer's ids, then EOS, no BOS; a category's documents are
concatenated in file order and cut into windows as the trainer cuts a stream: window u is
tokens [u*S, u*S + S + 1) for clm (inputs the first S, targets shifted by one; the last
window may be shorter) and [u*S, (u+1)*S) for mlm (masked as in training with the seed and
sample id u). To reproduce a clm figure with transformers on the export: the same windows,
mean cross-entropy of logits[:-1] against ids[1:] over all of them.

The figures are validation.py's: loss the mean in nats per target token, perplexity
exp(loss), bpb the summed loss / ln 2 / the UTF-8 bytes the target tokens stand for (EOS:
none; tokenize/pieces.py), and for clm word_perplexity.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import torch

from strata.config import TrainConfig
from strata.manifests.manifest import Manifest
from strata.tokenize.pieces import PieceTable
from strata.train.load import Loaded
from strata.train.objectives import Vocabulary, objective_for
from strata.train.runtime import Runtime, on_device
from strata.train.validation import Totals, Validation, build_pieces

CPU = Runtime(rank=0, world_size=1, device=torch.device("cpu"))


def eval_settings(loaded: Loaded, build: str, **flags) -> TrainConfig:
    """The validation settings: a RUN's own, else defaults; flags given win."""
    base = dict(loaded.run["config"]) if loaded.run else {"seq_len": min(loaded.model.config.seq_len, 1024)}
    if loaded.run:  # one process reads what the run's ranks read together
        base["batch_size"] = base["batch_size"] * loaded.run.get("world_size", 1)
    base.update({k: v for k, v in flags.items() if v is not None})
    base.update(data=build, out=".", objective=loaded.objective, steps=1, init_from=None, resume=False)
    return TrainConfig(**base)


def eval_build(loaded: Loaded, build: str, split: str = "val", **flags) -> dict[str, dict]:
    """The trainer's validation of `loaded` on the build's val blocks."""
    if split != "val":
        raise ValueError(f"split: only the val split is evaluated, got {split!r}")
    cfg = eval_settings(loaded, build, **flags)
    manifest = Manifest.read(build)
    pieces = build_pieces(build, manifest.tokenizer)
    objective = objective_for(cfg.objective, cfg, Vocabulary.of(manifest.tokenizer, pieces))
    categories = sorted(c for c, v in manifest.categories.items() if v.val_tokens)
    validation = Validation(cfg, CPU, manifest, categories, objective, pieces)
    return validation.run(loaded.model, objective, CPU, contextlib.nullcontext())


def texts_by_category(files: list[str]) -> dict[str, list[str]]:
    """category -> texts, in file and record order."""
    docs: dict[str, list[str]] = {}
    for name in files:
        path = Path(name)
        if path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    record = json.loads(line)
                    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                        raise ValueError(f"{path}:{n}: expected a JSON object with a string `text`")
                    docs.setdefault(str(record.get("category") or path.stem), []).append(record["text"])
        else:
            docs.setdefault(path.stem, []).append(path.read_text(encoding="utf-8"))
    return docs


def file_windows(ids: np.ndarray, seq_len: int, extra_token: bool) -> list[np.ndarray]:
    """A category's stream cut as the trainer cuts one; a last shorter window keeps the rest."""
    length = seq_len + int(extra_token)
    windows = [ids[start:start + length] for start in range(0, len(ids), seq_len)]
    return [w for w in windows if len(w) >= 1 + int(extra_token)]


@torch.no_grad()
def eval_files(loaded: Loaded, files: list[str], seq_len: int | None = None, seed: int = 0,
               batch_size: int = 8) -> dict[str, dict]:
    """The objective's loss on documents of files, through the trainer's objective and
    validation sums (window u of a category is sample u, epoch 0, for MLM's masks)."""
    model, encoder = loaded.model.eval(), loaded.encoder
    seq_len = seq_len or (loaded.run["seq_len"] if loaded.run else min(model.config.seq_len, 1024))
    cfg = TrainConfig(data=".", out=".", objective=loaded.objective, steps=1, seq_len=seq_len, seed=seed)
    pieces = PieceTable.of_texts(encoder.piece_texts())
    objective = objective_for(cfg.objective, cfg, Vocabulary.of(encoder, pieces))
    eos = encoder.special_ids["eos"]
    results, overall = {}, Totals()
    for category, texts in sorted(texts_by_category(files).items()):
        stream = np.concatenate([np.array(ids + [eos], dtype=np.int64) for ids in encoder.encode(texts)])
        windows = file_windows(stream, seq_len, objective.extra_token)
        totals = Totals()
        for start in range(0, len(windows), batch_size):
            for length in sorted({len(w) for w in windows[start:start + batch_size]}):  # equal lengths batch together
                ids = [start + i for i, w in enumerate(windows[start:start + batch_size]) if len(w) == length]
                rows = torch.from_numpy(np.stack([windows[i] for i in ids]))
                inputs = on_device(objective.batch(rows, torch.tensor(ids), torch.zeros(len(ids), dtype=torch.long)),
                                   CPU.device)
                loss, n, _ = objective.loss(model, inputs)
                totals.add(objective, pieces, inputs, float(loss), n)
        overall = overall + totals
        results[category] = totals.row(objective)
    if overall.targets:
        results["all"] = overall.row(objective)
    return results


def format_eval(figures: dict[str, dict]) -> str:
    lines = [f"{'category':<28} {'loss':>8} {'perplexity':>11} {'bpb':>7} {'tokens':>10}"]
    for category, r in figures.items():
        bpb = f"{r['bpb']:.4f}" if r.get("bpb") is not None else "-"
        lines.append(f"{category:<28} {r['loss']:>8.4f} {r['perplexity']:>11.2f} {bpb:>7} {r['tokens']:>10,}")
    return "\n".join(lines)


def as_json(figures: dict[str, dict]) -> dict:
    """One object: the overall figures at the top, and per category."""
    overall = figures.get("all", {"loss": None, "perplexity": None, "bpb": None, "tokens": 0})
    return {**overall, "categories": {c: r for c, r in figures.items() if c != "all"}}
