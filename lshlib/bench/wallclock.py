"""How long a whole ``make`` target took (``make reproduce``, ``make figures``), as a record.

The README quotes these times, so they come from a committed file rather than from memory.
``python -m lshlib.bench.wallclock start reproduce`` opens a sitting in
``results/<scale>/make_times.json`` (``reproduce_in_progress``: the commit, and per sitting its
start, its last sign of life, the runs it trained and the machine); a reproduce interrupted by the
end of a sitting resumes in the next one at the same commit, its finished records counting as done
(:func:`lshlib.training.load_record`). ``python -m lshlib.bench.wallclock finish reproduce`` writes
the sum of the sittings, the load at both ends, the machine, the commit and the sittings themselves,
one entry per target.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from lshlib.bench.measure import commit, machine_info
from lshlib.paths import REPO_ROOT, results_dir
from lshlib.safeio import atomic_write_json, load_json_dict
from lshlib.scales import get_scale

TARGETS = ("reproduce", "figures")


def _check(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown make target {target!r}; valid targets are: {', '.join(TARGETS)}")


IN_PROGRESS = "{target}_in_progress"


def _times_path(scale: str | None = None) -> Path:
    return results_dir(scale, "cpu") / "make_times.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _seconds(sitting: dict) -> float:
    start = datetime.fromisoformat(sitting["start_utc"])
    end = datetime.fromisoformat(sitting.get("end_utc") or sitting["start_utc"])
    return max(0.0, (end - start).total_seconds())


def in_progress(target: str = "reproduce", scale: str | None = None) -> dict | None:
    """The unfinished ``target`` recorded in ``make_times.json`` (its commit, start and the
    sittings so far), or ``None``."""
    return (load_json_dict(_times_path(scale)) or {}).get(IN_PROGRESS.format(target=target))


def start(target: str, scale: str | None = None) -> dict:
    """Open a sitting of ``target``: a new one when none is in progress at this commit, else
    another sitting of the same one (a reproduce spans sittings: each sitting's start, end,
    runs trained and machine are kept in ``make_times.json``, so nothing is lost when a
    sitting ends mid-way)."""
    _check(target)
    path, key, here = _times_path(scale), IN_PROGRESS.format(target=target), commit()
    times = load_json_dict(path) or {}
    current = times.get(key)
    if current is None or current.get("commit") != here:
        current = {
            "commit": here,
            "started_utc": _now(),
            "load_start": os.getloadavg()[0],
            "sittings": [],
        }
    current["sittings"].append(
        {"start_utc": _now(), "end_utc": None, "runs_trained": [], "machine": machine_info()}
    )
    times[key] = current
    atomic_write_json(path, times, indent=2)
    return current


def heartbeat(run: str | None = None, target: str = "reproduce", scale: str | None = None):
    """Mark the current sitting of ``target`` as alive now (its end so far), and ``run`` as
    trained in it; nothing when no ``target`` is in progress."""
    path, key = _times_path(scale), IN_PROGRESS.format(target=target)
    times = load_json_dict(path) or {}
    current = times.get(key)
    if not current or not current["sittings"]:
        return
    sitting = current["sittings"][-1]
    sitting["end_utc"] = _now()
    if run is not None:
        sitting["runs_trained"].append(run)
    atomic_write_json(path, times, indent=2)


def notebook_names() -> list[str]:
    """The study's numbered notebooks (what ``make reproduce`` and ``make figures`` run)."""
    return sorted(p.name for p in (REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))


def finish(target: str, scale: str | None = None) -> dict:
    """Close ``target``: its wall-clock is the sum of its sittings (start to last heartbeat or
    finish), written to ``make_times.json`` with every sitting. Raises ``FileNotFoundError``
    when no ``target`` is in progress (nothing to time)."""
    _check(target)
    path, key = _times_path(scale), IN_PROGRESS.format(target=target)
    times = load_json_dict(path) or {}
    current = times.pop(key, None)
    if current is None or not current["sittings"]:
        raise FileNotFoundError(
            f"no {target} in progress in {path}; run `python -m lshlib.bench.wallclock start "
            f"{target}` before the target"
        )
    current["sittings"][-1]["end_utc"] = _now()
    entry = {
        "seconds": round(sum(_seconds(s) for s in current["sittings"]), 1),
        "scale": get_scale(scale),
        "load_start": current["load_start"],
        "load_end": os.getloadavg()[0],
        "finished_utc": _now(),
        "commit": commit(),
        "machine": machine_info(),
        "notebooks": notebook_names(),
        "sittings": current["sittings"],
    }
    times[target] = entry
    atomic_write_json(path, times, indent=2)
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "finish"))
    parser.add_argument("target", choices=TARGETS)
    args = parser.parse_args(argv)
    if args.action == "start":
        start(args.target)
    else:
        finish(args.target)


if __name__ == "__main__":
    main()
