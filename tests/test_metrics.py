"""Metrics on hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lshlib import paper
from lshlib.training import metrics


def test_masked_accuracy_ignores_unlabelled_positions():
    preds = np.array([[1, 2, 3], [4, 5, 6]])
    labels = np.array([[1, -100, 0], [-100, 5, -100]])
    assert metrics.masked_accuracy(preds, labels) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no labelled"):
        metrics.masked_accuracy(preds, np.full_like(labels, -100))
    with pytest.raises(ValueError, match="shapes"):
        metrics.masked_accuracy(preds, labels[:1])


def test_perplexity_and_majority():
    assert metrics.perplexity(math.log(243.6)) == pytest.approx(243.6)
    assert metrics.perplexity(1e6) == math.inf
    assert metrics.majority_accuracy([1, 1, 0, 1]) == 0.75
    assert metrics.accuracy(np.array([0, 1, 1]), np.array([0, 1, 0])) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "prediction,golds,em,f1",
    [
        ("the cat", ["Cat"], 100.0, 100.0),  # article and case removed
        ("Denver Broncos!", ["Denver  Broncos"], 100.0, 100.0),  # punctuation, white space
        # "a dog sat" -> "dog sat"; vs "dog": P 1/2, R 1 -> 2/3; vs "dog sat on": P 1, R 2/3
        # -> 4/5; best over golds = 0.8
        ("a dog sat", ["the dog", "dog sat on"], 0.0, 80.0),
        ("paris", ["London"], 0.0, 0.0),
        # "in 1990 the year" -> "in 1990 year" vs "1990": P 1/3, R 1 -> F1 1/2
        ("in 1990, the year", ["1990"], 0.0, 50.0),
    ],
)
def test_squad_scores_worked_examples(prediction, golds, em, f1):
    out = metrics.squad_scores({"q": prediction}, {"q": golds})
    assert out["exact_match"] == pytest.approx(em)
    assert out["f1"] == pytest.approx(f1)


def test_squad_scores_average_and_missing():
    preds = {"1": "the cat", "2": "a dog sat"}
    refs = {"1": ["Cat"], "2": ["the dog", "dog sat on"]}
    assert metrics.squad_scores(preds, refs) == pytest.approx({"exact_match": 50.0, "f1": 90.0})
    with pytest.raises(ValueError, match="no prediction"):
        metrics.squad_scores({"1": "x"}, refs)


def test_squad_postprocess_picks_best_valid_span():
    context = "Paris is the capital of France."
    examples = [{"id": "a", "context": context}]
    # tokens: [CLS] q [SEP] paris is the capital of france . [SEP]
    offsets = [
        None,
        None,
        None,
        (0, 5),
        (6, 8),
        (9, 12),
        (13, 20),
        (21, 23),
        (24, 30),
        (30, 31),
        None,
    ]
    features = {"example_id": ["a"], "offset_mapping": [offsets]}
    start = np.zeros((1, 11))
    end = np.zeros((1, 11))
    start[0, 0] = end[0, 0] = 50.0  # [CLS] is not in the context: never an answer
    start[0, 8], end[0, 8] = 5.0, 4.0  # "France"
    start[0, 3], end[0, 3] = 4.0, 1.0  # "Paris" scores lower
    end[0, 2] = 9.0  # an end before the start / outside the context is ignored
    out = metrics.squad_postprocess(examples, features, start, end)
    assert out == {"a": "France"}
    long = metrics.squad_postprocess(examples, features, start, end, max_answer_length=0)
    assert long == {"a": ""}


def test_paper_numbers_present():
    assert paper.RESULTS["baseline"]["sst2_test_accuracy"] == 0.7672
    assert paper.RESULTS["lsh"]["mlm_perplexity"] == 206.6


def test_accuracy_difference_interval():
    gap = metrics.accuracy_difference(0.7339, 0.7179, 872)
    assert gap["difference"] == pytest.approx(0.016)
    assert gap["stderr"] == pytest.approx(math.sqrt(0.7339 * 0.2661 / 872 + 0.7179 * 0.2821 / 872))
    assert gap["half_width"] == pytest.approx(1.96 * gap["stderr"])
    with pytest.raises(ValueError, match="accuracy a must lie in"):
        metrics.accuracy_difference(1.2, 0.5, 10)
    with pytest.raises(ValueError, match="n must be >= 1"):
        metrics.accuracy_difference(0.5, 0.5, 0)
