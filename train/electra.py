"""ELECTRA (Clark et al., 2020): replaced token detection.

    sample      (objectives/electra.py) 15% of the non-special positions replaced by the
                mask token (the paper's masking: [MASK] only, no 80/10/10), and one
                uniform number per position (the seed of the generator's draw there)
    generator   a small MLM encoder: width, heads and feed-forward `generator_ratio` of the
                discriminator's (default 1/4), same depth; it reads the shared embeddings
                through a linear projection and predicts the masked tokens through the
                shared token matrix
    replace     every masked position gets a token drawn from the generator's softmax
                (inverse CDF at the sample's uniform number: no gradient flows through it)
    discriminator  the full-size encoder labels every position original (0) or replaced
                (1); a drawn token equal to the original counts as original
    loss        generator MLM loss + 50 x discriminator loss (the paper's lambda), trained
                jointly; token and position embeddings are shared (the paper's tying)

Both networks are post-LN, as the paper's (BERT's blocks: `post_ln`, the default here),
so that train/hf_electra.py exports the discriminator as transformers'
`ElectraForPreTraining` and the generator as `ElectraForMaskedLM`, weight for weight.

The discriminator (`Electra.discriminator`, an encoder stack) is what downstream tasks
load: `Electra.discriminator_state()` is its state dict with the keys of an `Encoder`'s
`transformer` (an Encoder with `post_ln=True`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from strata.train.encoder import EncoderConfig, EncoderStack, encoder_blocks, final_norm
from strata.train.gpt import IGNORE_INDEX, init_gpt2

DISCRIMINATOR_WEIGHT = 50.0  # lambda


@dataclass
class ElectraConfig(EncoderConfig):
    """The discriminator's shape, and the generator's share of its width."""

    generator_ratio: float = 0.25
    post_ln: bool = True


def generator_config(config: EncoderConfig, ratio: float) -> EncoderConfig:
    """The discriminator's config scaled down: width and heads times `ratio`."""
    n_head = max(1, round(config.n_head * ratio))
    n_embd = max(n_head, round(config.n_embd * ratio / n_head) * n_head)
    return replace(config, n_embd=n_embd, n_head=n_head)


def draw_from(logits: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One token per row of logits [N, V]: the inverse CDF of softmax(logits) at uniform [N]."""
    cdf = torch.softmax(logits.float(), dim=-1).cumsum(-1)
    return torch.searchsorted(cdf, uniform[:, None].float()).squeeze(-1).clamp(max=logits.size(-1) - 1)


class Electra(nn.Module):
    def __init__(self, config: ElectraConfig):
        super().__init__()
        self.config = config
        small = generator_config(config, config.generator_ratio)
        self.discriminator = EncoderStack(config)
        self.discriminator_head = nn.Sequential(nn.Linear(config.n_embd, config.n_embd), nn.GELU(),
                                                nn.Linear(config.n_embd, 1))
        self.generator = nn.ModuleDict(dict(
            project=nn.Linear(config.n_embd, small.n_embd),  # shared embeddings -> generator width
            h=encoder_blocks(small),
            ln_f=final_norm(small),
            head=nn.Sequential(nn.Linear(small.n_embd, config.n_embd), nn.GELU(),
                               nn.LayerNorm(config.n_embd, eps=config.norm_eps)),
        ))
        self.generator_bias = nn.Parameter(torch.zeros(config.vocab_size))
        init_gpt2(self, config.n_layer)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def discriminator_state(self) -> dict[str, torch.Tensor]:
        """The discriminator's weights as an Encoder's `transformer.*` entries."""
        return {f"transformer.{k}": v for k, v in self.discriminator.state_dict().items()}

    def generator_logits(self, inputs: torch.Tensor, segments: torch.Tensor | None) -> torch.Tensor:
        x, mask = self.discriminator.embed(inputs, segments)  # the shared embeddings
        x = self.generator.project(x)
        for block in self.generator.h:
            x = block(x, mask)
        x = self.generator.head(self.generator.ln_f(x))
        return F.linear(x, self.discriminator.wte.weight, self.generator_bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor,
                segments: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-> (generator loss + 50 x discriminator loss, extras)."""
        masked = targets != IGNORE_INDEX
        gen_logits = self.generator_logits(idx, segments)[masked]
        generator_loss = F.cross_entropy(gen_logits, targets[masked])
        original = torch.where(masked, targets, idx)
        corrupted = original.clone()
        with torch.no_grad():
            corrupted[masked] = draw_from(gen_logits, noise[masked])
        replaced = (corrupted != original).float()
        disc_logits = self.discriminator_head(self.discriminator(corrupted, segments)).squeeze(-1)
        discriminator_loss = F.binary_cross_entropy_with_logits(disc_logits.float(), replaced)
        accuracy = ((disc_logits > 0).float() == replaced).float().mean()
        extras = {"generator_loss": generator_loss.detach(), "discriminator_loss": discriminator_loss.detach(),
                  "replaced": replaced.mean().detach(), "discriminator_accuracy": accuracy.detach()}
        return generator_loss + DISCRIMINATOR_WEIGHT * discriminator_loss, extras
