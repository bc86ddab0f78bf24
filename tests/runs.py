"""A training run's lineage made without training: the real stream (StreamingWindows) and
the real ConsumedWriter on a built OUT, plus the run.json and metrics.jsonl a trainer
writes. Returns the batches every rank got, so that tests know each window's category,
pieces and tokens independently of the lineage readers under test."""

from __future__ import annotations

import json
from pathlib import Path

from strata.train.data import ConsumedWriter, StreamingWindows

SEQ_LEN, GLOBAL_BATCH = 32, 4


def make_run(out: Path, run: Path, steps: int, world_size: int = 2, metrics: list[dict] | None = None) -> list[dict]:
    """Steps [0, steps) on `world_size` ranks into RUN/consumed; every rank's batches."""
    run.mkdir(parents=True, exist_ok=True)
    batches = []
    for rank in range(world_size):
        stream = StreamingWindows(
            str(out), seq_len=SEQ_LEN, extra_token=True, global_batch=GLOBAL_BATCH, rank=rank,
            world_size=world_size, seed=0, end_step=steps,
        )
        with ConsumedWriter(str(run), stream.shard_of, rank=rank, world_size=world_size, flush_every=8) as consumed:
            for batch in stream.batches():
                consumed.write(batch["step"], batch)
                batches.append({**batch, "rank": rank})
    spec = {
        "data": str(out), "objective": "clm", "seed": 0, "seq_len": SEQ_LEN, "global_batch": GLOBAL_BATCH,
        "steps": steps, "shares": stream.plan.mix.shares, "window_tokens": SEQ_LEN + 1,
    }
    (run / "run.json").write_text(json.dumps(spec))
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in metrics or []))
    return batches
