"""The training run's settings (`strata train`): flags and YAML keys are the same names."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from strata.config.base import Section
from strata.storage import scheme_of, unreadable_scheme


class TrainConfig(Section):
    """`strata train`: flags and YAML keys are the same names (dashes in flags)."""

    data: str  # a build's OUT: folder, s3://, gs://, http(s)://
    out: str  # the run folder (local, or a shared file system for multi-node)
    objective: str  # a name of strata.train.objectives.OBJECTIVES
    model: str = "tiny"  # a preset of strata.train.presets
    seq_len: int = Field(default=1024, ge=8)
    batch_size: int = Field(default=8, ge=1)  # windows per rank per micro-batch
    grad_accum: int = Field(default=1, ge=1)  # micro-batches per optimizer step
    steps: int = Field(ge=1)  # the schedule's length
    # Save and exit after this step, the schedule still running to `steps`: for jobs with a
    # wall-time limit, continued with --resume (Megatron's --exit-interval).
    stop_at: Optional[int] = Field(default=None, ge=1)
    lr: float = Field(default=6e-4, gt=0)
    min_lr: float = Field(default=6e-5, ge=0)  # the cosine ends here at `steps`
    warmup: int = Field(default=100, ge=0)
    weight_decay: float = Field(default=0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = Field(default=1.0, ge=0)  # 0: no clipping
    dropout: float = Field(default=0.0, ge=0, lt=1)
    seed: int = 0
    weights: Optional[dict[str, float]] = None  # category -> weight; default: the manifest's shares
    doc_mask: bool = False  # attention stays inside a document; positions restart per document
    mlm_rate: float = Field(default=0.15, gt=0, lt=1)
    # encoder objectives (train/objectives/): mlm, spanbert, electra, nsp, sop, xlnet
    whole_word: bool = False  # mlm: mask whole words (sentencepiece's ▁ starts a word)
    sbo: bool = True  # spanbert: the span boundary objective beside MLM
    generator_ratio: float = Field(default=0.25, gt=0, le=1)  # electra: generator width / discriminator width
    xlnet_k: int = Field(default=6, ge=2)  # xlnet: predict the last 1/K of the factorization order
    # objective options (train/objectives/): prefix_lm, span_corruption, ul2, bart
    prefix_split: Literal["uniform", "document"] = "uniform"  # prefix LM split point
    noise_density: float = Field(default=0.15, gt=0, lt=1)  # T5 span corruption: share of tokens dropped
    mean_span: float = Field(default=3.0, ge=1)  # T5 span corruption: mean span length
    decoder_only: bool = False  # span_corruption, ul2: the GPT through the prefix mask, not the encoder-decoder
    ul2_mixture: dict[str, float] = Field(default_factory=lambda: {"R": 2 / 7, "X": 4 / 7, "S": 1 / 7})
    bart_rate: float = Field(default=0.3, gt=0, lt=1)  # BART text infilling: share of tokens masked
    bart_poisson: float = Field(default=3.0, gt=0)  # BART: span lengths ~ Poisson(this)
    bart_permute: bool = True  # BART: sentence permutation
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    compile: bool = False
    device: str = "auto"  # auto: cuda (LOCAL_RANK's GPU) if available, else cpu
    num_workers: Optional[int] = Field(default=None, ge=0)  # loader processes; default 2 on CUDA, 0 on CPU
    eval_every: int = Field(default=500, ge=0)  # 0: only at the end
    eval_batches: int = Field(default=20, ge=1)  # per category
    save_every: int = Field(default=1000, ge=0)  # 0: only at the end
    keep_checkpoints: int = Field(default=3, ge=1)
    log_every: int = Field(default=10, ge=1)
    consumed_flush_every: int = Field(default=100, ge=1)
    resume: bool = False
    init_from: Optional[str] = None  # a HF checkpoint folder (GPT-2 for clm, RoBERTa-PreLayerNorm for mlm)
    # Check shards against the manifest as they are read (size, sha256, block checksums);
    # --no-verify is for users who accept training on whatever the files hold.
    verify: bool = True
    # A shard's sha256 is computed once per machine: the record of shards that matched
    # (STRATA_CACHE_DIR, default ~/.cache/strata) spares the pass over unchanged files in
    # later runs. verify_every_run uses no record: every run hashes every shard it reads.
    verify_every_run: bool = False

    @field_validator("data")
    @classmethod
    def _readable(cls, data: str) -> str:
        problem = unreadable_scheme(data)
        if problem:
            raise ValueError(problem)
        return data

    @field_validator("out")
    @classmethod
    def _local(cls, out: str) -> str:
        if scheme_of(out) not in (None, "file"):
            raise ValueError(f"the run folder must be local (or on a shared file system), not {out.split(':', 1)[0]}:...")
        return out

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, name: str) -> str:
        from strata.train.objectives.registry import OBJECTIVES  # imports torch: only when training

        if name not in OBJECTIVES:
            raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(sorted(OBJECTIVES))}")
        return name

    @field_validator("ul2_mixture")
    @classmethod
    def _ul2_modes(cls, mixture: dict[str, float]) -> dict[str, float]:
        if set(mixture) - {"R", "X", "S"} or any(w < 0 for w in mixture.values()) or sum(mixture.values()) <= 0:
            raise ValueError("give weights >= 0 of the modes R, X, S with a positive sum")
        return mixture

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr: {self.min_lr} is above lr {self.lr}")
        if self.weights is not None and (not self.weights or any(w < 0 for w in self.weights.values())
                                         or sum(self.weights.values()) <= 0):
            raise ValueError("weights: give non-negative weights with a positive sum")
        return self
