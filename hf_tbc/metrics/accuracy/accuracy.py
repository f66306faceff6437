"""Accuracy as an `evaluate` metric that ships with hf-tbc, so `evaluate.load` needs no Hub download."""

import datasets
import evaluate

_DESCRIPTION = "Accuracy: the fraction of predictions equal to their references, (TP + TN) / all."
_INPUTS = """
Args:
    predictions (`list[int]`): predicted labels.
    references (`list[int]`): true labels.
    normalize (`bool`, defaults to `True`): return a fraction; `False` returns the count of correct predictions.
    sample_weight (`list[float]`, *optional*): weight of each example.
Returns:
    accuracy (`float`): in [0, 1] when normalized.
Examples:
    >>> metric = evaluate.load("hf_tbc/metrics/accuracy")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
        weights = sample_weight if sample_weight is not None else [1.0] * len(references)
        correct = sum(w for p, r, w in zip(predictions, references, weights) if p == r)
        total = sum(weights)
        value = correct / total if normalize else correct
        return {"accuracy": float(value)}
