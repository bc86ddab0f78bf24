"""strata.pipeline (the folder pipeline/): `strata build`, from raw sources to shards.

    build.py          the build's driver: preflight -> curate -> tokenizer -> shards -> manifest
    curate.py         the curate pipeline (Beam): read.py, validate.py, normalize.py, the
                      per-document stages (stages.py: langid.py, filters.py, quality.py,
                      decontaminate.py, pii.py, fingerprints.py), then dedup.py and
                      paragraphs.py, written out by write.py
    filters.py        the heuristic filter families, one file each: gopher_quality.py,
                      gopher_repetition.py, c4.py (text_scan.py: their shared scan)
    shard.py          curated Parquet -> tokenized, packed WebDataset tars (Beam)

The package root `strata` is the folder core/; core/README.md maps every folder.
"""
