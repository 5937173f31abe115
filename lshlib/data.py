"""Datasets: pretraining corpus, SST-2, SQuAD v1.1, and the locally trained WordPiece tokenizer.

Every loader reads the local copy under ``$LSHLIB_DATA_DIR`` first (layout in ``data/README.md``),
then tries the Hugging Face Hub, and otherwise stops within seconds with a :class:`MissingDataError`
that names the dataset and how to provide it. Nothing waits on an unreachable network: the Hub is
only tried when ``HF_HUB_OFFLINE`` is unset and a 2-second connection probe succeeds.

Splits follow the paper: SST-2 and SQuAD hold out 5% of the training set (seed 42) for
validation and use the official dev set as the test set; the corpus holds out the last 1% of
every document's paragraphs for evaluation (the paper held out 1% of BookCorpus blocks).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import WordPieceTrainer
from transformers import PreTrainedTokenizerFast

from lshlib import safeio
from lshlib.paths import data_dir, runs_dir
from lshlib.scales import get_scale, sizes

log = logging.getLogger(__name__)

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


def _check_split(split: str) -> None:
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


def _from_hub(name: str, local: Path) -> datasets.DatasetDict:
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


# --------------------------------------------------------------------------- SST-2


def _stat_key(path: Path) -> tuple[Path, int, int]:
    """Cache key of a file: a replaced or repaired file is read again."""
    st = path.stat()
    return path, st.st_mtime_ns, st.st_size


def _fix(path: Path) -> str:
    return (
        f"Re-copy {path.name} from the source listed in data/README.md (the staged copy's source "
        "and sha256 are in shared/data/MANIFEST.md), or move it away to use the Hugging Face Hub."
    )


def _check_rows(path: Path, n: int, unit: str) -> None:
    """A file with a staged name (``EXPECTED_ROWS``) must hold one of its known complete counts."""
    expected = EXPECTED_ROWS.get(f"{path.parent.name}/{path.name}")
    if expected is not None and n not in expected:
        counts = " or ".join(f"{e:,}" for e in expected)
        raise DataFormatError(
            f"{path}: {n:,} {unit}, expected {counts}: the file is incomplete or not the "
            f"published one. {_fix(path)}"
        )


def _read_sst2_tsv(path: Path) -> datasets.Dataset:
    """The rows of an SST-2 tsv, checked: header, two fields a line, labels 0/1, row count."""
    return _read_sst2_cached(*_stat_key(path))


@functools.lru_cache(maxsize=4)
def _read_sst2_cached(path: Path, mtime_ns: int, size: int) -> datasets.Dataset:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataFormatError(f"{path}: not a UTF-8 tsv file ({err}). {_fix(path)}") from err
    if not rows:
        raise DataFormatError(f"{path}: the file is empty. {_fix(path)}")
    header, body = rows[0], rows[1:]
    if header != ["sentence", "label"]:
        raise DataFormatError(
            f"{path}: expected the header 'sentence<TAB>label', got {header!r}. {_fix(path)}"
        )
    for line, row in enumerate(body, start=2):
        if len(row) != 2:
            hint = " (the file looks truncated)" if line == len(rows) else ""
            raise DataFormatError(
                f"{path}: line {line} has {len(row)} tab-separated field(s), expected 2 "
                f"(sentence<TAB>label){hint}: {row!r:.80}. {_fix(path)}"
            )
        if row[1] not in ("0", "1"):
            raise DataFormatError(
                f"{path}: line {line} has label {row[1]!r}; labels must be 0 (negative) or "
                f"1 (positive). {_fix(path)}"
            )
    _check_rows(path, len(body), "rows")
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


def _check_hub(ds: datasets.Dataset, name: str, columns: tuple[str, ...]) -> datasets.Dataset:
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


def _holdout(ds: datasets.Dataset, split: str) -> datasets.Dataset:
    """The paper's split of a training set: 95% train, 5% validation (fixed seed)."""
    parts = ds.train_test_split(test_size=HELDOUT_FRACTION, seed=SPLIT_SEED, shuffle=True)
    return parts["train"] if split == "train" else parts["test"]


def load_sst2(split: str) -> datasets.Dataset:
    """SST-2 (GLUE) with columns ``sentence`` and ``label`` (0 negative, 1 positive).

    ``train``/``validation`` are 95%/5% of GLUE train (seed 42); ``test`` is GLUE dev (872 rows),
    as in the paper. Read from ``sst2/{train,dev}.tsv`` with quoting off, else the Hub.
    """
    _check_split(split)
    local = data_dir() / "sst2"
    name = "dev.tsv" if split == "test" else "train.tsv"
    if (local / name).is_file():
        ds = _read_sst2_tsv(local / name)
    else:
        hub = _from_hub("sst2", local / name)
        ds = _check_hub(hub["validation" if split == "test" else "train"], "sst2", SST2_COLUMNS)
        ds = ds.select_columns(list(SST2_COLUMNS))
    return ds if split == "test" else _holdout(ds, split)


# --------------------------------------------------------------------------- SQuAD


def _squad_field(path: Path, obj: Any, key: str, kind: type, where: str) -> Any:
    """``obj[key]``, checked to be a ``kind``; else an error naming the file and the place."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise DataFormatError(
            f"{path}: {where}.{key} is {got}, expected a {kind.__name__} (SQuAD v1.1 layout). "
            f"{_fix(path)}"
        )
    return value


def _read_squad_json(path: Path) -> datasets.Dataset:
    """The questions of a SQuAD v1.1 json, checked: layout, answers, question count."""
    return _read_squad_cached(*_stat_key(path))


@functools.lru_cache(maxsize=4)
def _read_squad_cached(path: Path, mtime_ns: int, size: int) -> datasets.Dataset:
    try:
        root = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataFormatError(
            f"{path}: not valid JSON ({err}); the file looks truncated or damaged. {_fix(path)}"
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
                    raise DataFormatError(f"{path}: {q}.answers is empty. {_fix(path)}")
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
        raise DataFormatError(f"{path}: holds no questions. {_fix(path)}")
    _check_rows(path, len(rows["id"]), "questions")
    return datasets.Dataset.from_dict(rows)


def load_squad(split: str) -> datasets.Dataset:
    """SQuAD v1.1 in the Hub's column layout (id, title, context, question, answers).

    ``train``/``validation`` are 95%/5% of the local 44-article train subset (seed 42; the full
    train set from the Hub when the subset is absent); ``test`` is the official dev set.
    """
    _check_split(split)
    local = data_dir() / "squad"
    name = SQUAD_DEV_FILE if split == "test" else SQUAD_TRAIN_FILE
    if (local / name).is_file():
        ds = _read_squad_json(local / name)
    else:
        hub = _from_hub("squad", local / name)
        ds = _check_hub(hub["validation" if split == "test" else "train"], "squad", SQUAD_COLUMNS)
    return ds if split == "test" else _holdout(ds, split)


# --------------------------------------------------------------------------- corpus

_START = re.compile(
    r"^[ \t]*\*\*\*[ \t]*START OF (?:THE|THIS) PROJECT GUTENBERG EBOOK[^*]*\*\*\*", re.M
)
_END = re.compile(r"^[ \t]*\*\*\*[ \t]*END OF (?:THE|THIS) PROJECT GUTENBERG EBOOK", re.M)
_END_LINE = re.compile(r"^[ \t]*End of (?:the )?Project Gutenberg", re.I | re.M)


def strip_gutenberg(text: str) -> str:
    """The body of a Project Gutenberg book: the text between its START and END markers.

    Handles the variants in the staged files: ``*** START OF THIS/THE PROJECT GUTENBERG EBOOK``
    with or without spaces after ``***``, titles that wrap onto the next line, indented END
    markers, CRLF line ends, and a trailing "End of the Project Gutenberg EBook" line before the
    END marker. Raises ``ValueError`` when a marker is missing.
    """
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    start = _START.search(text)
    if start is None:
        raise ValueError("no '*** START OF THE/THIS PROJECT GUTENBERG EBOOK ... ***' marker found")
    end = _END.search(text, start.end())
    if end is None:
        raise ValueError("no '*** END OF THE/THIS PROJECT GUTENBERG EBOOK' marker found")
    body = text[start.end() : end.start()].strip()
    tail = max(0, len(body) - 1000)  # an "End of ..." note may wrap over two lines
    notes = list(_END_LINE.finditer(body, tail))
    return body[: notes[-1].start()].strip() if notes else body


def corpus_files() -> list[Path]:
    """The pretraining text files: Gutenberg books, then WikiText-2 valid/test (sorted)."""
    root = data_dir() / "corpus"
    return sorted((root / "gutenberg").glob("*.txt")) + sorted((root / "wikitext-2").glob("*.txt"))


def _wikitext_paragraphs(text: str) -> list[str]:
    """WikiText-2 (tokenized release): one paragraph a line; headings dropped, @-@ joins undone."""
    out = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("="):
            continue
        line = line.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
        out.append(line.replace("<unk>", "[UNK]"))
    return out


def _book_paragraphs(text: str) -> list[str]:
    """A book body split at blank lines, each paragraph's line breaks joined by spaces."""
    paras = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return [p for p in paras if p]


def _corpus_fix(path: Path) -> str:
    return (
        f"Replace {path} with the book's UTF-8 plain-text edition from Project Gutenberg, "
        f"unedited (data/README.md), or remove it from {path.parent}."
    )


def _read_corpus_file(path: Path) -> str:
    """A corpus file's text; a file that is not UTF-8 text raises :class:`DataFormatError`
    naming it and the fix."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start:,}); the corpus holds "
            f"plain-text files only. {_corpus_fix(path)}"
        ) from err


@functools.lru_cache(maxsize=2)
def _corpus(root: Path, digest: str) -> dict[str, dict[str, list[str]]]:
    """The corpus paragraphs by split (cached per folder and content, :func:`corpus_digest`)."""
    rows: dict[str, dict[str, list[str]]] = {
        s: {"source": [], "text": []} for s in ("train", "eval")
    }
    for path in corpus_files():
        raw = _read_corpus_file(path)
        if path.parent.name == "wikitext-2":
            paras = _wikitext_paragraphs(raw)
            source = f"wikitext-2/{path.name}"
        else:
            try:
                body = strip_gutenberg(raw)
            except ValueError as err:
                raise DataFormatError(
                    f"{path}: {err}; a book under corpus/gutenberg/ must be a Project Gutenberg "
                    f"text with its '*** START OF' and '*** END OF' lines. {_corpus_fix(path)}"
                ) from err
            paras = _book_paragraphs(body)
            source = f"gutenberg/{path.name}"
        n_eval = max(1, round(len(paras) * CORPUS_EVAL_FRACTION))
        for split, part in (("train", paras[:-n_eval]), ("eval", paras[-n_eval:])):
            rows[split]["source"] += [source] * len(part)
            rows[split]["text"] += part
    return rows


def _corpus_key(root: Path) -> str:
    return hashlib.sha1(json.dumps([str(root), corpus_digest()]).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _digest(files: tuple[tuple[str, str, int, int, int], ...]) -> str:
    h = hashlib.sha256()
    for path, name, *_ in files:
        h.update(f"{name}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:16]


def corpus_digest() -> str:
    """SHA-256 (16 hex digits) of the corpus files' names and contents: what the tokenizer and
    token-id caches are checked against, so an edited file of the same size is noticed. Hashed
    once per process for each set of file states (path, size, mtime and ctime: any write
    changes the ctime)."""
    files = []
    for p in corpus_files():
        st = p.stat()
        files.append(
            (str(p), f"{p.parent.name}/{p.name}", st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        )
    return _digest(tuple(files))


def load_corpus(split: str = "train") -> datasets.Dataset:
    """Pretraining paragraphs (columns ``source``, ``text``); ``split`` is ``train`` or ``eval``.

    Local Gutenberg books (license header and footer stripped) and WikiText-2 valid/test; the
    last 1% of each document's paragraphs form ``eval``. BookCorpus, which the paper used, is not
    available; the Hub fallback is WikiText-2 raw (``Salesforce/wikitext``).
    """
    if split not in ("train", "eval"):
        raise ValueError(f"unknown corpus split {split!r}; valid splits are: train, eval")
    root = data_dir() / "corpus"
    if corpus_files():
        # Built from an Arrow table with a fingerprint of our own: hashing 40 MB is slow.
        table = pa.table(_corpus(root, corpus_digest())[split])
        return datasets.Dataset(table, fingerprint=f"corpus-{split}-{_corpus_key(root)}")
    hub = _from_hub("corpus", root)
    ds = hub["train" if split == "train" else "validation"].filter(
        lambda r: bool(r["text"].strip())
    )
    return ds.map(lambda r: {"source": "wikitext-2-raw", "text": r["text"].strip()})


def corpus_text(split: str = "train", max_chars: int | None = None) -> list[str]:
    """The corpus paragraphs of ``split`` in order, cut after ``max_chars`` characters if given."""
    if split not in ("train", "eval"):
        raise ValueError(f"unknown corpus split {split!r}; valid splits are: train, eval")
    root = data_dir() / "corpus"
    local = corpus_files()
    texts = _corpus(root, corpus_digest())[split]["text"] if local else load_corpus(split)["text"]
    if max_chars is None:
        return texts
    out, total = [], 0
    for t in texts:
        if total >= max_chars:
            break
        out.append(t)
        total += len(t)
    return out


# --------------------------------------------------------------------------- tokenizer


def train_tokenizer(texts: list[str], vocab_size: int, model_max_length: int = 512):
    """Train a BERT-style (lower-cased) WordPiece tokenizer on ``texts``; a transformers fast
    tokenizer with [PAD] [UNK] [CLS] [SEP] [MASK] and BERT's [CLS] A [SEP] B [SEP] template."""
    if vocab_size < len(SPECIAL_TOKENS) + 100:
        raise ValueError(
            f"vocab_size {vocab_size} too small; use at least {len(SPECIAL_TOKENS) + 100}"
        )
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    # The trainer's ids depend on hash-map order (the token set does not): renumber the tokens,
    # special tokens first, then in sorted order, so that a retrained tokenizer is identical.
    trained = tok.get_vocab()
    ordered = list(SPECIAL_TOKENS) + sorted(t for t in trained if t not in SPECIAL_TOKENS)
    tok.model = models.WordPiece(
        {t: i for i, t in enumerate(ordered)}, unk_token="[UNK]", continuing_subword_prefix="##"
    )
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def tokenizer_dir(scale: str | None = None) -> Path:
    """Where the tokenizer of ``scale`` is cached: ``runs/tokenizers/<scale>-v<vocab>-<key>``."""
    scale = get_scale(scale)
    settings = sizes("tokenizer", scale)
    files = [f"{p.parent.name}/{p.name}:{p.stat().st_size}" for p in corpus_files()]
    key = hashlib.sha1(json.dumps([settings, files, 3]).encode()).hexdigest()[:8]
    return runs_dir() / "tokenizers" / f"{scale}-v{settings['vocab_size']}-{key}"


CORPUS_STAMP = "lshlib_corpus.json"  # in a tokenizer folder: the corpus_digest it was trained on


def _stamp(path: Path) -> str | None:
    """The corpus digest stored in tokenizer folder ``path`` (``None``: none stored)."""
    file = path / CORPUS_STAMP
    if not file.is_file():
        return None
    try:
        return str(json.loads(file.read_text(encoding="utf-8"))["corpus_sha256"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "unreadable"


def _cached_tokenizer(path: Path) -> PreTrainedTokenizerFast | None:
    """The tokenizer cached in ``path``; ``None`` when absent, or when corrupt or trained on a
    corpus whose content has changed since (then moved aside with a warning naming it, so that
    it is rebuilt rather than failing every later run). The folder's name comes from the
    corpus files' names and sizes (it is part of every run's name); their content hash
    (:func:`corpus_digest`) is stored inside it (:data:`CORPUS_STAMP`) and checked here. A
    cache made before the hash was stored is taken as it is, and stamped."""
    if not path.exists():
        return None
    problem = None
    if not (path / "tokenizer.json").is_file():
        problem = "no tokenizer.json in the folder"
    else:
        try:
            tok = PreTrainedTokenizerFast.from_pretrained(path)
        except Exception as err:  # noqa: BLE001 - any load failure means a corrupt cache
            problem = f"cannot be loaded: {type(err).__name__}: {err}"
        else:
            ids = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))
            stamp, digest = _stamp(path), corpus_digest()
            if ids != list(range(len(SPECIAL_TOKENS))):
                problem = f"special tokens {SPECIAL_TOKENS} have ids {ids}, expected 0-4"
            elif stamp is None:  # made before the hash was stored
                with contextlib.suppress(OSError):
                    safeio.atomic_write_json(path / CORPUS_STAMP, {"corpus_sha256": digest})
                return tok
            elif stamp == digest:
                return tok
            else:
                problem = (
                    f"trained on another corpus (content hash {stamp}, the corpus now {digest}):"
                    " a corpus file was edited"
                )
    safeio.quarantine(path, problem)
    return None


def get_tokenizer(scale: str | None = None) -> PreTrainedTokenizerFast:
    """The WordPiece tokenizer of ``scale``, trained on the training part of the corpus.

    Vocabulary 32,000 at paper scale (as the paper), 8,000 at laptop and 2,000 at smoke (smaller
    embeddings and output layer: faster on a CPU). Trained once and cached under ``runs/``
    (written to a temporary folder, then renamed); the trainer is deterministic, so a rebuilt
    cache gives the same vocabulary. A corrupt cache is reported, moved aside and rebuilt.
    """
    path = tokenizer_dir(scale)
    cached = _cached_tokenizer(path)
    if cached is not None:
        return cached
    settings = sizes("tokenizer", scale)
    log.info("training WordPiece tokenizer %s", path.name)
    digest = corpus_digest()
    tok = train_tokenizer(corpus_text("train", settings["max_chars"]), settings["vocab_size"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    tok.save_pretrained(tmp)
    safeio.atomic_write_json(tmp / CORPUS_STAMP, {"corpus_sha256": digest})
    try:
        tmp.rename(path)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return PreTrainedTokenizerFast.from_pretrained(path)
