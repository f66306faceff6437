"""hf_tbc.hardware: the GPU peak table that MFU divides by."""

import pytest

from hf_tbc.hardware import GPU_BF16_PEAKS, gpu_bf16_peak


@pytest.mark.parametrize(
    "name, key",
    [
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40", "L40"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA A10", "A10"),
    ],
)
def test_a_gpu_name_matches_its_own_row_of_the_peak_table(name, key):
    assert gpu_bf16_peak(name) == GPU_BF16_PEAKS[key]


def test_a_gpu_missing_from_the_table_has_no_peak():
    assert gpu_bf16_peak("NVIDIA GeForce RTX 4090") is None
