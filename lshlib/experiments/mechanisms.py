"""Why paper-mode attention leaves the MLM plateau: the pre-registered arms, the explanations
each one probes, and the rule that reads their results.

Written before any arm ran; never tuned afterwards. Each *arm* is a plateau run (the schedule,
evaluation, diagnostics, stop and chained transfer of :mod:`lshlib.experiments.plateau`) that
changes one thing, so that one candidate explanation predicts whether it leaves the plateau:

* ``zero_gate``: paper mode sets the scores of non-colliding pairs to 0 (about 76% of pairs at the
  paper's settings) instead of excluding them: an input-dependent gate;
* ``locality``: *which* pairs collide matters (similar queries and keys), not only how many;
* ``mirroring``: the upper triangle's scores copied onto the lower one;
* ``schedule``: the exit is a matter of the learning rate's linear decay, not of attention;
* ``epoch_boundary``: the exit comes with the start of an epoch (every seed starts epoch 3 at step
  10,280 on the full data);
* ``qk_step``: a smaller effective step of W_Q and W_K lets a model leave;
* ``step_size``: the global learning rate is what holds the baseline on the plateau;
* ``attention_noise``: noise on the attention pattern (per-call hashes) helps a model leave.

:data:`ARMS` lists, in the order they queue, what each arm changes, the explanation it probes and
the outcome that explanation predicts (``exits`` or ``stays`` by the horizon); :data:`HAS` says
which mechanisms each arm has. :func:`reading` turns "exits in k of n seeds" into words by the
pre-registered rule: an arm *exits* when every seed exits, *stays* when none does, else it is
*mixed* (seed 3 is then run: :func:`seeds_for`); an arm matching its prediction is "consistent
with" the explanation, the opposite is "against" it; "supported" needs at least
:data:`SUPPORTED_MIN_SEEDS` seeds, which no arm has at the laptop scale. Arms are exploratory: they
stay outside the claims table's multiplicity family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EXPLANATIONS",
    "MECHANISMS",
    "ARMS",
    "HAS",
    "SUPPORTED_MIN_SEEDS",
    "Arm",
    "outcome",
    "reading",
    "seeds_for",
]

EXPLANATIONS: dict[str, str] = {
    "zero_gate": "non-colliding scores set to 0 (an input-dependent gate), not excluded",
    "locality": "which pairs collide (similar queries and keys), not only how many",
    "mirroring": "scores of the upper triangle copied onto the lower one",
    "schedule": "the learning rate's linear decay, not attention",
    "epoch_boundary": "the start of an epoch (epoch 3 starts at step 10,280 for every seed)",
    "qk_step": "a smaller effective step of W_Q and W_K",
    "step_size": "the global learning rate",
    "attention_noise": "noise on the attention pattern",
}
MECHANISMS = (
    "zero_gate",
    "locality",
    "mirroring",
    "decay",
    "epoch_3750",
    "small_qk_step",
    "attention_noise",
)
SUPPORTED_MIN_SEEDS = 5
FIRST_SEEDS = (1, 2)
TIEBREAK_SEED = 3


@dataclass(frozen=True)
class Arm:
    """One arm: its name, the variant it trains, its settings (overrides of the plateau
    schedule), the explanation it probes and the outcome that explanation predicts."""

    name: str
    variant: str
    settings: dict[str, Any] = field(default_factory=dict)
    probes: str = ""
    predicts: str = "exits"
    why: str = ""


ARMS: tuple[Arm, ...] = (
    Arm(
        "random_paper",
        "random_paper",
        {},
        "locality",
        "stays",
        "random pairs at the same density per call: if locality matters, no exit",
    ),
    Arm(
        "constant_lr",
        "baseline",
        {"lr_schedule": "constant"},
        "schedule",
        "exits",
        "the baseline without decay: if the decay holds it on the plateau, it exits",
    ),
    Arm(
        "short_epochs",
        "lsh_paper",
        {"max_train": 60_000, "max_steps": 25_700},
        "epoch_boundary",
        "exits",
        "epochs of 3,750 steps on the same schedule: if an epoch start triggers the exit, it "
        "exits earlier (at 7,500 or 11,250)",
    ),
    Arm(
        "lsh_masked",
        "lsh_masked",
        {},
        "zero_gate",
        "stays",
        "non-colliding pairs excluded instead of scored 0: if the zeros matter, no exit",
    ),
    Arm(
        "lr_4e-3",
        "baseline",
        {"learning_rate": 4e-3},
        "step_size",
        "exits",
        "the baseline at twice the learning rate: if steps are too small, it exits",
    ),
    Arm(
        "qk_lr_0.25",
        "baseline",
        {"qk_lr_scale": 0.25},
        "qk_step",
        "exits",
        "the baseline with W_Q and W_K at a quarter of the learning rate: if the gate works by "
        "shrinking their step, it exits",
    ),
    Arm(
        "unmirrored",
        "lsh_paper_unmirrored",
        {},
        "mirroring",
        "stays",
        "each colliding pair scored as itself: if mirroring matters, no exit",
    ),
    Arm(
        "attention_dropout_0.3",
        "baseline",
        {"model_overrides": {"attention_probs_dropout_prob": 0.3}},
        "attention_noise",
        "exits",
        "the baseline with noisy attention: if noise helps, it exits",
    ),
    Arm(
        "lr_1e-3",
        "baseline",
        {"learning_rate": 1e-3},
        "step_size",
        "exits",
        "the baseline at half the learning rate: if steps are too large, it exits",
    ),
)
ARM_NAMES = tuple(a.name for a in ARMS)

# Which mechanisms each arm (and the two references) has; True = has.
_LSH = {
    "zero_gate": True,
    "locality": True,
    "mirroring": True,
    "decay": True,
    "epoch_3750": False,
    "small_qk_step": False,
    "attention_noise": True,
}
_BASE = {m: False for m in MECHANISMS} | {"decay": True}
HAS: dict[str, dict[str, bool]] = {
    "baseline": _BASE,
    "lsh_paper": _LSH,
    "random_paper": _LSH | {"locality": False},
    "constant_lr": _BASE | {"decay": False},
    "short_epochs": _LSH | {"epoch_3750": True},
    "lsh_masked": _LSH | {"zero_gate": False, "mirroring": False},
    "lr_4e-3": _BASE,
    "qk_lr_0.25": _BASE | {"small_qk_step": True},
    "unmirrored": _LSH | {"mirroring": False},
    "attention_dropout_0.3": _BASE | {"attention_noise": True},
    "lr_1e-3": _BASE,
}


def arm(name: str) -> Arm:
    """The arm called ``name``; the error lists the valid ones."""
    for a in ARMS:
        if a.name == name:
            return a
    raise ValueError(f"unknown arm {name!r}; arms: {', '.join(ARM_NAMES)}")


def outcome(exits: list[bool]) -> str:
    """``exits`` when every seed exits, ``stays`` when none does, else ``mixed``."""
    if not exits:
        raise ValueError("an arm needs at least one finished seed, got none")
    if all(exits):
        return "exits"
    return "stays" if not any(exits) else "mixed"


def seeds_for(exits_by_seed: dict[int, bool]) -> tuple[int, ...]:
    """The seeds an arm runs: 1 and 2, and 3 once those two are done and disagree."""
    first = [exits_by_seed[s] for s in FIRST_SEEDS if s in exits_by_seed]
    if len(first) == len(FIRST_SEEDS) and len(set(first)) == 2:
        return (*FIRST_SEEDS, TIEBREAK_SEED)
    return FIRST_SEEDS


def reading(name: str, exits: list[bool]) -> dict[str, Any]:
    """The pre-registered reading of arm ``name`` from its seeds' exits (in seed order):
    "exits in k of n seeds", the outcome, and what it says of the explanation it probes."""
    a = arm(name)
    result = outcome(exits)
    k, n = sum(exits), len(exits)
    if result == "mixed":
        verdict = "undecided"
    elif result == a.predicts:
        verdict = "supported" if n >= SUPPORTED_MIN_SEEDS else "consistent with"
    else:
        verdict = "against"
    return {
        "arm": name,
        "probes": a.probes,
        "predicts": a.predicts,
        "exits_in": f"exits in {k} of {n} seeds",
        "outcome": result,
        "verdict": verdict,
        "sentence": f"{name} ({a.why}) {'exits' if k else 'never exits'} in {k} of {n} seeds: "
        f"{verdict} the {a.probes.replace('_', ' ')} explanation"
        + (
            ""
            if verdict != "consistent with"
            else f" (exploratory; below {SUPPORTED_MIN_SEEDS} seeds no arm is called supported)"
        ),
    }
