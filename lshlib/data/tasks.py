"""The fine-tuning datasets, SST-2 and SQuAD v1.1: local files first, then the Hub."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from typing import Any

import datasets

from lshlib.data.common import (
    SQUAD_COLUMNS,
    SQUAD_DEV_FILE,
    SQUAD_TRAIN_FILE,
    SST2_COLUMNS,
    DataFormatError,
    check_hub,
    check_rows,
    check_split,
    fix_hint,
    from_hub,
    holdout,
    stat_key,
)
from lshlib.paths import data_dir


def _read_sst2_tsv(path: Path) -> datasets.Dataset:
    """The rows of an SST-2 tsv, checked: header, two fields a line, labels 0/1, row count."""
    return _read_sst2_cached(*stat_key(path))


@functools.lru_cache(maxsize=4)
def _read_sst2_cached(path: Path, mtime_ns: int, size: int) -> datasets.Dataset:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataFormatError(f"{path}: not a UTF-8 tsv file ({err}). {fix_hint(path)}") from err
    if not rows:
        raise DataFormatError(f"{path}: the file is empty. {fix_hint(path)}")
    header, body = rows[0], rows[1:]
    if header != ["sentence", "label"]:
        raise DataFormatError(
            f"{path}: expected the header 'sentence<TAB>label', got {header!r}. {fix_hint(path)}"
        )
    for line, row in enumerate(body, start=2):
        if len(row) != 2:
            hint = " (the file looks truncated)" if line == len(rows) else ""
            raise DataFormatError(
                f"{path}: line {line} has {len(row)} tab-separated field(s), expected 2 "
                f"(sentence<TAB>label){hint}: {row!r:.80}. {fix_hint(path)}"
            )
        if row[1] not in ("0", "1"):
            raise DataFormatError(
                f"{path}: line {line} has label {row[1]!r}; labels must be 0 (negative) or "
                f"1 (positive). {fix_hint(path)}"
            )
    check_rows(path, len(body), "rows")
    features = datasets.Features(
        {
            "sentence": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["negative", "positive"]),
        }
    )
    return datasets.Dataset.from_dict(
        {"sentence": [r[0] for r in body], "label": [int(r[1]) for r in body]},
        features=features,
    )


def load_sst2(split: str) -> datasets.Dataset:
    """SST-2 (GLUE) with columns ``sentence`` and ``label`` (0 negative, 1 positive).

    ``train``/``validation`` are 95%/5% of GLUE train (seed 42); ``test`` is GLUE dev (872 rows),
    as in the paper. Read from ``sst2/{train,dev}.tsv`` with quoting off, else the Hub.
    """
    check_split(split)
    local = data_dir() / "sst2"
    name = "dev.tsv" if split == "test" else "train.tsv"
    if (local / name).is_file():
        ds = _read_sst2_tsv(local / name)
    else:
        hub = from_hub("sst2", local / name)
        ds = check_hub(hub["validation" if split == "test" else "train"], "sst2", SST2_COLUMNS)
        ds = ds.select_columns(list(SST2_COLUMNS))
    return ds if split == "test" else holdout(ds, split)


# --------------------------------------------------------------------------- SQuAD


def _squad_field(path: Path, obj: Any, key: str, kind: type, where: str) -> Any:
    """``obj[key]``, checked to be a ``kind``; else an error naming the file and the place."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise DataFormatError(
            f"{path}: {where}.{key} is {got}, expected a {kind.__name__} (SQuAD v1.1 layout). "
            f"{fix_hint(path)}"
        )
    return value


def _read_squad_json(path: Path) -> datasets.Dataset:
    """The questions of a SQuAD v1.1 json, checked: layout, answers, question count."""
    return _read_squad_cached(*stat_key(path))


@functools.lru_cache(maxsize=4)
def _read_squad_cached(path: Path, mtime_ns: int, size: int) -> datasets.Dataset:
    try:
        root = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataFormatError(
            f"{path}: not valid JSON ({err}); the file looks truncated or damaged. {fix_hint(path)}"
        ) from err
    articles = _squad_field(path, root, "data", list, "the top level")
    rows: dict[str, list] = {k: [] for k in SQUAD_COLUMNS}
    for i, article in enumerate(articles):
        title = _squad_field(path, article, "title", str, f"data[{i}]")
        for j, paragraph in enumerate(
            _squad_field(path, article, "paragraphs", list, f"data[{i}]")
        ):
            at = f"data[{i}].paragraphs[{j}]"
            context = _squad_field(path, paragraph, "context", str, at)
            for k, qa in enumerate(_squad_field(path, paragraph, "qas", list, at)):
                q = f"{at}.qas[{k}]"
                answers = _squad_field(path, qa, "answers", list, q)
                if not answers:
                    raise DataFormatError(f"{path}: {q}.answers is empty. {fix_hint(path)}")
                rows["id"].append(_squad_field(path, qa, "id", str, q))
                rows["title"].append(title)
                rows["context"].append(context)
                rows["question"].append(_squad_field(path, qa, "question", str, q))
                rows["answers"].append(
                    {
                        "text": [
                            _squad_field(path, a, "text", str, f"{q}.answers[{n}]")
                            for n, a in enumerate(answers)
                        ],
                        "answer_start": [
                            _squad_field(path, a, "answer_start", int, f"{q}.answers[{n}]")
                            for n, a in enumerate(answers)
                        ],
                    }
                )
    if not rows["id"]:
        raise DataFormatError(f"{path}: holds no questions. {fix_hint(path)}")
    check_rows(path, len(rows["id"]), "questions")
    return datasets.Dataset.from_dict(rows)


def load_squad(split: str) -> datasets.Dataset:
    """SQuAD v1.1 in the Hub's column layout (id, title, context, question, answers).

    ``train``/``validation`` are 95%/5% of the local 44-article train subset (seed 42; the full
    train set from the Hub when the subset is absent); ``test`` is the official dev set.
    """
    check_split(split)
    local = data_dir() / "squad"
    name = SQUAD_DEV_FILE if split == "test" else SQUAD_TRAIN_FILE
    if (local / name).is_file():
        ds = _read_squad_json(local / name)
    else:
        hub = from_hub("squad", local / name)
        ds = check_hub(hub["validation" if split == "test" else "train"], "squad", SQUAD_COLUMNS)
    return ds if split == "test" else holdout(ds, split)
