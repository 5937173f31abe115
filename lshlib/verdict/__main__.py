"""``python -m lshlib.verdict [--scale S] [--long | --derived]``: train the verdict's missing runs
and write every derived file (``make reproduce``, ``make nbtest``); ``--derived`` writes the
derived files only, training nothing (``make figures``); ``--long`` trains the long runs (``make
long``)."""

from __future__ import annotations

import argparse

from lshlib.paths import REPO_ROOT
from lshlib.scales import SCALES, get_scale
from lshlib.verdict.derived import write_derived
from lshlib.verdict.long import run_long
from lshlib.verdict.planning import run_plan


def main(argv: list[str] | None = None) -> None:
    """Run the verdict's plan and write its derived files, or one of the two alone."""
    parser = argparse.ArgumentParser(prog="python -m lshlib.verdict", description=main.__doc__)
    parser.add_argument("--scale", default=None, choices=SCALES)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--long", action="store_true", help="the plateau and long-sequence runs")
    what.add_argument("--derived", action="store_true", help="the derived files only, no training")
    args = parser.parse_args(argv)
    scale = get_scale(args.scale)  # resolved once, here
    if args.long:
        run_long(scale)
        return
    if not args.derived:
        run_plan(scale)
    for path in write_derived(scale):
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")


if __name__ == "__main__":
    main()
