"""``python -m lshlib.training --scale S --task T --variant V --seed N`` (``all`` allowed).

The command line is parsed and checked by :mod:`lshlib.training.cli` before torch and
transformers load, so a bad flag or environment variable fails in a fraction of a second."""

from __future__ import annotations

import json
import logging

from lshlib.training import cli

log = logging.getLogger("lshlib.training")


def main(argv: list[str] | None = None) -> None:
    """Train (or reuse) every run the command line names, pretraining runs first."""
    ns = cli.parse(argv)  # before torch loads
    from lshlib.training.config import run_config
    from lshlib.training.runs import run

    logging.basicConfig(level=logging.INFO)
    try:  # settings from the environment (folders, WORLD_SIZE) fail here, as one line
        configs = [run_config(task, v, ns.scale, ns.seed) for task, v in cli.runs_of(ns)]
    except (ValueError, OSError) as err:
        cli.fail(str(err))
    for config in configs:
        record = run(config, chain=True)
        log.info("%s: %s", record["name"], json.dumps(record.get("final", record)))


if __name__ == "__main__":
    main()
