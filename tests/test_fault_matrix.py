"""The fault matrix's bad-input, Hub, release and compression sections, run as tests (benchmarks/fault_matrix.py runs
every section; the DDP-loss and launcher faults are tested in test_training.py and test_launch.py)."""

import pytest

from benchmarks.fault_matrix import (
    bad_input_rows,
    build_fixtures,
    compress_rerun,
    hub_faults,
    leak_scan,
    midway_fault,
    preflight_faults,
)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory, isolated_cache):
    work = tmp_path_factory.mktemp("faults")
    return work, build_fixtures(work)


@pytest.mark.slow
def test_every_bad_input_is_one_error_line_exit_2_and_leaves_nothing(fixtures):
    work, made = fixtures
    rows, cases = bad_input_rows(work, made)
    failed = [f"{name}: {line}" for name, ok, line in cases if not ok]
    assert not failed, "\n".join(failed)
    assert len(cases) >= 25 and len({name.split(":")[0] for name, _, _ in cases}) == 5  # all five recipes


@pytest.mark.slow
def test_a_release_reports_pushed_exactly_what_the_hub_holds_under_network_faults(fixtures):
    work, made = fixtures
    (row,) = hub_faults(work, made)
    assert row.held == row.runs, row.detail


@pytest.mark.slow
@pytest.mark.parametrize("section", [preflight_faults, midway_fault, leak_scan, compress_rerun])
def test_release_and_compression_faults_hold(fixtures, section):
    work, made = fixtures
    for row in section(work, made):
        assert row.held == row.runs, f"{row.fault}: {row.detail}"
