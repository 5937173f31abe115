"""Crash-safe files: atomic writes, and corrupt caches or records moved aside instead of failing.

Every cache and record the package writes (results JSON, corpus token ids, tokenizer folders,
the training clock) goes through :func:`atomic_write_text` / :func:`atomic_save_npy`: the bytes
go to a temporary file in the same folder, are flushed to disk, then renamed over the target, so
a kill leaves either the old file or the new one, never half of one. A file found corrupt anyway
(written by an older version, truncated by a full disk, edited by hand) is reported with its
path and renamed by :func:`quarantine`, so the next step rebuilds it rather than every later run
failing on it. Run records are moved aside by the training path only: reports and notebooks read
them through :mod:`lshlib.training.records`, which never renames or writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)

CORRUPT_TAG = "corrupt"


@contextlib.contextmanager
def _atomic(path: Path, mode: str) -> Iterator[IO]:
    """A temporary file beside ``path``, renamed over it when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    with _atomic(path, "w") as f:
        f.write(text)


def atomic_write_json(path: Path, obj: Any, **kwargs: Any) -> None:
    """``json.dumps(obj, **kwargs)`` plus a newline, written atomically to ``path``."""
    atomic_write_text(path, json.dumps(obj, **kwargs) + "\n")


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to ``path`` atomically (no ``.npy`` suffix is appended)."""
    with _atomic(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def quarantine(path: Path, reason: str, *, prefix: bool = False) -> Path:
    """Move a corrupt file or folder aside and log a warning naming it, the reason and the new
    name: ``<name>.corrupt-<UTC time>``, or ``corrupt-<name>.<UTC time>`` with ``prefix`` (for
    ``checkpoint-N`` folders, whose ``checkpoint-*`` glob the Trainer uses must not match)."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = f"{CORRUPT_TAG}-{path.name}.{stamp}" if prefix else f"{path.name}.{CORRUPT_TAG}-{stamp}"
    target = path.with_name(base)
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{base}-{n}")
    try:
        os.replace(path, target)
    except OSError as err:
        raise OSError(
            f"{path} is corrupt ({reason}) and could not be moved aside ({err}); delete it"
        ) from err
    log.warning("%s is corrupt (%s): moved aside to %s; it will be rebuilt", path, reason, target)
    return target


def load_npy(path: Path, dtype: np.dtype | type | None = None, ndim: int | None = None):
    """The array cached in ``path``, or ``None`` when it is absent or corrupt (then moved aside).

    Corrupt means unreadable by ``np.load`` (truncated, not ``.npy``), or of another ``dtype`` or
    number of dimensions than asked for.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        quarantine(path, f"unreadable .npy: {err}")
        return None
    if dtype is not None and array.dtype != np.dtype(dtype):
        quarantine(path, f"dtype {array.dtype}, expected {np.dtype(dtype)}")
        return None
    if ndim is not None and array.ndim != ndim:
        quarantine(path, f"{array.ndim} dimensions, expected {ndim}")
        return None
    return array


def load_json_dict(path: Path) -> dict | None:
    """The JSON object stored in ``path``, or ``None`` when absent or corrupt (then moved aside).

    Corrupt means not UTF-8 JSON (truncated, empty) or not an object (``[]``, ``null``, ``3``).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        quarantine(path, f"not valid JSON: {err}")
        return None
    if not isinstance(value, dict):
        quarantine(path, f"holds {type(value).__name__} {str(value)[:40]!r}, not a JSON object")
        return None
    return value


class DerivedFileError(RuntimeError):
    """A derived file (a floor, the lexical baseline, a locality table, ``claims.json``) that a
    reader needs is missing or unreadable; the message names the file and the command that
    writes it."""


DERIVED_BY = "python -m lshlib.verdict --derived (make figures and make reproduce run it)"


def read_derived(path: Path, made_by: str = DERIVED_BY) -> dict:
    """The JSON object in the derived file ``path``, read only: never computed here, never moved
    aside. A missing or corrupt file raises :class:`DerivedFileError` naming ``made_by``."""
    path = Path(path)
    if not path.is_file():
        raise DerivedFileError(f"{path} is missing; {made_by} writes it")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DerivedFileError(f"{path} is not valid JSON ({err}); {made_by} rewrites it") from err
    if not isinstance(value, dict):
        raise DerivedFileError(f"{path} holds no JSON object; {made_by} rewrites it")
    return value
