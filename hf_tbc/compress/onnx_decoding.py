"""Greedy and beam search in numpy over a one-step function, with the rules of transformers' ``generate``.

``step(last_tokens, past) -> (logits, past)`` runs the decoder one token further for every row (``past`` is a list
of arrays whose first axis is the row, e.g. each layer's keys and values); the searches keep the tokens, apply the
logits processors a generation config asks for (``min_length``, ``no_repeat_ngram_size``, the forced end token at
``max_length``) and, for beam search, reorder ``past`` with the beams.
:class:`~hf_tbc.compress.onnx_seq2seq.OnnxModelForSeq2SeqLM` decodes its ONNX graphs with them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from transformers import GenerationConfig

Step = Callable[[np.ndarray, list], tuple]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def ban_repeated_ngrams(scores: np.ndarray, tokens: np.ndarray, size: int) -> None:
    """Sets to -inf, in place, every token that would repeat an n-gram of ``size`` already in its row of
    ``tokens`` (transformers' ``NoRepeatNGramLogitsProcessor``)."""
    length = tokens.shape[1]
    if size <= 0 or length < size:  # no whole n-gram yet
        return
    if size == 1:
        rows = np.repeat(np.arange(tokens.shape[0]), length)
        scores[rows, tokens.reshape(-1)] = -np.inf
        return
    windows = np.lib.stride_tricks.sliding_window_view(tokens, size, axis=1)  # [rows, length - size + 1, size]
    prefix = tokens[:, length - size + 1 :]
    hits = (windows[:, :, :-1] == prefix[:, None, :]).all(axis=-1)
    rows, starts = np.nonzero(hits)
    scores[rows, windows[rows, starts, -1]] = -np.inf


def process_scores(scores: np.ndarray, tokens: np.ndarray, generation: GenerationConfig, eos: list[int]) -> None:
    """transformers' logits processors of this decoding, in place: min length, no repeated n-grams, forced end."""
    length = tokens.shape[1]
    if eos and generation.min_length and length < generation.min_length:
        scores[:, eos] = -np.inf
    ban_repeated_ngrams(scores, tokens, generation.no_repeat_ngram_size or 0)
    forced = generation.forced_eos_token_id
    if forced is not None and length == generation.max_length - 1:
        forced = [forced] if isinstance(forced, int) else list(forced)
        keep = scores[:, forced].copy()
        scores[:] = -np.inf
        scores[:, forced] = 0.0 if np.isfinite(keep).any() else keep


def greedy_search(
    step: Step, past: list, batch: int, generation: GenerationConfig, start: int, eos: list[int], pad: int
) -> list[list[int]]:
    """Each row's most likely token, step by step, until every row has ended or ``max_length``."""
    tokens = np.full((batch, 1), start, dtype=np.int64)
    done = np.zeros(batch, dtype=bool)
    while tokens.shape[1] < generation.max_length and not done.all():
        logits, past = step(tokens[:, -1:], past)
        process_scores(logits, tokens, generation, eos)
        chosen = np.where(done, pad, logits.argmax(axis=-1))
        tokens = np.concatenate([tokens, chosen[:, None]], axis=1)
        done |= np.isin(chosen, eos)
    output = []
    for row, finished in zip(tokens.tolist(), done):
        end = next((i + 1 for i, token in enumerate(row[1:], 1) if token in eos), len(row))
        output.append(row[:end] if finished else row)
    return output


def beam_search(
    step: Step, past: list, batch: int, generation: GenerationConfig, start: int, eos: list[int], pad: int
) -> list[list[int]]:
    """Beam search with transformers' rules: the 2 x beams best continuations each step, an end token among the
    best ``beams`` closes a hypothesis scored sum log-probability / generated length ** length_penalty, and a
    sentence is done once it holds ``beams`` closed ones (``early_stopping=True``) that no running beam can beat
    at its current length (``False``, the default) or, with a positive length penalty, at ``max_length``
    (``"never"``). ``step`` and ``past`` hold ``batch x num_beams`` rows, each sentence's beams together."""
    beams = generation.num_beams
    penalty = generation.length_penalty if generation.length_penalty is not None else 1.0
    early = generation.early_stopping if generation.early_stopping is not None else False
    tokens = np.full((batch * beams, 1), start, dtype=np.int64)
    running = np.full((batch, beams), -1e9, dtype=np.float32)
    running[:, 0] = 0.0
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    candidates = max(2, 1 + len(eos)) * beams  # as transformers: enough that `beams` of them do not end
    done_before = done.copy()  # the sentences done before the last step
    while tokens.shape[1] < generation.max_length and not done.all():
        done_before = done.copy()
        logits, past = step(tokens[:, -1:], past)
        scores = log_softmax(logits.astype(np.float32, copy=False))
        process_scores(scores, tokens, generation, eos)
        vocabulary = scores.shape[-1]
        total = (running.reshape(-1, 1) + scores).reshape(batch, beams * vocabulary)
        top = np.argpartition(-total, candidates - 1, axis=1)[:, :candidates]  # the best, unordered
        ranked = np.argsort(-np.take_along_axis(total, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, ranked, axis=1)
        beam, token = np.divmod(top, vocabulary)
        score = np.take_along_axis(total, top, axis=1)
        ends = np.isin(token, eos) & ~done[:, None]
        generated = tokens.shape[1]  # tokens after the start one, the new one included
        # the length at which a running beam could score best: now, or with "never" and a penalty that rewards
        # length, the longest it may grow
        best_length = generation.max_length - 1 if early == "never" and penalty > 0 else generated
        closing = ends[:, :beams] & np.isfinite(score[:, :beams])  # an end among the best beams closes one
        for item, rank in zip(*np.nonzero(closing)):
            row = tokens[item * beams + beam[item, rank]].tolist() + [int(token[item, rank])]
            finished[item].append((float(score[item, rank]) / generated**penalty, row))
        # the best continuations that do not end run on (there are always enough: at most one end per beam and
        # end token among the candidates)
        keep = np.argsort(ends, axis=1, kind="stable")[:, :beams]
        next_tokens = np.take_along_axis(token, keep, axis=1).reshape(-1)
        running = np.take_along_axis(score, keep, axis=1).astype(np.float32)
        next_rows = (np.arange(batch)[:, None] * beams + np.take_along_axis(beam, keep, axis=1)).reshape(-1)
        for item in np.unique(np.nonzero(closing)[0]):
            finished[item] = sorted(finished[item], key=lambda hypothesis: -hypothesis[0])[:beams]
        for item in np.nonzero(~done)[0]:
            if len(finished[item]) == beams:
                done[item] = early is True or running[item].max() / best_length**penalty <= finished[item][-1][0]
        tokens = np.concatenate([tokens[next_rows], next_tokens[:, None].astype(np.int64)], axis=1)
        past = [part[next_rows] for part in past]
    output = []
    generated = tokens.shape[1] - 1
    out_of_length = tokens.shape[1] >= generation.max_length
    for item in range(batch):
        hypotheses = list(finished[item])
        # out of length, the running beams compete with the closed hypotheses, also those closed in the last step
        # (the sentence was still open when it began)
        if out_of_length and not done_before[item]:
            for index in range(beams):
                if running[item, index] > -1e8:
                    row = tokens[item * beams + index].tolist()
                    hypotheses.append((float(running[item, index]) / generated**penalty, row))
        output.append(max(hypotheses, key=lambda hypothesis: hypothesis[0])[1])
    return output
