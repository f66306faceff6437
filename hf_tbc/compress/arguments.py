"""The flags of ``recipes/compress.py``: the grid of pruning methods, sparsities and quantizations, recovery, and
how latency is measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..errors import UsageError
from .importance import IMPORTANCE
from .unstructured import PRUNING_SCOPES, check_sparsity

QUANTIZATION_METHODS = ("none", "onnx-int8", "quanto-int8", "quanto-int4", "quanto-int2")
CLASSIFIER_QUANTIZATION = "none,onnx-int8,quanto-int8,quanto-int4"
TRANSLATION_QUANTIZATION = "none,torch-int8,onnx,onnx-int8"
TRANSLATION_ONLY = ("torch-int8", "onnx")  # saved only for encoder-decoders
PRUNING_METHODS = ("unstructured", "structured")
SCHEDULES = ("oneshot", "gradual")


@dataclass
class CompressionArguments:
    """What to compress and how; ``HfArgumentParser`` turns each field into a flag."""

    model_name_or_path: str = field(
        metadata={
            "help": "The finetuned classifier (a run_classification.py output folder) or translation model (a "
            "run_translation.py output folder)."
        }
    )
    output_dir: str = field(metadata={"help": "One subfolder per variant, plus compression.jsonl and the plots."})
    sparsities: str = field(
        default="0,0.5,0.9",
        metadata={
            "help": "Comma-separated target sparsities in [0, 1): the "
            "fraction of the encoder's linear weights to prune."
        },
    )
    pruning_method: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated, each applied to every sparsity. unstructured (classifiers' default): zero the "
            "smallest weights (same size and speed, stored zeros); structured: remove whole layers and feed-forward "
            "neurons (a smaller, faster dense model). Translation models: structured only (the default), feed-forward "
            "neurons of every encoder and decoder layer (the sparsity is the fraction of them removed)."
        },
    )
    quantization: Optional[str] = field(
        default=None,
        metadata={
            "help": f"Comma-separated methods, each applied to every sparsity: {', '.join(QUANTIZATION_METHODS)} "
            f"(default {CLASSIFIER_QUANTIZATION}); translation models (default all four): none, torch-int8 (PyTorch "
            "dynamic int8), onnx (fp32 ONNX graphs run by ONNX Runtime), onnx-int8 (the same, ONNX Runtime's dynamic "
            "int8)."
        },
    )
    pruning_scope: str = field(
        default="layer",
        metadata={
            "help": "Unstructured: layer: the same sparsity in every matrix; global: one threshold.",
            "choices": list(PRUNING_SCOPES),
        },
    )
    prune_embeddings_and_head: bool = field(
        default=False, metadata={"help": "Unstructured: prune embeddings and the classifier too."}
    )
    importance: str = field(
        default="magnitude",
        metadata={
            "help": "Structured: how neurons and layers are ranked. magnitude: weight norms, top layers first; taylor: "
            "|weight x gradient| on --importance_batches batches of the training data.",
            "choices": list(IMPORTANCE),
        },
    )
    importance_batches: int = field(
        default=100,
        metadata={"help": "Structured with taylor, and --target_shapes: training batches to score importance on."},
    )
    layer_share: float = field(
        default=0.5,
        metadata={
            "help": "Structured: share of the removed weights taken as whole layers (the rest as feed-forward neurons)."
        },
    )
    pruning_schedule: str = field(
        default="oneshot",
        metadata={
            "help": "oneshot: prune, then recover with the masks fixed; gradual: sparsity rises on a cubic schedule "
            "over the first --gradual_end of the recovery budget, then recovery goes on (needs a recovery budget).",
            "choices": list(SCHEDULES),
        },
    )
    gradual_end: float = field(
        default=0.75, metadata={"help": "Gradual: the fraction of recovery at which the final sparsity is reached."}
    )
    target_shapes: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated smaller shapes to prune the model to, named like the task's sizes (translation "
            "E2-D1-H128: encoder and decoder layers apart; classifiers L2-H128): layers by how much they change the "
            "hidden states, hidden channels, whole attention heads and feed-forward neurons by their activations on "
            "--importance_batches training batches. Each is a stock model of that config, recovered like every "
            "pruned variant (distilled from the dense model unless --no_distill). Variants are named "
            "to-<shape>-<quantization>."
        },
    )
    distill: bool = field(
        default=True,
        metadata={
            "help": "Recovery of pruned variants learns from the dense model's predictions (its logits at "
            "--distill_temperature, weight --distill_alpha) as well as from the labels; --no_distill: labels only. "
            "The dense variant's own recovery has no teacher."
        },
    )
    distill_alpha: float = field(
        default=0.5, metadata={"help": "Weight of the distillation loss in recovery (the task loss gets the rest)."}
    )
    distill_beams: int = field(
        default=0,
        metadata={
            "help": "Translation: a distilled variant's recovery learns from the dense model's own beam-search "
            "translations (this many beams) of each batch's sources instead of the references (sequence-level "
            "distillation), the word-level loss following them; generated inside each step, so within the recovery "
            "budget. 0: the references."
        },
    )
    distill_temperature: float = field(
        default=2.0, metadata={"help": "Temperature of teacher and student distributions in distillation."}
    )
    recovery_steps: int = field(
        default=0,
        metadata={
            "help": "Finetune each variant this many steps after pruning "
            "(the dense one too, so the comparison is fair)."
        },
    )
    recovery_time_budget: Optional[str] = field(
        default=None, metadata={"help": "Or finetune each variant for this long."}
    )
    recovery_learning_rate: Optional[float] = field(
        default=None,
        metadata={
            "help": "Peak LR of recovery finetuning (default 5e-5 for classifiers; 2e-4 for translation models, "
            "trained from scratch at 1e-3)."
        },
    )
    latency_batch_size: int = field(default=32, metadata={"help": "Batch size of the latency measurement."})
    latency_sequence_length: int = field(
        default=128, metadata={"help": "Tokens per example in the latency measurement."}
    )
    latency_runs: int = field(default=10, metadata={"help": "Timed forward passes; the median is recorded."})
    latency_sentences: int = field(
        default=50,
        metadata={"help": "Translation: sentences translated one at a time (batch 1) for the latency per sentence."},
    )
    latency_memory_mb: Optional[float] = field(
        default=None,
        metadata={
            "help": "Most memory the final side-by-side latency measurement may hold in loaded variants (each "
            "counted at twice its size on disk); variants that do not fit together are measured in consecutive groups. "
            "Default: half the memory available when it starts."
        },
    )
    num_threads: Optional[int] = field(
        default=None, metadata={"help": "CPU threads for every variant (default: torch's)."}
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace an existing compression output."})
    seed: int = field(default=42, metadata={"help": "Seed of recovery finetuning."})

    def __post_init__(self):
        self.sparsity_grid = [check_sparsity(_number(value, "--sparsities")) for value in _split(self.sparsities)]
        self.methods = _split(self.quantization or CLASSIFIER_QUANTIZATION)
        self.recovery_lr = self.recovery_learning_rate or 5e-5
        unknown = [method for method in self.methods if method not in (*QUANTIZATION_METHODS, *TRANSLATION_ONLY)]
        if unknown:
            raise UsageError(
                f"unknown quantization method {unknown[0]!r}: choose from {', '.join(QUANTIZATION_METHODS)}"
            )
        self.pruning_methods = _split(self.pruning_method or "unstructured")
        unknown = [method for method in self.pruning_methods if method not in PRUNING_METHODS]
        if unknown or not self.pruning_methods:
            raise UsageError(
                f"unknown --pruning_method {(unknown or [''])[0]!r}: choose from {', '.join(PRUNING_METHODS)}"
            )
        if self.pruning_scope not in PRUNING_SCOPES:
            raise UsageError(f"--pruning_scope {self.pruning_scope} is unknown: choose layer or global")
        if self.importance not in IMPORTANCE:
            raise UsageError(f"--importance {self.importance} is unknown: choose magnitude or taylor")
        if self.pruning_schedule not in SCHEDULES:
            raise UsageError(f"--pruning_schedule {self.pruning_schedule} is unknown: choose oneshot or gradual")
        if self.pruning_schedule == "gradual" and not self.recovers:
            raise UsageError(
                "--pruning_schedule gradual prunes during finetuning: pass --recovery_time_budget or --recovery_steps"
            )
        if not 0.0 < self.gradual_end <= 1.0:
            raise UsageError(f"--gradual_end {self.gradual_end} must be in (0, 1]")
        if not 0.0 <= self.layer_share <= 1.0:
            raise UsageError(f"--layer_share {self.layer_share} must be in [0, 1]")
        self.shape_names = [name.upper() for name in _split(self.target_shapes or "")]
        if not self.sparsity_grid and not self.shape_names:
            raise UsageError("nothing to build: pass --sparsities (0 for the dense model) or --target_shapes")
        if not 0.0 <= self.distill_alpha <= 1.0 or self.distill_temperature <= 0:
            raise UsageError(
                f"--distill_alpha {self.distill_alpha} must be in [0, 1] and --distill_temperature "
                f"{self.distill_temperature} above 0"
            )
        if self.distill_beams < 0:
            raise UsageError(f"--distill_beams {self.distill_beams} must be 0 (the references) or a number of beams")

    def for_translation(self) -> None:
        """The defaults of a translation model's grid, for the flags left unset: structured (feed-forward) pruning,
        fp32, PyTorch dynamic int8, and ONNX Runtime fp32 and int8."""
        if self.quantization is None:
            self.methods = _split(TRANSLATION_QUANTIZATION)
        if self.pruning_method is None:
            self.pruning_methods = ["structured"]
        self.recovery_lr = self.recovery_learning_rate or 2e-4

    @property
    def recovers(self) -> bool:
        return bool(self.recovery_steps or self.recovery_time_budget)

    @property
    def needs_training_data(self) -> bool:
        taylor = "structured" in self.pruning_methods and self.importance == "taylor"
        return self.recovers or taylor or bool(self.shape_names)  # shapes: importance measured on training batches

    def recovery_record(self, seconds: float, steps: int, distilled: bool) -> dict:
        """What a variant's row says of its recovery: the budget, the seconds and optimizer steps it took (a teacher's
        forward pass makes each step dearer: under a time budget, fewer steps), and the teacher's settings."""
        return {
            "recovery_budget": (self.recovery_time_budget or f"{self.recovery_steps} steps") if self.recovers else None,
            "recovery_s": round(seconds, 1),
            "recovery_steps_run": steps,
            "distilled": distilled,
            "distill_alpha": self.distill_alpha if distilled else None,
            "distill_temperature": self.distill_temperature if distilled else None,
            "distill_beams": self.distill_beams if distilled and self.distill_beams else None,
        }

    @property
    def teacher_used(self) -> bool:
        """Whether pruned variants recover from the dense model's logits."""
        return self.distill and self.recovers


def _split(text: str) -> list[str]:
    return [part.strip() for part in str(text).split(",") if part.strip()]


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a number: write e.g. 0,0.5,0.9") from None


def variant_name(sparsity: float, method: str, pruning: str = "unstructured") -> str:
    """``dense-fp32``, ``pruned50-onnx-int8`` (unstructured), ``structured50-onnx-int8`` (sparsity in percent)."""
    base = (
        "dense" if sparsity == 0 else f"{'pruned' if pruning == 'unstructured' else pruning}{round(sparsity * 100):02d}"
    )
    return f"{base}-{'fp32' if method == 'none' else method}"


def shape_variant_name(shape: str, method: str) -> str:
    """``to-E2-D2-H128-fp32``: the model pruned to the shape ``shape`` (named like the task's sizes)."""
    return f"to-{shape}-{'fp32' if method == 'none' else method}"
