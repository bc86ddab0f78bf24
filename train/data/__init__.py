"""The training stream: a global, deterministic sequence of token windows read straight
from a build's shards through their block index.

The plan (a pure function of the manifest, the shares, seed, seq_len and the window's index):

    category streams   each category's train (or val) blocks, from all its shards, read in
                       pass after pass; pass e reads them in block_order(seed, e, category);
                       documents stay in order inside a block
    windows            the unit of mixing: window i comes whole from one category, chosen by
                       the Interleave of the shares (every prefix of the stream is within one
                       window of each share), and is that category's u-th window, u = the
                       number of earlier windows of the category: tokens [u*S, u*S + L) of its
                       stream, S = seq_len, L = seq_len + 1 for CLM (the extra token is the
                       last label, and the next window's first input, as in Megatron's GPT
                       datasets) or seq_len for MLM. All windows have L tokens, so shares of
                       windows are shares of tokens.
    steps              global step s trains on windows [s*G, (s+1)*G), G the global batch;
                       rank r of W takes [s*G + r*G/W, s*G + (r+1)*G/W); DataLoader workers
                       take the rank's steps in turn, one (or a chunk of consecutive steps)
                       each: the DataLoader takes their outputs in the same turn, so batches
                       come out in step order.

Nothing depends on the world size or worker count except who makes which window, so a run
resumed at step N on any number of ranks and workers (same G) continues the same global
sequence, and every rank gets the same number of windows at every step. The pieces of a few
steps' windows are found at once, vectorised: the interleave gives each window's category
and rank in it, a binary search of the pass's cumulative block sizes its blocks. Blocks
come through fsspec by byte range (local read, or HTTP range request to an object store),
are checked and decoded once, kept in a bounded LRU cache and, from object stores, fetched
ahead by a small thread pool. Nothing runs a shell.

The package, by role:

    blocks.py    the block table (every block of a split, from the shards' block indexes)
                 and the BlockReader that fetches, checks and decodes blocks
    plan.py      the Plan: which pieces of which blocks make each window (Cut)
    stream.py    StreamingWindows, the rank's windows in global order; Sources; collate
    loader.py    BatchLoader and its DataLoader workers (shared-memory ring)
    consumed.py  ConsumedWriter: RUN/consumed, what every step trained on
"""

from strata.train.data.consumed import ConsumedWriter
from strata.train.data.loader import BatchLoader
from strata.train.data.stream import StreamingWindows, collate

__all__ = ["BatchLoader", "ConsumedWriter", "StreamingWindows", "collate"]
