"""Resuming runs: which Trainer checkpoint a run may resume from (the newest *complete* one),
and what a resumed run's record must agree on with an uninterrupted one.

A kill while the Trainer writes ``checkpoint-N/`` leaves a folder that ``get_last_checkpoint``
still picks, and every later resume then fails on it (or, without ``scheduler.pt``, silently
restarts the learning-rate schedule). :func:`newest_valid_checkpoint` checks every file a resume
needs, newest checkpoint first, and moves incomplete ones aside (``corrupt-checkpoint-N.<time>``,
which the Trainer's ``checkpoint-*`` rotation does not see), logging their path and what is
wrong; the run then resumes from the newest valid checkpoint, or starts afresh.

A checkpoint is valid when it holds, each complete and readable:

- the weights (``model.safetensors``: header and size agree; or ``pytorch_model.bin``),
- ``optimizer.pt`` and ``scheduler.pt`` (zip archives whose CRCs check out),
- the RNG state (``rng_state.pth``, or ``rng_state_<rank>.pth`` per process), likewise,
- ``trainer_state.json`` (a JSON object whose ``global_step`` is ``N``),
- our clock file (``lshlib_clock.json``, a JSON object with a finite ``train_seconds``), which is
  written last (from ``on_save``), so its presence also says the Trainer finished the folder.

A resumed run's record equals an uninterrupted run's except for :func:`without_wall_clock`'s
fields; :func:`train_loss_mean` makes the mean loss cover every step, not the last session's.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any

from lshlib import safeio

log = logging.getLogger(__name__)

CLOCK_FILE = "lshlib_clock.json"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# an incomplete checkpoint moved aside by safeio.quarantine(prefix=True)
CORRUPT_TAG = safeio.CORRUPT_TAG
CORRUPT_RE = re.compile(rf"^{CORRUPT_TAG}-checkpoint-(\d+)\.")


def _zip_problem(path: Path) -> str | None:
    """What is wrong with a ``torch.save`` archive (truncated, bad CRC), or ``None``."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f"{path.name} is not a complete torch archive ({err})"
    return f"{path.name}: member {bad} fails its CRC check" if bad else None


def _safetensors_problem(path: Path) -> str | None:
    """Whether a ``.safetensors`` file's header parses and its size matches the header."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size:
                return f"{path.name}: header length {n} exceeds the file size {size}"
            header = json.loads(f.read(n))
        end = max(
            (t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0
        )
    except (struct.error, ValueError, KeyError, TypeError) as err:
        return f"{path.name}: unreadable header ({err})"
    if size != 8 + n + end:
        return f"{path.name}: {size} bytes, the header describes {8 + n + end} (truncated)"
    return None


def _json_problem(path: Path, step: int) -> str | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        return f"{path.name} is not valid JSON ({err})"
    if not isinstance(value, dict):
        return f"{path.name} holds {type(value).__name__}, not a JSON object"
    if path.name == CLOCK_FILE:
        seconds = value.get("train_seconds")
        if not isinstance(seconds, int | float) or not math.isfinite(seconds):
            return f"{path.name} has no finite train_seconds ({seconds!r})"
    elif value.get("global_step") != step:
        return f"{path.name} says global_step {value.get('global_step')!r}, expected {step}"
    return None


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` (``checkpoint-N``) cannot be resumed from, or ``None`` when it is valid."""
    folder = Path(folder)
    match = CHECKPOINT_RE.match(folder.name)
    if not folder.is_dir() or match is None:
        return f"{folder.name} is not a checkpoint-N folder"
    weights = [folder / "model.safetensors", folder / "pytorch_model.bin"]
    rng = [folder / "rng_state.pth", *sorted(folder.glob("rng_state_*.pth"))]
    groups = {
        "model weights (model.safetensors)": weights,
        "optimizer.pt": [folder / "optimizer.pt"],
        "scheduler.pt": [folder / "scheduler.pt"],
        "rng_state.pth": rng,
        "trainer_state.json": [folder / "trainer_state.json"],
        CLOCK_FILE: [folder / CLOCK_FILE],
    }
    present = {}
    for what, candidates in groups.items():
        found = [p for p in candidates if p.is_file()]
        if not found:
            return f"{what} is missing"
        present[what] = found
    step = int(match.group(1))
    for path in (p for found in present.values() for p in found):
        if path.stat().st_size == 0:
            problem = f"{path.name} is empty"
        elif path.suffix == ".safetensors":
            problem = _safetensors_problem(path)
        elif path.suffix in (".pt", ".pth", ".bin"):
            problem = _zip_problem(path)
        else:
            problem = _json_problem(path, step)
        if problem:
            return problem
    return None


def newest_valid_checkpoint(out: Path) -> Path | None:
    """The newest valid ``checkpoint-N`` under ``out`` (``None`` if none), after moving newer
    invalid ones aside with a warning (only from process 0, so that parallel workers agree)."""
    out = Path(out)
    if not out.is_dir():
        return None
    folders = [p for p in out.iterdir() if CHECKPOINT_RE.match(p.name) and p.is_dir()]
    folders.sort(key=lambda p: int(CHECKPOINT_RE.match(p.name).group(1)), reverse=True)
    main_process = int(os.environ.get("RANK", "0")) == 0
    for folder in folders:
        problem = checkpoint_problem(folder)
        if problem is None:
            if main_process:
                remove_superseded(out, folder)
            return folder
        if main_process:
            safeio.quarantine(folder, f"incomplete checkpoint: {problem}", prefix=True)
        else:
            log.warning("skipping incomplete checkpoint %s: %s", folder, problem)
    return None


def remove_superseded(out: Path, valid: Path | int | None = None) -> list[Path]:
    """Delete the incomplete checkpoints moved aside under ``out`` (``corrupt-checkpoint-N.*``)
    whose step ``N`` the run has validly reached since: the step of ``valid`` (a checkpoint
    folder, or a step a finished run saved its final model at), else of the newest valid
    checkpoint. They were kept to be looked at; once a later checkpoint is valid they only take
    space. Returns the folders deleted."""
    out = Path(out)
    aside = [p for p in out.glob(f"{CORRUPT_TAG}-checkpoint-*") if CORRUPT_RE.match(p.name)]
    if not aside:
        return []
    if valid is None:
        folders = [p for p in out.iterdir() if CHECKPOINT_RE.match(p.name) and p.is_dir()]
        folders.sort(key=lambda p: int(CHECKPOINT_RE.match(p.name).group(1)), reverse=True)
        valid = next((p for p in folders if checkpoint_problem(p) is None), None)
        if valid is None:
            return []
    if isinstance(valid, int):
        reached = valid
    else:
        reached = int(CHECKPOINT_RE.match(Path(valid).name).group(1))
    removed = []
    for path in sorted(aside):
        if int(CORRUPT_RE.match(path.name).group(1)) <= reached:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            log.info("removed %s: the run validly reached step %d since", path, reached)
            removed.append(path)
    return removed


def clock_seconds(checkpoint: Path | None) -> float:
    """The training wall-clock stored beside a valid checkpoint (0 without one)."""
    if checkpoint is None:
        return 0.0
    return float(json.loads((Path(checkpoint) / CLOCK_FILE).read_text())["train_seconds"])


def train_loss_mean(log_history: list[dict], session_loss: float, first: int, last: int) -> float:
    """Mean training loss over every step of the run, resumed or not.

    The Trainer's ``training_loss`` averages only the steps of the last session (0.0 when it
    resumed from the final checkpoint). The log history, restored with each checkpoint, holds
    the mean loss of every logged interval; the steps after the last log come from this
    session's ``session_loss`` over steps ``first``..``last``.
    """
    total, logged, in_session = 0.0, 0, 0.0
    for h in log_history:
        if "loss" in h:
            steps = h["step"] - logged
            total += h["loss"] * steps
            if h["step"] > first:
                in_session += h["loss"] * steps
            logged = h["step"]
    tail_steps = last - max(logged, first)
    if tail_steps > 0:
        total += session_loss * (last - first) - in_session
    covered = logged + max(tail_steps, 0)
    return total / covered if covered else math.nan


# Record fields that measure time; a resumed run's record equals an uninterrupted one without them.
# ``stages`` holds the last session's evaluation and checkpoint seconds (and their counts).
WALL_CLOCK_FIELDS: tuple[str, ...] = ("train_seconds", "finished_at", "stages")
WALL_CLOCK_SUFFIXES: tuple[str, ...] = ("_runtime", "_per_second")


def without_wall_clock(value: Any) -> Any:
    """A run record (or any part of one) without its wall-clock fields: ``train_seconds``,
    ``finished_at``, ``stages`` (the last session's timings), and every ``*_runtime`` /
    ``*_per_second`` (throughputs), at any depth."""
    if isinstance(value, dict):
        return {
            k: without_wall_clock(v)
            for k, v in value.items()
            if k not in WALL_CLOCK_FIELDS and not k.endswith(WALL_CLOCK_SUFFIXES)
        }
    if isinstance(value, list):
        return [without_wall_clock(v) for v in value]
    return value
