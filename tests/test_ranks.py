"""Ranks wait for their main process's preparation on a file, not at a barrier that times out."""

import time
from datetime import timedelta

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from hf_tbc.ranks import main_process_first_without_timeout, marker_path


def _rank(rank: int, port: int, key: str, fail: bool, results) -> None:
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=2))
    order = []
    try:
        with main_process_first_without_timeout(rank == 0, 2, dist.barrier, key, "preparing", poll_seconds=0.1):
            if rank == 0:
                time.sleep(5)  # longer than the process group's 2 s timeout
                if fail:
                    raise RuntimeError("disk full")
            order.append((rank, time.monotonic()))
        dist.barrier()  # the group still works afterwards
        results[rank] = ("ok", order[0][1])
    except Exception as error:  # noqa: BLE001 - the test reads what each rank raised
        results[rank] = ("error", str(error))
    finally:
        dist.destroy_process_group()


def _run(tmp_path, monkeypatch, fail: bool, port: int) -> dict:
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # the spawned ranks inherit both
    monkeypatch.setenv("MASTER_PORT", str(port))
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_rank, args=(port, str(tmp_path), fail, results), nprocs=2, join=True)
    return dict(results)


def test_ranks_wait_longer_than_the_timeout_for_the_main_process(tmp_path, monkeypatch):
    results = _run(tmp_path, monkeypatch, fail=False, port=29_611)
    assert results[0][0] == results[1][0] == "ok", results
    assert results[1][1] >= results[0][1]  # the other rank ran its body after the main process had finished
    assert marker_path(str(tmp_path)).read_text() == "done"


def test_a_failure_on_the_main_process_stops_the_others_with_its_error(tmp_path, monkeypatch):
    results = _run(tmp_path, monkeypatch, fail=True, port=29_612)
    assert results[0] == ("error", "disk full")
    assert (
        results[1][0] == "error"
        and "the main process stopped while preparing (RuntimeError: disk full)" in (results[1][1])
    )


def test_one_process_runs_the_body_without_any_collective(tmp_path):
    ran = []
    with main_process_first_without_timeout(True, 1, lambda: pytest.fail("no barrier"), str(tmp_path), "x"):
        ran.append(True)
    assert ran == [True] and not marker_path(str(tmp_path)).exists()
