"""Checkpoints of a training run: RUN/checkpoints/step-NNNNNNNN/.

    model.pt     the model's state_dict (unwrapped: no DDP or torch.compile prefixes)
    train.pt     optimizer, LR scheduler, data position, step, tokens trained, and every
                 rank's RNG states (gathered to rank 0)
    meta.json    step, world size, and the run config, for people and tools
    NAME.pt      what the objective exports for downstream use beside the full model
                 (ELECTRA: discriminator.pt, loadable into an Encoder)

Rank 0 writes a checkpoint into a hidden temporary folder and renames it into place, then
rewrites RUN/checkpoints/latest (atomically) to name it: a job killed while saving leaves
the previous checkpoint as the latest and nothing that looks complete. Only tensors, dicts,
lists, numbers and strings are saved, so loading uses torch.load(weights_only=True).
Multi-node runs need RUN on a file system every node sees (as torchrun's own rendezvous
files do).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import warnings
from pathlib import Path

import torch

from strata.errors import CheckpointError
from strata.manifests.layout import (
    CHECKPOINT_GLOB,
    CHECKPOINT_META,
    CHECKPOINTS,
    LATEST_CHECKPOINT,
    RUN_RECORD,
    checkpoint_name,
    temporary_name,
)
from strata.storage import write_bytes_atomic


def checkpoint_dir(run: str | Path, step: int) -> Path:
    return Path(run) / CHECKPOINTS / checkpoint_name(step)


def save_checkpoint(
    run: str | Path, step: int, model: dict, train: dict, meta: dict, keep: int, exports: dict[str, dict] | None = None
) -> Path:
    """Write a checkpoint (rank 0 only) and drop the oldest ones beyond `keep`; `exports`:
    more state dicts, each saved as NAME.pt."""
    folder = checkpoint_dir(run, step)
    tmp = folder.parent / temporary_name(folder.name, str(os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model, tmp / "model.pt")
    torch.save(train, tmp / "train.pt")
    for name, weights in (exports or {}).items():
        torch.save(weights, tmp / f"{name}.pt")
    (tmp / CHECKPOINT_META).write_text(json.dumps(meta, indent=2, sort_keys=True))
    shutil.rmtree(folder, ignore_errors=True)  # a checkpoint of the same step from a run that was resumed earlier
    os.replace(tmp, folder)
    write_bytes_atomic(str(folder.parent / LATEST_CHECKPOINT), folder.name.encode())
    for old in sorted(folder.parent.glob(CHECKPOINT_GLOB))[:-keep]:
        if old != folder:
            shutil.rmtree(old)
    return folder


def latest_checkpoint(run: str | Path) -> Path | None:
    """The checkpoint RUN/checkpoints/latest names, if any."""
    pointer = Path(run) / CHECKPOINTS / LATEST_CHECKPOINT
    if not pointer.exists():
        return None
    folder = pointer.parent / pointer.read_text().strip()
    if not (folder / "train.pt").exists():
        raise CheckpointError(f"{pointer} names {folder.name}, which is missing or incomplete")
    return folder


def load_checkpoint(folder: Path, device: torch.device) -> tuple[dict, dict]:
    """(model state_dict, training state) of a checkpoint, tensors on `device`. A file that
    holds anything but tensors and plain values is refused, never unpickled."""
    return _load(folder / "model.pt", device), _load(folder / "train.pt", torch.device("cpu"))


def _load(path: Path, device: torch.device) -> dict:
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of a foreign file
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused: it holds objects other than tensors and plain values (a pickle that could run code)"
        ) from None
    except (RuntimeError, EOFError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None


def run_model(run: str | Path, step: int | None = None) -> tuple[torch.nn.Module, dict, dict]:
    """(model in eval mode on the CPU, run.json, the checkpoint's meta.json) of a run at a
    step (default: its latest checkpoint)."""
    from strata.train.presets import model_for, model_of

    run = Path(run)
    if not (run / RUN_RECORD).exists():
        raise FileNotFoundError(f"{run}: not a training run (no {RUN_RECORD})")
    record = json.loads((run / RUN_RECORD).read_text())
    folder = checkpoint_dir(run, step) if step is not None else latest_checkpoint(run)
    if folder is None or not (folder / "model.pt").exists():
        have = sorted(p.name for p in (run / CHECKPOINTS).glob(CHECKPOINT_GLOB))
        raise FileNotFoundError(f"{run}: no checkpoint {'at step %d' % step if step is not None else ''}; it has {have}")
    if "model_config" in record:
        model = model_of(record["objective"], record["model_config"])
    else:  # a run recorded before model_config: its preset
        from strata.manifests.manifest import Manifest

        cfg = record["config"]
        model = model_for(record["objective"], cfg["model"], Manifest.read(record["data"]).tokenizer.vocab_size,
                          cfg["seq_len"])
    model.load_state_dict(_load(folder / "model.pt", torch.device("cpu")))
    return model.eval(), record, json.loads((folder / CHECKPOINT_META).read_text())
