"""Publishing to the Hugging Face Hub: which variant to release under a latency or size limit (``selection``), the
scan that keeps local paths and names out of every file (``leaks``), the release's flags and staged folders
(``plan``), and the checked, resumable push (``hub``). What each task releases is its own ``tasks/*/release.py``."""

from .plan import ReleaseArguments, ReleaseItem, describe_files, move_staged, stage_release

__all__ = ["ReleaseArguments", "ReleaseItem", "describe_files", "move_staged", "stage_release"]
