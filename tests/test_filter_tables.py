"""The heuristic filters' tables (about 10 MB, indexed by code point or offset) are built on
first use: a process that imports the filters, e.g. to read a config or list a build,
does not pay for them."""

import json
import subprocess
import sys

from conftest import REPO

# In a fresh interpreter: what the filter modules import is loaded first, then tracemalloc
# (numpy reports its buffers to it) measures importing the filters and their first use.
PROBE = """
import json, tracemalloc
import numpy, strata.config, strata.pipeline.languages
tracemalloc.start()
import strata.pipeline.filters as filters
from strata.pipeline import gopher_quality, text_scan
imported = tracemalloc.get_traced_memory()[1]
built_at_import = [f.cache_info().currsize for f in
                   (text_scan.word_char_table, text_scan._char_powers, gopher_quality._bullet_table)]
filters.apply_heuristics("the of house " * 30, strata.config.FilterSet())
print(json.dumps({"imported": imported, "built_at_import": built_at_import,
                  "after_use": tracemalloc.get_traced_memory()[0]}))
"""


def test_importing_the_filters_builds_no_tables():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout)
    assert probe["built_at_import"] == [0, 0, 0]
    assert probe["imported"] < 2 * 2**20, probe
    # The first filtered document builds them: the word table (1.1 MB), the bullet table
    # (1.1 MB) and the two hash power tables (4 MB each).
    assert probe["after_use"] > 10 * 2**20, probe
