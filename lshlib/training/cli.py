"""The command line of ``python -m lshlib.training``, parsed before torch and transformers load.

``python -m lshlib.training`` (:mod:`lshlib.training.__main__`) parses the command line here
before it imports torch: a
wrong flag, an out-of-range value, an impossible combination or a bad environment variable is
reported in a fraction of a second, as one line naming the flag or variable (argparse's usage
line and ``error:``, exit status 2), instead of after seconds of imports or as a traceback.
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import os

from lshlib.paths import DIR_ENV_VARS, env_dir
from lshlib.scales import ENV_VAR as SCALE_ENV_VAR
from lshlib.scales import SCALES, get_scale
from lshlib.variants import (
    CONTROL_VARIANTS,
    FINETUNE_VARIANTS,
    LONG_VARIANTS,
    RUN_VARIANTS,
    SCRATCH,
    TASKS,
    VARIANTS,
)

__all__ = ["PROG", "REUSE_ENV_VAR", "REUSE_MODES", "parser", "parse", "runs_of", "fail"]

PROG = "python -m lshlib.training"
REUSE_ENV_VAR = "LSHLIB_REUSE"
REUSE_MODES: tuple[str, ...] = ("results", "runs")  # which finished runs lshlib.training reuses
MAX_SEED = 2**32  # numpy and torch seeds must be below this


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer in [0, 2**32), got {text!r}"
        ) from None
    if not 0 <= value < MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32), got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m lshlib.training``."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Pretraining (MLM) and fine-tuning (SST-2, SQuAD) runs, cached and resumable.",
    )
    p.add_argument(
        "--scale", default=None, choices=SCALES, help=f"default: ${SCALE_ENV_VAR}, else laptop"
    )
    p.add_argument("--task", default="all", choices=(*TASKS, "all"))
    p.add_argument(
        "--variant",
        default="all",
        choices=(*RUN_VARIANTS, "all"),
        help=(
            f"'all': {', '.join(VARIANTS)} (fine-tuning also {SCRATCH}, the no-pretraining "
            f"control); also runnable: the controls {', '.join(CONTROL_VARIANTS)} and the long "
            f"variant {', '.join(LONG_VARIANTS)}"
        ),
    )
    p.add_argument("--seed", type=_seed, default=42, help="an integer in [0, 2**32); default 42")
    return p


def _check_environment(p: argparse.ArgumentParser, ns: argparse.Namespace) -> None:
    if ns.scale is None:
        try:
            ns.scale = get_scale(None)
        except ValueError as err:
            p.error(f"{SCALE_ENV_VAR}: {err}")
    reuse = os.environ.get(REUSE_ENV_VAR, "").strip() or "results"
    if reuse not in REUSE_MODES:
        p.error(f"{REUSE_ENV_VAR}={reuse!r}; valid values: {', '.join(REUSE_MODES)}")
    world = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    if not world.isdigit() or int(world) < 1:
        p.error(f"WORLD_SIZE={world!r}: must be an integer >= 1 (set by torchrun / accelerate)")
    for var in DIR_ENV_VARS:
        try:
            env_dir(var, os.getcwd())
        except (NotADirectoryError, OSError, RuntimeError) as err:
            p.error(str(err))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line (``sys.argv[1:]`` when ``argv`` is None), with ``scale``
    resolved; exits with status 2 and one line naming the problem when it is wrong."""
    p = parser()
    ns = p.parse_args(argv)
    if ns.task == "mlm" and ns.variant == SCRATCH:
        p.error(
            f"argument --variant: {SCRATCH!r} is the fine-tuning control without pretraining; "
            "it has no --task mlm run (use --task sst2, squad or all)"
        )
    _check_environment(p, ns)
    return ns


def runs_of(ns: argparse.Namespace) -> list[tuple[str, str]]:
    """The (task, variant) pairs the command line asks for. ``--variant all`` means the main
    variants (fine-tuning: with ``scratch``); ``--task all --variant scratch`` the fine-tuning
    tasks only."""
    pairs = []
    for task in TASKS if ns.task == "all" else (ns.task,):
        if ns.variant == "all":
            pairs += [(task, v) for v in (VARIANTS if task == "mlm" else FINETUNE_VARIANTS)]
        elif not (task == "mlm" and ns.variant == SCRATCH):
            pairs.append((task, ns.variant))
    return pairs


def fail(message: str) -> None:
    """Exit with status 2 and ``<prog>: error: <message>`` (one line), as argparse does."""
    parser().exit(2, f"{PROG}: error: {' '.join(str(message).split())}\n")
