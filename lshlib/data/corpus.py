"""The pretraining corpus: local Wikitext and Project Gutenberg files, split into paragraphs."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

import datasets
import pyarrow as pa

from lshlib.data.common import CORPUS_EVAL_FRACTION, DataFormatError, from_hub
from lshlib.paths import data_dir

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
    hub = from_hub("corpus", root)
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
