"""The lexical sliding-window SQuAD baseline: candidates, window scores, ties, and its EM/F1."""

from __future__ import annotations

import random

import pytest

from lshlib.experiments import baselines
from lshlib.experiments.baselines import (
    STOP_WORDS,
    sliding_window_answer,
    sliding_window_scores,
    word_tokens,
)
from lshlib.paths import data_dir

FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed eiusmod tempor".split()


def _brute_force(question: str, context: str, max_span: int = 10, window: int = 10):
    """Loops over every candidate: the definition, written the slow way."""
    tokens = word_tokens(context)
    sentence = baselines._sentence_ids(context, [s for _, s, _ in tokens]).tolist()
    qwords = {w for w, _, _ in word_tokens(question)} - STOP_WORDS
    best = None
    for i in range(len(tokens)):
        for k in range(1, max_span + 1):
            j = i + k - 1
            if j >= len(tokens) or sentence[i] != sentence[j]:
                continue
            around = tokens[max(i - window, 0) : i] + tokens[j + 1 : j + 1 + window]
            score = sum(w in qwords for w, _, _ in around)
            key = (-score, k, i)
            if best is None or key < best[0]:
                best = (key, context[tokens[i][1] : tokens[j][2]])
    return best[1], -best[0][0], best[0][1]


def test_finds_the_span_next_to_the_question_words():
    context = (
        " ".join(FILLER)
        + ". "
        + " ".join(FILLER)
        + ". The capital of France is Paris. "
        + " ".join(FILLER)
        + "."
    )
    span = sliding_window_answer("What is the capital of France?", context)
    assert span.score == 2  # "capital" and "france"; "what", "is", "the", "of" are stop words
    assert span.tokens == 1  # ties go to the shorter span
    assert context[span.start_char : span.end_char] == span.text
    # Tokens 0-21 filler, 22 The, 23 capital, 24 of, 25 France: the earliest token with both
    # hits within 10 tokens after it is token 15 ("amet"; the window crosses sentences).
    assert span.text == "amet" and span.start_char == context.index("amet", 60)


def test_stop_words_do_not_count():
    span = sliding_window_answer("the of is", "the of is a b c. the of is")
    assert span.score == 0 and span.tokens == 1 and span.text == "the"  # earliest shortest


def test_candidates_stay_inside_one_sentence():
    # Hits 26 tokens apart: only a span from token <= 10 to token >= 16 has both in its
    # windows; with a sentence end at token 12, no candidate can.
    words = ["alpha"] + [f"w{i}" for i in range(25)] + ["beta"]
    question = "alpha beta"
    one_sentence = " ".join(words)
    assert sliding_window_answer(question, one_sentence).score == 2
    cut = " ".join(words[:13]) + ". " + " ".join(words[13:])
    span = sliding_window_answer(question, cut)
    assert span.score == 1 and "." not in span.text


def test_matches_the_brute_force_definition():
    rng = random.Random(0)
    vocab = ["alpha", "beta", "gamma", "delta", "the", "of", "is", *FILLER]
    for _ in range(40):
        words = [rng.choice(vocab) + rng.choice(["", "", "", ".", ","]) for _ in range(60)]
        context = " ".join(words)
        question = " ".join(rng.sample(vocab, 4)) + "?"
        span = sliding_window_answer(question, context)
        assert (span.text, span.score, span.tokens) == _brute_force(question, context)


def test_bad_arguments_and_empty_context():
    with pytest.raises(ValueError, match="max_span"):
        sliding_window_answer("q", "c", max_span=0)
    assert sliding_window_answer("what", "").text == ""
    with pytest.raises(ValueError, match="no examples"):
        sliding_window_scores([])


def test_scores_are_squad_metrics():
    examples = [
        {
            "id": "a",
            "question": "Which city is the capital of France?",
            "context": "x y z w v u t s r q p o n. France has its capital Paris.",
            "answers": {"text": ["Paris"], "answer_start": [0]},
        }
    ]
    scores = sliding_window_scores(examples)
    assert scores["questions"] == 1
    assert 0 <= scores["exact_match"] <= scores["f1"] <= 100


@pytest.mark.skipif(not (data_dir() / "squad").is_dir(), reason="shared data not available")
def test_on_real_squad_questions():
    from lshlib.data import load_squad

    test = load_squad("test").select(range(200))
    scores = sliding_window_scores(test)
    assert scores["questions"] == 200
    assert 0 < scores["exact_match"] <= scores["f1"] < 60  # above zero, far from a reader


@pytest.mark.skipif(not (data_dir() / "squad").is_dir(), reason="shared data not available")
def test_scored_on_the_runs_test_questions():
    from lshlib.scales import sizes

    scores = baselines.squad_test_scores("smoke")
    assert scores["questions"] == sizes("training/squad", "smoke")["max_test"]
    assert 0 <= scores["exact_match"] <= scores["f1"] <= 100
