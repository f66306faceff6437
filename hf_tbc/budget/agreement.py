"""Agreement across ranks: the main process's clock and any rank's preemption flag, shared in one collective."""

from __future__ import annotations

import torch

_GLOO_GROUP = None


def control_group():
    """The process group for the budget's control message: the default one when it is already CPU-based
    (gloo), otherwise a gloo group over the same ranks, made once per process group (a collective call)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    if torch.distributed.get_backend() == "gloo":
        return None
    global _GLOO_GROUP
    if _GLOO_GROUP is None or _GLOO_GROUP[0] is not torch.distributed.group.WORLD:
        _GLOO_GROUP = (torch.distributed.group.WORLD, torch.distributed.new_group(backend="gloo"))
    return _GLOO_GROUP[1]


def agree(elapsed: float, preempted: bool, group=None) -> tuple[float, bool]:
    """Rank 0's ``elapsed`` and whether any rank was preempted, the same on every rank.

    The message travels on a CPU (gloo) group, so with NCCL the per-step decision costs no device
    synchronisation. Without a process group, the values come back as given.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return elapsed, preempted
    is_main = torch.distributed.get_rank() == 0
    shared = torch.tensor([elapsed if is_main else 0.0, float(preempted)], dtype=torch.float64)
    torch.distributed.all_reduce(shared, op=torch.distributed.ReduceOp.SUM, group=group)
    elapsed, preempted_count = shared.tolist()
    return elapsed, preempted_count > 0
