"""Evaluation metrics: masked-LM accuracy and perplexity, classification accuracy, SQuAD EM/F1.

SQuAD exact match and F1 use torchmetrics' implementation of the official v1.1 script (answer
normalisation: lower case, no punctuation, no articles a/an/the, collapsed white space; the best
score over the gold answers), reported like the official script in percent (0-100). The
postprocessing from start/end logits to answer text is the standard one of the Hugging Face
question-answering examples. The paper's own numbers are in :mod:`lshlib.paper`.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import numpy as np
from torchmetrics.functional.text import squad as _tm_squad

IGNORE_INDEX = -100


def masked_accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy over the positions whose label is not ``-100`` (the masked tokens in MLM)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"shapes differ: predictions {predictions.shape}, labels {labels.shape}")
    keep = labels != IGNORE_INDEX
    if not keep.any():
        raise ValueError("no labelled positions (every label is -100)")
    return float((predictions[keep] == labels[keep]).mean())


def perplexity(loss: float) -> float:
    """``exp(loss)`` for a mean cross-entropy in nats (``inf`` on overflow)."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of equal entries (classification accuracy)."""
    return masked_accuracy(predictions, labels)


def majority_accuracy(labels: Sequence[int]) -> float:
    """Accuracy of always predicting the most frequent label (the floor a classifier must beat)."""
    counts = collections.Counter(int(x) for x in labels)
    if not counts:
        raise ValueError("labels is empty")
    return max(counts.values()) / sum(counts.values())


def accuracy_difference(a: float, b: float, n: int, z: float = 1.96) -> dict[str, float]:
    """Difference ``a - b`` of two accuracies measured on the same ``n`` examples, with its
    standard error and half-width of the ``z`` interval under the unpaired normal
    approximation ``sqrt(a(1-a)/n + b(1-b)/n)`` (conservative when the two models' errors are
    positively correlated, as on a shared test set)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    for name, value in (("a", a), ("b", b)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"accuracy {name} must lie in [0, 1], got {value}")
    se = math.sqrt(a * (1 - a) / n + b * (1 - b) / n)
    return {"difference": a - b, "stderr": se, "half_width": z * se}


def squad_scores(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """SQuAD v1.1 exact match and F1 in percent, each the best over an example's gold answers.

    ``predictions`` maps a question id to the predicted text, ``references`` the id to its gold
    answer texts; every reference id must have a prediction.
    """
    missing = set(references) - set(predictions)
    if missing:
        raise ValueError(f"{len(missing)} questions have no prediction, e.g. {sorted(missing)[:3]}")
    preds = [{"id": k, "prediction_text": predictions[k]} for k in references]
    target = [
        {"id": k, "answers": {"text": list(v), "answer_start": [0] * len(v)}}
        for k, v in references.items()
    ]
    out = _tm_squad(preds, target)
    return {"exact_match": float(out["exact_match"]), "f1": float(out["f1"])}


def squad_postprocess(
    examples,
    features,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """Answer text per question from start/end logits of its (possibly several) features.

    ``features`` need ``example_id`` and ``offset_mapping`` (``None`` outside the context, as
    :func:`lshlib.training.features.squad_eval_features` writes them). For each question the best
    span over all its features by ``start + end`` logit, among the ``n_best`` starts and ends, with
    end >= start and at most ``max_answer_length`` tokens; ``""`` when none is valid.
    """
    by_example: dict[str, list[int]] = collections.defaultdict(list)
    for i, example_id in enumerate(features["example_id"]):
        by_example[example_id].append(i)
    offsets_all = features["offset_mapping"]
    answers: dict[str, str] = {}
    for example in examples:
        context = example["context"]
        best_score, best_text = -math.inf, ""
        for i in by_example.get(example["id"], []):
            offsets = offsets_all[i]
            starts = np.argsort(start_logits[i])[-1 : -n_best - 1 : -1]
            ends = np.argsort(end_logits[i])[-1 : -n_best - 1 : -1]
            for s in starts:
                for e in ends:
                    if s >= len(offsets) or e >= len(offsets):
                        continue
                    if offsets[s] is None or offsets[e] is None:
                        continue
                    if e < s or e - s + 1 > max_answer_length:
                        continue
                    score = start_logits[i][s] + end_logits[i][e]
                    if score > best_score:
                        best_score = score
                        best_text = context[offsets[s][0] : offsets[e][1]]
        answers[example["id"]] = best_text
    return answers
