"""Mixture weights: a category's `epochs` or `weight` resolved to one token share.

    epochs categories   effective tokens = epochs x tokens; they share what the weight
                        categories leave, in proportion to their effective tokens (the
                        Pile's formula: share = epochs x size / sum of epochs x size)
    weight categories   a weight is the category's share of training tokens; alone, the
                        weights are normalised to sum to 1; beside epochs categories they
                        are absolute shares and must sum to less than 1

A category found in the data but not in the config counts as `epochs: 1`. With a
`budget_tokens`, each category's planned epochs are share x budget / its tokens: how often
its data will repeat.
"""

from __future__ import annotations

from strata.config import CategoryConfig, ConfigError

DEFAULT = CategoryConfig(epochs=1.0)


def resolve_shares(categories: dict[str, CategoryConfig], tokens: dict[str, int]) -> dict[str, float]:
    """Token share of every category that has tokens; the shares sum to 1."""
    present = {c: n for c, n in sorted(tokens.items()) if n > 0}
    if not present:
        return {}
    configured = {c: categories.get(c, DEFAULT) for c in present}
    weights = {c: cfg.weight for c, cfg in configured.items() if cfg.weight is not None}
    effective = {c: cfg.epochs * present[c] for c, cfg in configured.items() if cfg.epochs is not None}
    if not effective:
        total = sum(weights.values())
        return {c: w / total for c, w in weights.items()}
    fixed = sum(weights.values())
    if fixed >= 1:
        raise ConfigError(
            f"categories: weights {weights} sum to {fixed:g}, leaving no share for the epochs categories "
            f"{sorted(effective)}; beside epochs, weights are absolute shares and must sum to less than 1"
        )
    total = sum(effective.values())
    shares = {c: (1 - fixed) * e / total for c, e in effective.items()}
    shares.update(weights)
    return dict(sorted(shares.items()))


def planned_epochs(shares: dict[str, float], tokens: dict[str, int], budget_tokens: int) -> dict[str, float]:
    """Passes over each category's data that a run of `budget_tokens` will make."""
    return {c: share * budget_tokens / tokens[c] for c, share in shares.items()}
