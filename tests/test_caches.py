"""Corpus files and caches: corpus errors name the file and the fix; the tokenizer
and token-id caches notice an edited corpus file of the same size (content hash), the
tokenizer folder's name unchanged; incomplete checkpoints moved aside are removed once a later
checkpoint is valid. No shared data needed: a one-book corpus is written here."""

from __future__ import annotations

import json
import logging
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lshlib import data
from lshlib.data import tokenizer as data_tokenizer
from lshlib.training import checkpoints, features

BOOK = (
    "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n{}\n\n"
    "*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
)


@pytest.fixture
def corpus(monkeypatch, tmp_path):
    """A one-book corpus folder, an empty runs folder, and a counter of tokenizer trainings."""
    rng = random.Random(0)
    words = [
        "".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 7))) for _ in range(300)
    ]
    paragraphs = [" ".join(rng.choice(words) for _ in range(40)) for _ in range(200)]
    root = tmp_path / "data"
    books = root / "corpus" / "gutenberg"
    books.mkdir(parents=True)
    (books / "x.txt").write_text(BOOK.format("\n\n".join(paragraphs)), encoding="utf-8")
    monkeypatch.setenv("LSHLIB_DATA_DIR", str(root))
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(tmp_path / "runs"))
    calls = []
    train = data_tokenizer.train_tokenizer
    monkeypatch.setattr(
        data_tokenizer, "train_tokenizer", lambda *a, **k: calls.append(1) or train(*a, **k)
    )
    return books, calls


def edit_same_size(path):
    """Swap two different letters everywhere in the book body: same size, other content."""
    text = path.read_text(encoding="utf-8")
    head, body = text.split("***\n", 1)
    body = body.replace("a", "\0").replace("b", "a").replace("\0", "b")
    path.write_text(head + "***\n" + body, encoding="utf-8")
    assert len(path.read_bytes()) == len(text.encode())


# --------------------------------------------------------------------------- corpus errors


def test_binary_book_names_the_file(corpus):
    books, _ = corpus
    (books / "book.txt").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(data.DataFormatError) as err:
        data.corpus_text("train")
    message = str(err.value)
    assert str(books / "book.txt") in message and "not UTF-8 text" in message
    assert "Replace" in message and "remove it" in message


def test_book_without_markers_names_the_file(corpus):
    books, _ = corpus
    (books / "plain.txt").write_text("Just a text.\n\nNo Gutenberg lines.\n", encoding="utf-8")
    with pytest.raises(data.DataFormatError) as err:
        data.corpus_text("train")
    message = str(err.value)
    assert str(books / "plain.txt") in message and "*** START OF" in message
    assert "remove it" in message


# --------------------------------------------------------------------------- content hashes


def test_tokenizer_is_rebuilt_when_a_corpus_file_changes_at_the_same_size(corpus, caplog):
    books, calls = corpus
    first = data.get_tokenizer("smoke")
    path = data.tokenizer_dir("smoke")
    stamp = json.loads((path / data.CORPUS_STAMP).read_text())["corpus_sha256"]
    assert stamp == data.corpus_digest() and len(calls) == 1
    edit_same_size(books / "x.txt")
    assert data.tokenizer_dir("smoke") == path  # the name (in every run's name) is unchanged
    with caplog.at_level(logging.WARNING, logger="lshlib.safeio"):
        again = data.get_tokenizer("smoke")
    assert len(calls) == 2 and "trained on another corpus" in caplog.text
    assert again.get_vocab() != first.get_vocab()
    data.get_tokenizer("smoke")
    assert len(calls) == 2  # the rebuilt cache is reused


def test_a_tokenizer_cache_without_a_stamp_is_kept_and_stamped(corpus):
    _, calls = corpus
    data.get_tokenizer("smoke")
    stamp = data.tokenizer_dir("smoke") / data.CORPUS_STAMP
    stamp.unlink()  # as made before the stamp existed
    data.get_tokenizer("smoke")
    assert len(calls) == 1 and stamp.is_file()


def test_token_id_cache_notices_a_same_size_edit(corpus):
    books, _ = corpus
    tokenizer = data.get_tokenizer("smoke")
    before = features.corpus_ids(tokenizer, "train", None)
    edit_same_size(books / "x.txt")
    after = features.corpus_ids(tokenizer, "train", None)  # the same tokenizer object
    expected = tokenizer(data.corpus_text("train"), add_special_tokens=False)["input_ids"]
    assert np.array_equal(after, np.concatenate(expected).astype(np.int32))
    assert not np.array_equal(after, before)


# --------------------------------------------------------------------------- checkpoints


def make_checkpoint(folder, step: int) -> None:
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(2)}, str(folder / "model.safetensors"))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"x": 1}, folder / name)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (folder / checkpoints.CLOCK_FILE).write_text(json.dumps({"train_seconds": 1.0}))
    assert checkpoints.checkpoint_problem(folder) is None


def test_checkpoints_moved_aside_are_removed_once_a_later_one_is_valid(tmp_path):
    make_checkpoint(tmp_path / "checkpoint-4", 4)
    make_checkpoint(tmp_path / "checkpoint-8", 8)
    (tmp_path / "checkpoint-8" / "scheduler.pt").unlink()  # a kill during the save
    assert checkpoints.newest_valid_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("corrupt-checkpoint-8.")]
    assert len(aside) == 1  # kept while no later checkpoint is valid
    make_checkpoint(tmp_path / "checkpoint-8", 8)  # the resumed run saves step 8 again
    assert checkpoints.newest_valid_checkpoint(tmp_path) == tmp_path / "checkpoint-8"
    assert not aside[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-8"]


def test_remove_superseded_after_training(tmp_path):
    make_checkpoint(tmp_path / "checkpoint-12", 12)
    for name in ("corrupt-checkpoint-8.20250101T000000Z", "corrupt-checkpoint-16.20250101T000000Z"):
        (tmp_path / name).mkdir()
    removed = checkpoints.remove_superseded(tmp_path)
    assert [p.name for p in removed] == ["corrupt-checkpoint-8.20250101T000000Z"]
    assert (tmp_path / "corrupt-checkpoint-16.20250101T000000Z").is_dir()  # not reached yet


def test_a_finished_run_removes_every_checkpoint_it_moved_aside(tmp_path):
    (tmp_path / "corrupt-checkpoint-100.20250101T000000Z").mkdir()  # no valid checkpoint-100
    removed = checkpoints.remove_superseded(tmp_path, 100)  # the final model at step 100
    assert [p.name for p in removed] == ["corrupt-checkpoint-100.20250101T000000Z"]
