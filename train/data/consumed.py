"""The consumed lineage of a run: RUN/consumed/, which block and token range every window
of every step trained on (manifests/layout.py names the files, manifests/schemas.py their
columns)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.manifests.layout import CONSUMED, CONSUMED_GLOB, consumed_leftover_rank, consumed_part, consumed_part_steps
from strata.manifests.schemas import CONSUMED_SCHEMA
from strata.pipeline.write import read_table, write_table
from strata.storage import glob, join, remove, remove_leftovers
from strata.train.data.stream import Sources


class ConsumedWriter:
    """RUN/consumed/part-r<rank>-<first step>-<last step>.parquet: one row per piece of every
    window a rank trained on. Parts are written every `flush_every` steps on a background
    thread, off the training loop; call flush() before saving a checkpoint, so that the
    lineage of every step the checkpoint includes is on disk.

    A resumed run (start_step > 0) trains on steps >= start_step again, so the writer first
    drops their rows: rank r of world_size W clears the parts of the old ranks r, r + W,
    r + 2W, ... (the old run may have had more ranks), and no two ranks touch one file."""

    def __init__(
        self,
        run_dir: str,
        shard_of: Mapping[str, str],
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
        flush_every: int = 100,
    ):
        self.run_dir = run_dir
        self.folder = join(run_dir, CONSUMED)
        self.shard_of = shard_of
        self.rank = rank
        self.flush_every = flush_every
        self.pending: list[tuple[int, np.ndarray, Sources]] = []  # (step, sample ids, sources)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="strata-consumed")
        self._writing: Future | None = None
        self._forget_from(start_step, world_size)

    def _forget_from(self, step: int, world_size: int) -> None:
        def owned(name: str) -> bool:
            rank = consumed_leftover_rank(name)
            return rank is not None and rank % world_size == self.rank

        remove_leftovers(self.folder, owned)
        for uri in glob(join(self.run_dir, CONSUMED_GLOB)):
            rank, first, last = consumed_part_steps(uri)
            if rank % world_size != self.rank or last < step:
                continue
            kept = read_table(uri).filter(pc.field("step") < step) if first < step else None
            remove(uri)
            if kept is not None:
                self._write(kept, rank, first, step - 1)

    def write(self, step: int, batch: Mapping) -> None:
        """Record the batch a rank trained on at `step`."""
        self.pending.append((step, batch["sample_id"].numpy(), batch["sources"]))
        if len(self.pending) >= self.flush_every:
            self._flush(background=True)

    def flush(self) -> None:
        """Write every step recorded so far; returns once it is written."""
        self._flush(background=False)

    def _flush(self, background: bool) -> None:
        if self._writing is not None:  # one part at a time, in step order; raises its error
            writing, self._writing = self._writing, None
            writing.result()
        if not self.pending:
            return
        keys = [key for _, _, sources in self.pending for key in sources.block_key]
        columns = {
            "step": np.concatenate([np.full(len(s.window), step) for step, _, s in self.pending]),
            "rank": np.full(len(keys), self.rank, dtype=np.int32),
            "sample_id": np.concatenate([ids[s.window] for _, ids, s in self.pending]),
            "block_key": keys,
            "shard": [self.shard_of[key] for key in keys],
            "token_start": np.concatenate([s.start for _, _, s in self.pending]),
            "token_end": np.concatenate([s.stop for _, _, s in self.pending]),
        }
        table = pa.Table.from_pydict(columns, schema=CONSUMED_SCHEMA)
        part = (table, self.rank, self.pending[0][0], self.pending[-1][0])
        self.pending = []
        if background:
            self._writing = self._pool.submit(self._write, *part)
        else:
            self._write(*part)

    def _write(self, table: pa.Table, rank: int, first: int, last: int) -> None:
        write_table(join(self.run_dir, consumed_part(rank, first, last)), table)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._pool.shutdown()

    def __enter__(self) -> "ConsumedWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
