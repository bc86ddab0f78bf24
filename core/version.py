"""strata: LLM pretraining data, from raw sources to a trained model, with full lineage.

`strata` and `strata.tokenize` are namespace packages (no __init__.py); see pyproject.toml.
"""

__version__ = "0.1.0"
