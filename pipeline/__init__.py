"""strata.pipeline (the folder pipeline/): `strata build`, from raw sources to shards.

    build.py          the build's driver: preflight -> curate -> tokenizer -> shards -> manifest
    curate_steps.py   curate as two steps, each with its own settings fingerprint:
      annotate.py     (Beam) read.py, validate.py, normalize.py, then the per-document
                      measurements of stages.py: langid.py, heuristics.py (gopher_quality.py
                      and gopher_repetition.py over text_scan.py, gopher_stats.py, c4.py),
                      quality.py, decontaminate.py (bloom.py), pii.py, fingerprints.py
                      -> OUT/attributes/
      select.py       (Beam) thresholds on the attributes (attributes.py), dedup.py and
                      components.py, paragraphs.py; curate.py resolves each batch and
                      write.py writes curated/, rejected/, quarantine/, lineage/
    shard.py          curated Parquet -> tokenized, packed WebDataset tars (Beam); the
                      token store (token_store.py) keeps each document's tokens for the
                      next build; shard_tar.py packs blocks and writes the tars

The package root `strata` is the folder core/; core/README.md maps every folder.
"""
