"""Generated windows and a tokenizer record for the objective tests: 50 ordinary tokens,
EOS between documents, and the objective specials."""

import numpy as np

from strata.config import load_train_config
from strata.tokenize.pieces import PieceTable
from strata.train.objectives import Vocabulary, objective_for

EOS, MASK = 3, 4
ORDINARY = np.arange(5, 55)
PERIOD = 54  # the token whose text ends a sentence
SENTINELS = [60, 40]
SPECIALS = {"pad": 0, "unk": 1, "bos": 2, "eos": EOS, "mask": MASK, "cls": 55, "sep": 56,
            "mode_nlu": 57, "mode_nlg": 58, "mode_s2s": 59, "sentinels": SENTINELS}
VOCAB = 100
PIECES = PieceTable(bytes=np.ones(VOCAB, dtype=np.int64), opens=np.ones(VOCAB, dtype=bool),
                    closes=np.ones(VOCAB, dtype=bool), inner=np.zeros(VOCAB, dtype=np.int64),
                    sentence_end=np.arange(VOCAB) == PERIOD)
TOKENIZER = Vocabulary(VOCAB, SPECIALS, PIECES)


def objective(name, **options):
    cfg = load_train_config(None, {"data": "d", "out": "o", "objective": name, "steps": 1, "seq_len": 64, **options})
    return objective_for(name, cfg, TOKENIZER)


def markov_windows(n, length, seed, doc_every=40):
    """n windows of a first-order Markov chain over ORDINARY (3 successors per token), with
    an EOS about every `doc_every` tokens: a tiny model can learn the chain in a few dozen steps."""
    chain = np.random.default_rng(0)
    successors = chain.choice(ORDINARY, size=(len(ORDINARY), 3))
    rng = np.random.default_rng(seed)
    out = np.empty((n, length), dtype=np.int64)
    state = rng.integers(len(ORDINARY), size=n)
    for t in range(length):
        state = successors[state, rng.integers(3, size=n)] - ORDINARY[0]
        out[:, t] = state + ORDINARY[0]
    out[rng.random((n, length)) < 1 / doc_every] = EOS
    return out
