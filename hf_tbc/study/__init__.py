"""A study: every size of a task trained on one budget, finetuned, compressed, released and reported, as one
resumable sequence of stages (``stages``) driven by a YAML config."""

from .stages import StageFailed, StagePreempted, StudyConfig, run_stages

__all__ = ["StageFailed", "StagePreempted", "StudyConfig", "run_stages"]
