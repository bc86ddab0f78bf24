"""The commands of the `strata` command line, one module per group (see strata/cli.py)."""
