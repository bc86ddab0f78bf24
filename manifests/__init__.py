"""strata.manifests (the folder manifests/): the contract between the stages and the tools
that read it.

    the contract   what a build folder and a run folder hold and how to read them: the
                   layout of paths and globs, the Arrow schemas, the typed manifest
                   (manifest.py), the shard block format and its checksums; pipeline/,
                   tokenize/ and train/ import it, it imports none of them
    the readers    audit.py (and report.py, its HTML page), verify.py, trace.py, over
                   lineage.py; lock.py (one writer per folder), mixture.py (weights to shares)

The package root `strata` is the folder core/; core/README.md maps every folder.
"""
