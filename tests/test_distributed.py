"""Ranks wait for their main process's preparation on a file, not at a barrier that times out."""

import time
from datetime import timedelta

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from hf_tbc.distributed import main_process_first_without_timeout, marker_path


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


class _Prepared(Exception):
    """Raised where a task's training would begin: its data is prepared by then."""


@pytest.mark.parametrize("task", ["mlm", "classification", "translation"])
def test_every_task_prepares_its_data_on_the_main_process_without_a_timeout(tmp_path, monkeypatch, task, english_lines):
    """Each task's preparation goes through ``prepare_on_main_process`` (the wait above), never through
    ``TrainingArguments.main_process_first``, whose barrier fails after ``ddp_timeout`` on a large corpus."""
    import importlib
    from contextlib import contextmanager

    from transformers import TrainingArguments

    from hf_tbc import distributed as ranks

    module = importlib.import_module(f"hf_tbc.tasks.{task}.train")
    prepared = []

    @contextmanager
    def recording(training_args, desc, key=None):
        with ranks.prepare_on_main_process(training_args, desc, key):
            yield
        prepared.append(desc)

    def refused(*args, **kwargs):
        raise AssertionError("TrainingArguments.main_process_first waits at a barrier that times out")

    def stop(*args, **kwargs):
        raise _Prepared

    monkeypatch.setattr(module, "prepare_on_main_process", recording)
    monkeypatch.setattr(TrainingArguments, "main_process_first", refused)
    for name in ("BudgetTrainer", "BudgetSeq2SeqTrainer"):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, stop)
    common = dict(output_dir=str(tmp_path / "out"), time_budget="5s", disable_tqdm=True, report_to="none")
    with pytest.raises(_Prepared):
        _start_training(task, tmp_path, english_lines, common)
    assert prepared, f"the {task} task prepared nothing through prepare_on_main_process"


def _start_training(task: str, folder, english_lines, common: dict) -> None:
    if task == "mlm":
        from hf_tbc.tasks.mlm.arguments import DataTrainingArguments, ModelArguments, PretrainingArguments
        from hf_tbc.tasks.mlm.train import pretrain

        (folder / "text.txt").write_text("\n".join(english_lines) + "\n")
        data = DataTrainingArguments(train_file=str(folder / "text.txt"), block_size=32)
        pretrain(ModelArguments(model_size="L2-H32", vocab_size=400), data, PretrainingArguments(**common))
    elif task == "classification":
        from transformers import RobertaConfig, RobertaForMaskedLM

        from hf_tbc.tasks.classification.arguments import (
            ClassificationDataArguments,
            ClassificationModelArguments,
            FinetuningArguments,
        )
        from hf_tbc.tasks.classification.train import finetune
        from tests.test_classification import write_table

        checkpoint = folder / "checkpoint"
        shape = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
        RobertaForMaskedLM(RobertaConfig(vocab_size=99, **shape)).save_pretrained(checkpoint)
        from datasets import Dataset

        from hf_tbc.tasks.mlm.data import train_tokenizer

        train_tokenizer(Dataset.from_dict({"text": english_lines}), vocab_size=99).save_pretrained(checkpoint)
        rows = [(line, str(index % 2)) for index, line in enumerate(english_lines[:60])]
        train = write_table(folder / "train.csv", ["sentence", "label"], rows[:40])
        dev = write_table(folder / "dev.csv", ["sentence", "label"], rows[40:])
        finetune(
            ClassificationModelArguments(model_name_or_path=str(checkpoint)),
            ClassificationDataArguments(train_file=train, validation_file=dev, max_seq_length=32),
            FinetuningArguments(**common),
        )
    else:
        from hf_tbc.tasks.translation.arguments import (
            TranslationDataArguments,
            TranslationModelArguments,
            TranslationTrainingArguments,
        )
        from hf_tbc.tasks.translation.train import train_translation
        from tests.test_translation import word_pairs, write_tsv

        train = write_tsv(folder / "train.tsv", word_pairs(200, 0))
        dev = write_tsv(folder / "dev.tsv", word_pairs(20, 1))
        train_translation(
            TranslationModelArguments(model_size="E1-D1-H64", vocab_size=300),
            TranslationDataArguments(train_file=train, validation_file=dev),
            TranslationTrainingArguments(**common),
        )
