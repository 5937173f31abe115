"""What every dataset loader shares: splits, file checks, their errors, and the Hub fallback."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import datasets

from lshlib.paths import data_dir

SPLITS: tuple[str, ...] = ("train", "validation", "test")
SPLIT_SEED = 42
HELDOUT_FRACTION = 0.05  # SST-2 and SQuAD: 5% of train held out for validation (paper)
CORPUS_EVAL_FRACTION = 0.01  # corpus: last 1% of each document's paragraphs (paper: 1%)
SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# Hub fallbacks (datasets without loading scripts), documented in data/README.md.
HUB_IDS: dict[str, tuple[str, str | None]] = {
    "sst2": ("stanfordnlp/sst2", None),
    "squad": ("rajpurkar/squad", None),
    "corpus": ("Salesforce/wikitext", "wikitext-2-raw-v1"),
}

SST2_COLUMNS: tuple[str, ...] = ("sentence", "label")
SQUAD_COLUMNS: tuple[str, ...] = ("id", "title", "context", "question", "answers")
SQUAD_TRAIN_FILE = "train-v1.1-subset_44articles.json"
SQUAD_DEV_FILE = "dev-v1.1.json"

# Complete sizes of the files with the staged names, checked whatever folder they are read from
# (counts from shared/data/MANIFEST.md; the SQuAD train name also accepts the full official train
# set, 87,599 questions, which data/README.md says may replace the subset). Files read from the
# Hub, or under other names, are checked for columns and labels only.
EXPECTED_ROWS: dict[str, tuple[int, ...]] = {
    "sst2/train.tsv": (67_349,),
    "sst2/dev.tsv": (872,),
    f"squad/{SQUAD_DEV_FILE}": (10_570,),
    f"squad/{SQUAD_TRAIN_FILE}": (11_877, 87_599),
}


class MissingDataError(FileNotFoundError):
    """A dataset is neither under ``$LSHLIB_DATA_DIR`` nor reachable on the Hugging Face Hub."""


class DataFormatError(ValueError):
    """A data file is malformed or incomplete; the message names the file and how to fix it."""


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face Hub may be tried: not offline and huggingface.co answers quickly."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    if os.environ.get("HF_DATASETS_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def from_hub(name: str, local: Path) -> datasets.DatasetDict:
    """Load ``name`` from the Hub or raise :class:`MissingDataError` saying how to provide it."""
    hub_id, config = HUB_IDS[name]
    message = (
        f"dataset {name!r} not found locally at {local} and the Hugging Face Hub "
        f"({hub_id}{'/' + config if config else ''}) is not reachable. Provide it by setting "
        f"LSHLIB_DATA_DIR to a folder laid out as described in data/README.md "
        f"(currently {data_dir()}), or run once with network access so it can be downloaded."
    )
    if not hub_reachable():
        raise MissingDataError(message)
    try:
        return datasets.load_dataset(hub_id, config)
    except Exception as err:  # noqa: BLE001 - any Hub failure means the data is missing
        raise MissingDataError(f"{message} (Hub error: {err})") from err


def stat_key(path: Path) -> tuple[Path, int, int]:
    """Cache key of a file: a replaced or repaired file is read again."""
    st = path.stat()
    return path, st.st_mtime_ns, st.st_size


def fix_hint(path: Path) -> str:
    return (
        f"Re-copy {path.name} from the source listed in data/README.md (the staged copy's source "
        "and sha256 are in shared/data/MANIFEST.md), or move it away to use the Hugging Face Hub."
    )


def check_rows(path: Path, n: int, unit: str) -> None:
    """A file with a staged name (``EXPECTED_ROWS``) must hold one of its known complete counts."""
    expected = EXPECTED_ROWS.get(f"{path.parent.name}/{path.name}")
    if expected is not None and n not in expected:
        counts = " or ".join(f"{e:,}" for e in expected)
        raise DataFormatError(
            f"{path}: {n:,} {unit}, expected {counts}: the file is incomplete or not the "
            f"published one. {fix_hint(path)}"
        )


def check_hub(ds: datasets.Dataset, name: str, columns: tuple[str, ...]) -> datasets.Dataset:
    """A Hub split must have ``columns`` (and SST-2 labels 0/1): the same contract as local."""
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise DataFormatError(
            f"Hub dataset {HUB_IDS[name][0]!r} lacks columns {missing} (has {ds.column_names})"
        )
    if "label" in columns:
        bad = sorted(set(ds.unique("label")) - {0, 1})
        if bad:
            raise DataFormatError(f"Hub dataset {HUB_IDS[name][0]!r} has labels {bad}, not 0/1")
    return ds


def holdout(ds: datasets.Dataset, split: str) -> datasets.Dataset:
    """The paper's split of a training set: 95% train, 5% validation (fixed seed)."""
    parts = ds.train_test_split(test_size=HELDOUT_FRACTION, seed=SPLIT_SEED, shuffle=True)
    return parts["train"] if split == "train" else parts["test"]
