"""A lexical sliding-window SQuAD baseline: what word overlap alone gets, with no learning.

Rajpurkar et al. (2016) report about 20% F1 for a sliding-window baseline that needs a
constituency parser for its candidates. This one needs nothing but the question and context:

* the context is split into sentences (at ``.``, ``!`` or ``?`` followed by white space) and
  word tokens (runs of letters and digits, apostrophes inside words kept; punctuation dropped);
* candidates are all spans of 1 to ``max_span`` (10) consecutive tokens inside one sentence;
* a span's score is the number of tokens, in the ``window`` (10) tokens before it and the
  ``window`` tokens after it (in the context, not limited to its sentence), whose lower-cased form
  is a question word: a word of the question that is not a stop word (:data:`STOP_WORDS`);
* the best score wins; ties go to the shorter span, then to the earlier one.

The answer is the context's text from the span's first to its last character, scored with the
SQuAD v1.1 exact match and F1 of :func:`lshlib.training.metrics.squad_scores`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from lshlib import data, safeio
from lshlib.paths import results_dir
from lshlib.scales import get_scale, sizes
from lshlib.training import features, metrics

LEXICAL_FILE = "squad_lexical_baseline.json"

__all__ = [
    "STOP_WORDS",
    "Span",
    "word_tokens",
    "sliding_window_answer",
    "sliding_window_scores",
    "squad_test_scores",
]

# The English stop-word list of NLTK (179 words), written out so that no corpus is downloaded.
STOP_WORDS: frozenset[str] = frozenset(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them their
    theirs themselves what which who whom this that that'll these those am is are was were be been
    being have has had having do does did doing a an the and but if or because as until while of
    at by for with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how all any
    both each few more most other some such no nor not only own same so than too very s t can will
    just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn
    didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn
    mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn
    wouldn't""".split()
)
_WORD = re.compile(r"\w+(?:'\w+)*")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+")


@dataclass(frozen=True)
class Span:
    """A chosen answer: its text, its first and one-past-last character in the context, its
    length in tokens and its score (question words in the window around it)."""

    text: str
    start_char: int
    end_char: int
    tokens: int
    score: int


def word_tokens(text: str) -> list[tuple[str, int, int]]:
    """``(lower-cased word, start char, end char)`` for every word token of ``text``."""
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _sentence_ids(text: str, starts: np.ndarray) -> np.ndarray:
    """The sentence number of each token (by its start character)."""
    ends = np.asarray([m.end() for m in _SENTENCE_END.finditer(text)], dtype=np.int64)
    return np.searchsorted(ends, starts, side="right")


def sliding_window_answer(
    question: str, context: str, *, max_span: int = 10, window: int = 10
) -> Span:
    """The baseline's answer span to ``question`` in ``context`` (see the module docstring).

    Vectorised over all candidates with a prefix sum of question-word hits; an empty context
    gives an empty span.
    """
    if max_span < 1 or window < 0:
        raise ValueError(f"need max_span >= 1 and window >= 0, got {max_span} and {window}")
    tokens = word_tokens(context)
    n = len(tokens)
    if n == 0:
        return Span("", 0, 0, 0, 0)
    qwords = {w for w, _, _ in word_tokens(question)} - STOP_WORDS
    hits = np.asarray([w in qwords for w, _, _ in tokens], dtype=np.int64)
    prefix = np.concatenate([[0], np.cumsum(hits)])
    starts = np.asarray([s for _, s, _ in tokens], dtype=np.int64)
    sentence = _sentence_ids(context, starts)
    first = np.arange(n)[:, None]  # candidate (first token, length): rows x columns
    length = np.arange(1, max_span + 1)[None, :]
    last = first + length - 1
    valid = last < n
    last_c = np.minimum(last, n - 1)
    valid &= sentence[first] == sentence[last_c]
    before = prefix[first] - prefix[np.maximum(first - window, 0)]
    after = prefix[np.minimum(last_c + 1 + window, n)] - prefix[last_c + 1]
    score = np.where(valid, before + after, -1)
    # Best score, then shorter, then earlier: order by (-score, length, first) via lexsort.
    flat_first, flat_length = np.broadcast_arrays(first, length)
    order = np.lexsort((flat_first.ravel(), flat_length.ravel(), -score.ravel()))
    best = order[0]
    i, k = int(flat_first.ravel()[best]), int(flat_length.ravel()[best])
    start_char, end_char = tokens[i][1], tokens[i + k - 1][2]
    return Span(context[start_char:end_char], start_char, end_char, k, int(score.ravel()[best]))


def sliding_window_scores(
    examples: Iterable[Mapping], *, max_span: int = 10, window: int = 10
) -> dict[str, float]:
    """SQuAD exact match and F1 (percent) of the baseline on ``examples`` (rows with ``id``,
    ``question``, ``context`` and ``answers``, e.g. ``lshlib.data.load_squad("test")``), plus
    the number of questions."""
    predictions: dict[str, str] = {}
    references: dict[str, list[str]] = {}
    for ex in examples:
        span = sliding_window_answer(
            ex["question"], ex["context"], max_span=max_span, window=window
        )
        predictions[ex["id"]] = span.text
        references[ex["id"]] = list(ex["answers"]["text"])
    if not references:
        raise ValueError("no examples to score")
    return {**metrics.squad_scores(predictions, references), "questions": float(len(references))}


def squad_test_scores(scale: str | None = None, save: bool = False) -> dict[str, float]:
    """The baseline's EM and F1 on the SQuAD test questions that the fine-tuning runs of
    ``scale`` are scored on (the same ``max_test`` subset, :func:`lshlib.training.features.subset`).
    ``save`` also writes them to ``results/<scale>/squad_lexical_baseline.json``
    (``python -m lshlib.verdict --derived`` does; notebook 05, the claims table and the README
    read them with :func:`load_squad_test_scores`)."""
    cap = sizes("training/squad", scale).get("max_test")
    scores = sliding_window_scores(features.subset(data.load_squad("test"), cap))
    if save:
        safeio.atomic_write_json(results_dir(scale, "cpu") / LEXICAL_FILE, scores, indent=1)
    return scores


def load_squad_test_scores(scale: str | None = None) -> dict[str, float]:
    """The lexical baseline's scores as :func:`squad_test_scores` saved them (read only; a
    missing file is an error naming the command that writes it)."""
    return safeio.read_derived(results_dir(get_scale(scale), "cpu") / LEXICAL_FILE)
