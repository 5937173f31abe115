"""Run records: one typed schema, checked when a record is written and when it is read.

A finished training run writes ``results/<scale>/<name>.json`` (:mod:`lshlib.training`). Two
kinds of code read those files, with different rights:

* **Reports** (``python -m lshlib.report.readme``, the notebooks, ``make figures``) only read:
  :func:`read_record` never moves, renames or writes anything. A record that is not valid JSON,
  does not match :class:`RunRecord`, or holds another run's configuration raises
  :class:`RecordError`, whose message names the file, the problem and the fix
  (``git checkout -- <file>`` for a committed record, or retraining the run).
* **Training** (:func:`lshlib.training.run`) owns its run cache: there a corrupt record is moved
  aside (``<name>.json.corrupt-<time>``, :func:`lshlib.safeio.quarantine`) and the run is redone.

:func:`write_record` checks the schema before writing and writes strict JSON
(``allow_nan=False``): a non-finite number (a diverged loss) is stored as ``null`` and named in
the record's ``nonfinite`` field (``{"final.train_loss_last": "nan"}``), so the file stays valid
JSON and the reason stays with it.

The schema accepts every record committed under ``results/`` unedited and allows keys it does not
name (records gain fields over time: ``commit``, ``examples``, ``stopped_early``,
``pretrained_run``, ``curves.diagnostics``, ``final.*_draws``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

from lshlib import safeio

__all__ = [
    "RecordError",
    "RunRecord",
    "REQUIRED_FINAL",
    "read_record",
    "check_record",
    "record_problem",
    "sanitize",
    "write_record",
]

Number = StrictInt | StrictFloat
NAME_RE = re.compile(r"^(?P<task>mlm|sst2|squad)-(?P<variant>\w+)-s(?P<seed>\d+)-[0-9a-f]{8}$")
# The final metrics every finished record of a task has (what the reports read).
REQUIRED_FINAL: dict[str, tuple[str, ...]] = {
    "mlm": ("validation_loss", "validation_accuracy"),
    "sst2": ("validation_loss", "validation_accuracy", "test_accuracy"),
    "squad": ("validation_loss", "test_exact_match", "test_f1"),
}
_STRICT = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class RecordError(ValueError):
    """A run record cannot be used; the message names the file, the problem and the fix."""


class _Point(BaseModel):
    model_config = _STRICT
    step: StrictInt = Field(ge=0)


class _TrainPoint(_Point):
    loss: Number | None


class _EvalPoint(_Point):
    eval_loss: Number | None


class _Curves(BaseModel):
    model_config = _STRICT
    train: list[_TrainPoint]
    eval: list[_EvalPoint]


class _Device(BaseModel):
    model_config = _STRICT
    type: str


class RunRecord(BaseModel):
    """What a finished run's record holds (only checked: a record stays a plain dict)."""

    model_config = _STRICT
    name: str = Field(pattern=NAME_RE.pattern)
    status: Literal["finished"]
    config: dict[str, Any]
    data: dict[str, Any]
    curves: _Curves
    final: dict[str, Number | None | list[Any] | dict[str, Any]]
    steps: StrictInt = Field(ge=1)
    train_seconds: Number = Field(ge=0)
    tokens_seen: StrictInt = Field(ge=0)
    tokens_per_second: Number | None = Field(ge=0)
    train_samples_per_second: Number | None = Field(ge=0)
    stages: dict[str, Any]
    device: _Device
    versions: dict[str, str]
    finished_at: str
    commit: str | None = None
    nonfinite: dict[str, str] | None = None  # dotted key -> "nan" / "inf" / "-inf" (stored null)

    @model_validator(mode="after")
    def _consistent(self) -> RunRecord:
        named = NAME_RE.match(self.name)
        assert named is not None  # the pattern above
        for key in ("task", "variant", "seed"):
            value = self.config.get(key)
            if str(value) != named[key]:
                raise ValueError(
                    f"config.{key} is {value!r} but the name {self.name!r} says {named[key]!r}"
                )
        nonfinite = self.nonfinite or {}
        for key in REQUIRED_FINAL[named["task"]]:
            if key not in self.final:
                raise ValueError(f"final.{key} is missing (a finished {named['task']} run has it)")
            if self.final[key] is None and f"final.{key}" not in nonfinite:
                raise ValueError(f"final.{key} is null and not listed in nonfinite")
            if isinstance(self.final[key], list | dict):
                raise ValueError(f"final.{key} must be a number, got {self.final[key]!r:.40}")
        return self


def record_problem(record: Any) -> str | None:
    """What is wrong with ``record`` as a finished run record (one line), or ``None``."""
    if not isinstance(record, dict):
        return f"holds {type(record).__name__} {str(record)[:40]!r}, not a JSON object"
    try:
        RunRecord.model_validate(record)
    except ValidationError as err:
        parts = []
        for e in err.errors()[:5]:
            where = ".".join(str(x) for x in e["loc"])
            parts.append(f"{where}: {e['msg']}" if where else e["msg"])
        more = f" (and {err.error_count() - 5} more)" if err.error_count() > 5 else ""
        return "; ".join(parts) + more
    return None


def _shown(path: Path) -> Path:
    """``path`` relative to the current folder when it lies below it (as ``git`` takes it)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _fix(path: Path) -> str:
    return (
        f"restore the committed file with `git checkout -- {_shown(path)}`, or delete it and "
        "retrain the run (`make reproduce`; the long runs: `make long`)"
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"bare {name} is not valid JSON (non-finite numbers are stored as null)")


def check_record(record: Any, path: Path | str, config: dict[str, Any] | None = None) -> dict:
    """``record`` when it is a valid run record (of ``config``, when given), else
    :class:`RecordError` naming ``path``, the problem and the fix."""
    problem = record_problem(record)
    if problem is None and config is not None and record["config"] != config:
        keys = sorted(
            k
            for k in set(record["config"]) | set(config)
            if record["config"].get(k, "<absent>") != config.get(k, "<absent>")
        )
        problem = f"its config is not the run's: differs in {', '.join(keys)}"
    if problem is not None:
        raise RecordError(f"{path} is not a usable run record ({problem}). Fix: {_fix(Path(path))}")
    return record


def read_record(path: Path | str, config: dict[str, Any] | None = None) -> dict | None:
    """The run record stored in ``path``, checked against :class:`RunRecord` (and against the
    run's ``config``, a :meth:`lshlib.training.RunConfig.to_dict`, when given); ``None`` when the
    file does not exist. Read-only: nothing is moved, renamed or written. Raises
    :class:`RecordError` naming the file, the problem and the fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise RecordError(f"{path} cannot be read ({err}). Fix: {_fix(path)}") from err
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except ValueError as err:  # JSONDecodeError is a ValueError
        raise RecordError(f"{path} is not valid JSON ({err}). Fix: {_fix(path)}") from err
    return check_record(record, path, config)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists (what ``json`` can write)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        return value.item()  # a 0-d torch tensor
    return value


def sanitize(value: Any, where: str = "", found: dict[str, str] | None = None) -> Any:
    """``value`` with every non-finite float replaced by ``None``; each one's dotted key and
    kind (``nan``, ``inf``, ``-inf``) is added to ``found``."""
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        if found is not None:
            found[where] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(value, dict):
        return {
            k: sanitize(v, f"{where}.{k}" if where else str(k), found) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [sanitize(v, f"{where}[{i}]", found) for i, v in enumerate(value)]
    return value


def write_record(path: Path | str, record: dict) -> dict:
    """Check ``record`` and write it to ``path`` atomically as strict JSON; non-finite numbers
    become ``null`` and are listed in ``nonfinite``. Returns the record as written. Raises
    :class:`RecordError` (nothing written) when it does not match :class:`RunRecord`."""
    found: dict[str, str] = dict(record.get("nonfinite") or {})
    clean = sanitize({k: v for k, v in record.items() if k != "nonfinite"}, "", found)
    if found:
        clean["nonfinite"] = found
    problem = record_problem(clean)
    if problem is not None:
        raise RecordError(f"refusing to write {path}: not a valid run record ({problem})")
    safeio.atomic_write_text(Path(path), json.dumps(clean, indent=1, allow_nan=False) + "\n")
    return clean
