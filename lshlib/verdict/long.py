"""The verdict's long runs (``make long``): the exploratory seed-42 plateau runs and the
long-sequence runs, and the readings of their curves (the exploratory plateau exit, the time to a
training loss).

These are the runs that motivated the pre-registered plateau rule
(:mod:`lshlib.experiments.survival`); their readings are exploratory, never a finding.
"""

from __future__ import annotations

from lshlib import training
from lshlib.scales import LONG, get_scale, sizes
from lshlib.training.config import RunConfig

# The plateau runs: lsh_paper_fixed is lsh_paper without hashes redrawn at every call, the
# control of the idea that their noise moves the model along the plateau faster.
PLATEAU_VARIANTS = ("baseline", "lsh_paper", "lsh_paper_fixed")


def long_plan(scale: str | None = None) -> dict[str, list[RunConfig]]:
    """The long runs (``make long``): the plateau runs (:data:`PLATEAU_VARIANTS`), and the
    long-sequence runs of the baseline (SDPA) and ``lsh_bucketed`` (:data:`lshlib.scales.LONG`);
    the first pretraining seed."""
    scale = get_scale(scale)
    seed = sizes("verdict", scale)["mlm_seeds"][0]
    settings = LONG[scale]
    return {
        "plateau": [
            training.run_config("mlm", v, scale, seed, **settings["plateau"])
            for v in PLATEAU_VARIANTS
        ],
        "long_sequence": [
            training.run_config("mlm", v, scale, seed, **settings["long_sequence"])
            for v in ("baseline", "lsh_bucketed")
        ],
    }


def run_long(scale: str | None = None, progress: bool = True) -> dict[str, list[dict]]:
    """Run (or reuse) the long runs; each shows its own progress bar."""
    return {
        group: [training.run(c, progress=progress) for c in configs]
        for group, configs in long_plan(scale).items()
    }


def long_records(scale: str | None = None) -> dict[str, list[dict | None]]:
    """The long runs' records where they are finished (``None`` where not: ``make long`` runs
    them; a notebook only reads them, it never starts an hour-long run)."""
    return {g: [training.load_record(c) for c in cs] for g, cs in long_plan(scale).items()}


def _smoothed(curve: list[dict], key: str, window: int) -> list[tuple[int, float, dict]]:
    """``(step, rolling median of key over the last window points, point)`` along a curve."""
    points = [p for p in curve if key in p]
    out = []
    for i, p in enumerate(points):
        recent = sorted(q[key] for q in points[max(0, i - window + 1) : i + 1])
        out.append((p["step"], recent[len(recent) // 2], p))
    return out


def plateau_exit(record: dict, reference_step: int, drop: float = 0.3, window: int = 5) -> dict:
    """Whether and when a long MLM run leaves the plateau.

    The plateau level is the smoothed training loss (rolling median of ``window`` logged
    points) at ``reference_step``, where the shorter seed runs ended on the plateau; the run
    leaves it at the first later step whose smoothed loss is ``drop`` nats below that level.
    Returns the level, the exit step (``None`` if it never drops that far), the final smoothed
    loss, and the validation accuracy reached at the end."""
    if drop <= 0 or window < 1:
        raise ValueError(f"drop must be > 0 and window >= 1, got drop={drop!r}, window={window!r}")
    curve = _smoothed(record["curves"]["train"], "loss", window)
    if not curve or curve[-1][0] < reference_step:
        last = curve[-1][0] if curve else 0
        raise ValueError(
            f"reference_step {reference_step} is beyond the run's last logged step {last}"
        )
    level = next(loss for step, loss, _ in curve if step >= reference_step)
    exit_step = next(
        (step for step, loss, _ in curve if step > reference_step and loss <= level - drop), None
    )
    return {
        "variant": record["config"]["variant"],
        "drop": drop,
        "plateau_loss": level,
        "exit_step": exit_step,
        "steps": record["steps"],
        "final_loss": curve[-1][1],
        "validation_accuracy": record["final"]["validation_accuracy"],
        "validation_loss": record["final"]["validation_loss"],
        "train_minutes": record["train_seconds"] / 60,
    }


def plateau_summary(scale: str | None = None) -> tuple[list[dict], list[dict], int] | None:
    """The finished plateau runs, their :func:`plateau_exit` results and the reference step
    (where the first pretraining seed run of the baseline ended); ``None`` until the baseline's
    and ``lsh_paper``'s runs and the reference are finished (the fixed-hash control may lag)."""
    runs = long_records(scale)["plateau"]
    seed = sizes("verdict", get_scale(scale))["mlm_seeds"][0]
    reference = training.load_record(training.run_config("mlm", "baseline", scale, seed))
    if not all(runs[:2]) or reference is None:
        return None
    done = [r for r in runs if r is not None]
    return done, [plateau_exit(r, reference["steps"]) for r in done], reference["steps"]


def time_to_loss(record: dict, level: float, window: int = 5) -> float | None:
    """Seconds of training until the smoothed training loss first reaches ``level`` (``None``
    if it never does); needs a curve stamped with ``train_seconds``."""
    for _, loss, point in _smoothed(record["curves"]["train"], "loss", window):
        if loss <= level:
            if "train_seconds" not in point:
                raise ValueError(f"{record['name']}: its curve has no train_seconds stamps")
            return point["train_seconds"]
    return None


def final_smoothed_loss(record: dict, window: int = 5) -> float:
    """The last point of the smoothed training loss (rolling median of ``window`` points)."""
    return _smoothed(record["curves"]["train"], "loss", window)[-1][1]


def long_missing(scale: str | None, group: str) -> str:
    """What is missing of a long group, as one line for a notebook."""
    configs = long_plan(scale)[group]
    missing = [c.name for c in configs if training.load_record(c) is None]
    return "not run yet (make long): " + ", ".join(missing) if missing else "all finished"
