"""Loaders reject bad data files with errors naming the file and the fix; corrupt tokenizer
caches are reported, moved aside and rebuilt."""

from __future__ import annotations

import json
import logging
import random

import datasets
import numpy as np
import pytest

from lshlib import data, safeio
from lshlib.data import common as data_common
from lshlib.data import tasks as data_tasks
from lshlib.data import tokenizer as data_tokenizer
from lshlib.paths import data_dir

STAGED = data_dir()
needs_data = pytest.mark.needs_data


@pytest.fixture
def local(monkeypatch, tmp_path):
    """An empty data folder (no Hub), with sst2/ and squad/ subfolders."""
    root = tmp_path / "data"
    for sub in ("sst2", "squad"):
        (root / sub).mkdir(parents=True)
    monkeypatch.setenv("LSHLIB_DATA_DIR", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def write_tsv(path, rows, header="sentence\tlabel"):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- SST-2


@needs_data
def test_sst2_cut_mid_line_names_file_and_fix(local):
    text = (STAGED / "sst2" / "dev.tsv").read_text(encoding="utf-8")
    (local / "sst2" / "dev.tsv").write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(data.DataFormatError, match="truncated") as info:
        data.load_sst2("test")
    message = str(info.value)
    assert str(local / "sst2" / "dev.tsv") in message and "Re-copy dev.tsv" in message


@needs_data
def test_sst2_cut_at_line_boundary_is_caught_by_row_count(local):
    lines = (STAGED / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    (local / "sst2" / "dev.tsv").write_text("\n".join(lines[:96]) + "\n", encoding="utf-8")
    with pytest.raises(data.DataFormatError, match="95 rows, expected 872") as info:
        data.load_sst2("test")
    assert str(local / "sst2" / "dev.tsv") in str(info.value)


def test_sst2_word_labels(local):
    write_tsv(local / "sst2" / "dev.tsv", ["good film \t1", "bad film \tpositive"])
    with pytest.raises(data.DataFormatError, match=r"line 3 has label 'positive'.*0 \(negative\)"):
        data.load_sst2("test")


@pytest.mark.parametrize(
    "content,match",
    [
        ("", "empty"),
        ("text\tlabel\na \t1\n", "header"),
        ("sentence\tlabel\na \t1\t0\n", "3 tab-separated field"),
    ],
)
def test_sst2_bad_layout(local, content, match):
    (local / "sst2" / "dev.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(data.DataFormatError, match=match) as info:
        data.load_sst2("test")
    assert "dev.tsv" in str(info.value)


def test_sst2_other_file_names_are_not_row_checked(local):
    """A small copy under another name (tests, subsets) loads: only staged names are counted."""
    path = write_tsv(local / "sst2" / "mine.tsv", ["good \t1", "bad \t0"])
    ds = data_tasks._read_sst2_tsv(path)
    assert ds["label"] == [1, 0] and ds["sentence"] == ["good ", "bad "]


def test_sst2_repaired_file_is_read_again(local):
    path = write_tsv(local / "sst2" / "mine.tsv", ["good \t1"])
    assert len(data_tasks._read_sst2_tsv(path)) == 1
    write_tsv(path, ["good \t1", "bad \t0", "so so \t1"])
    assert len(data_tasks._read_sst2_tsv(path)) == 3


def test_hub_split_checked():
    fine = datasets.Dataset.from_dict({"sentence": ["a"], "label": [1], "idx": [0]})
    assert data_common.check_hub(fine, "sst2", data.SST2_COLUMNS) is fine
    with pytest.raises(data.DataFormatError, match="lacks columns"):
        data_common.check_hub(fine.remove_columns("label"), "sst2", data.SST2_COLUMNS)
    with pytest.raises(data.DataFormatError, match=r"labels \[-1\]"):
        data_common.check_hub(fine.map(lambda r: {"label": -1}), "sst2", data.SST2_COLUMNS)


# --------------------------------------------------------------------------- SQuAD


def squad_json(n_questions: int = 2) -> dict:
    qas = [
        {"id": f"q{i}", "question": "Who?", "answers": [{"text": "Ann", "answer_start": 0}]}
        for i in range(n_questions)
    ]
    return {"data": [{"title": "T", "paragraphs": [{"context": "Ann ran.", "qas": qas}]}]}


@pytest.mark.parametrize(
    "content,match",
    [
        ("{}", r"the top level\.data is missing"),
        ("[]", r"the top level\.data is missing"),
        ('{"data": [{"title": "T", "paragr', "not valid JSON.*truncated"),
        ("", "not valid JSON"),
        (json.dumps({"data": [{"title": "T"}]}), r"data\[0\]\.paragraphs is missing"),
        (
            json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{}]}]}]}),
            r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers is missing",
        ),
    ],
)
def test_squad_bad_layout(local, content, match):
    path = local / "squad" / data.SQUAD_DEV_FILE
    path.write_text(content, encoding="utf-8")
    with pytest.raises(data.DataFormatError, match=match) as info:
        data.load_squad("test")
    assert str(path) in str(info.value) and "Re-copy" in str(info.value)


def test_squad_staged_name_row_count(local):
    path = local / "squad" / data.SQUAD_DEV_FILE
    path.write_text(json.dumps(squad_json(3)), encoding="utf-8")
    with pytest.raises(data.DataFormatError, match="3 questions, expected 10,570"):
        data.load_squad("test")
    other = local / "squad" / "mine.json"
    other.write_text(json.dumps(squad_json(3)), encoding="utf-8")
    assert data_tasks._read_squad_json(other)["id"] == ["q0", "q1", "q2"]


@needs_data
def test_squad_cut_json(local):
    text = (STAGED / "squad" / data.SQUAD_DEV_FILE).read_text(encoding="utf-8")
    (local / "squad" / data.SQUAD_DEV_FILE).write_text(text[:-1000], encoding="utf-8")
    with pytest.raises(data.DataFormatError, match="not valid JSON"):
        data.load_squad("test")


# --------------------------------------------------------------------------- tokenizer cache


@pytest.fixture
def tiny_corpus(monkeypatch, tmp_path):
    """A one-book corpus (a fast tokenizer to train) and an empty runs folder."""
    rng = random.Random(0)
    words = [
        "".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 7))) for _ in range(300)
    ]
    paragraphs = [" ".join(rng.choice(words) for _ in range(40)) for _ in range(200)]
    book = (
        "header\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n"
        + "\n\n".join(paragraphs)
        + "\n\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
    )
    root = tmp_path / "data"
    (root / "corpus" / "gutenberg").mkdir(parents=True)
    (root / "corpus" / "gutenberg" / "x.txt").write_text(book, encoding="utf-8")
    monkeypatch.setenv("LSHLIB_DATA_DIR", str(root))
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(tmp_path / "runs"))
    calls = []
    train = data_tokenizer.train_tokenizer
    monkeypatch.setattr(
        data_tokenizer, "train_tokenizer", lambda *a, **k: calls.append(1) or train(*a, **k)
    )
    return calls


def _moved_aside(path):
    return sorted(p.name for p in path.parent.iterdir() if ".corrupt-" in p.name)


@pytest.mark.parametrize(
    "damage",
    ["truncated tokenizer.json", "empty tokenizer.json", "only the config", "empty folder"],
)
def test_corrupt_tokenizer_cache_is_reported_and_rebuilt(tiny_corpus, caplog, damage):
    good = data.get_tokenizer("smoke")
    path = data.tokenizer_dir("smoke")
    assert len(tiny_corpus) == 1
    file = path / "tokenizer.json"
    if damage == "truncated tokenizer.json":
        file.write_text(file.read_text()[:500])
    elif damage == "empty tokenizer.json":
        file.write_text("")
    else:
        for p in path.iterdir():
            if damage == "empty folder" or p.name != "tokenizer_config.json":
                p.unlink()
    with caplog.at_level(logging.WARNING, logger="lshlib.safeio"):
        again = data.get_tokenizer("smoke")
    assert str(path) in caplog.text and "moved aside" in caplog.text
    assert len(tiny_corpus) == 2  # rebuilt once
    # toy text has ties between merges (a retrained vocabulary may differ): check it works
    assert len(again) > 100 and again("abc")["input_ids"][0] == good.cls_token_id
    assert again.convert_ids_to_tokens(list(range(5))) == list(data.SPECIAL_TOKENS)
    assert len(_moved_aside(path)) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lshlib.safeio"):
        data.get_tokenizer("smoke")
    assert len(tiny_corpus) == 2 and caplog.text == ""  # the rebuilt cache is reused


# --------------------------------------------------------------------------- safeio


def test_atomic_write_replaces_or_keeps(tmp_path):
    path = tmp_path / "r.json"
    safeio.atomic_write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}

    class Boom:
        pass

    with pytest.raises(TypeError):
        safeio.atomic_write_json(path, {"a": Boom()})
    assert json.loads(path.read_text()) == {"a": 1}  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind


@pytest.mark.parametrize("content", ["", "{", "[]", "null", "3", b"\xff\xfe"])
def test_load_json_dict_moves_corrupt_aside(tmp_path, caplog, content):
    path = tmp_path / "r.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="lshlib.safeio"):
        assert safeio.load_json_dict(path) is None
    assert str(path) in caplog.text
    assert not path.exists() and len(_moved_aside(path)) == 1


def test_load_npy_moves_corrupt_aside(tmp_path, caplog):
    path = tmp_path / "ids.npy"
    safeio.atomic_save_npy(path, np.arange(1000, dtype=np.int32))
    assert safeio.load_npy(path, np.int32, 1).sum() == 499_500
    path.write_bytes(path.read_bytes()[:2000])
    with caplog.at_level(logging.WARNING, logger="lshlib.safeio"):
        assert safeio.load_npy(path, np.int32, 1) is None
    assert str(path) in caplog.text and not path.exists()
    safeio.atomic_save_npy(path, np.arange(4, dtype=np.int64))
    assert safeio.load_npy(path, np.int32, 1) is None  # wrong dtype: moved aside too
    assert len(_moved_aside(path)) == 2
