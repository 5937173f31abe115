"""How long a whole ``make`` target took (``make reproduce``, ``make figures``), as a record.

The README quotes these times, so they come from a committed file rather than from memory:
``python -m lshlib.wallclock start reproduce`` stamps the start (time and load) under
``runs/``; ``python -m lshlib.wallclock finish reproduce`` writes the elapsed wall-clock,
the load at both ends, the machine and the commit into ``results/<scale>/make_times.json``,
one entry per target.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from lshlib.measure import commit, machine_info
from lshlib.paths import REPO_ROOT, results_dir, runs_dir
from lshlib.safeio import atomic_write_json, load_json_dict
from lshlib.scales import get_scale

TARGETS = ("reproduce", "figures")


def _check(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown make target {target!r}; valid targets are: {', '.join(TARGETS)}")


def _stamp_path(target: str) -> Path:
    return runs_dir() / f".wallclock-{target}.json"


def start(target: str) -> None:
    """Stamp the start of ``target`` (overwrites an earlier, unfinished stamp)."""
    _check(target)
    atomic_write_json(_stamp_path(target), {"t0": time.time(), "load_start": os.getloadavg()[0]})


def notebook_names() -> list[str]:
    """The study's numbered notebooks (what ``make reproduce`` and ``make figures`` run)."""
    return sorted(p.name for p in (REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))


def finish(target: str, scale: str | None = None) -> dict:
    """Record ``target``'s wall-clock since its start stamp in ``make_times.json``.

    Raises ``FileNotFoundError`` when no start stamp exists (nothing to time)."""
    _check(target)
    stamp = load_json_dict(_stamp_path(target))
    if stamp is None:
        raise FileNotFoundError(
            f"no start stamp {_stamp_path(target)}; run `python -m lshlib.wallclock start "
            f"{target}` before the target"
        )
    path = results_dir(scale) / "make_times.json"
    entry = {
        "seconds": round(time.time() - stamp["t0"], 1),
        "scale": get_scale(scale),
        "load_start": stamp["load_start"],
        "load_end": os.getloadavg()[0],
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine_info(),
        "notebooks": notebook_names(),
    }
    times = load_json_dict(path) or {}
    times[target] = entry
    atomic_write_json(path, times, indent=2)
    _stamp_path(target).unlink()
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
