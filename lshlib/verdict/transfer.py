"""Does leaving the plateau help fine-tuning? The chained SST-2 runs of the plateau jobs, read with
the pretraining run as the unit, and the mechanism arms' readings.

Every plateau job (:mod:`lshlib.experiments.plateau`) fine-tunes its stopped model on SST-2 at once:
two fine-tuning seeds with the main settings, one with the paper's settings and, for an LSH variant,
one with its weights under full attention. Here each record is labelled by what it tests
(:func:`label`: the pretrained weights, the attention used in fine-tuning and the settings), the
fine-tuning seeds of one pretraining run are averaged (:func:`lshlib.verdict.compare`), and
pretraining runs pair by seed. The ``scratch`` control (no pretraining, from the verdict's plan)
is compared unpaired. The older rows, fine-tuned from plateau checkpoints after one epoch, stay in
the claims table labelled as such; these rows are the post-exit ones.
"""

from __future__ import annotations

from typing import Any

from lshlib import training
from lshlib.experiments import exits, mechanisms, plateau, survival
from lshlib.scales import PAPER_FINETUNING
from lshlib.verdict.comparisons import compare
from lshlib.verdict.planning import plan

__all__ = ["label", "transfer_records", "transfer_rows", "arm_readings", "squad_claim"]


def _paper_settings(config: dict) -> bool:
    return all(config.get(k) == v for k, v in PAPER_FINETUNING.items())


def label(record: dict) -> str:
    """What a chained record tests: ``<pretrained variant>`` (its own attention), ``<pretrained
    variant> weights, full attention`` (an LSH model fine-tuned as the baseline), with
    ``, paper settings`` when the paper's fine-tuning settings were used; ``scratch`` for none."""
    config = record["config"]
    made = record.get("pretrained_run", {}).get("config")
    if made is None:
        name = "scratch"
    elif made["variant"] != config["variant"]:
        name = f"{made['variant']} weights, full attention"
    else:
        name = made["variant"]
    return name + (", paper settings" if _paper_settings(config) else "")


def _relabelled(record: dict) -> dict:
    return {**record, "config": {**record["config"], "variant": label(record)}}


def transfer_records(scale: str | None = None) -> list[dict]:
    """The finished chained SST-2 records of the plateau jobs of the main arms, each relabelled
    by :func:`label` (its ``config.variant`` is the label)."""
    out = []
    for job in plateau.seed_jobs(scale):
        for config in job.transfer:
            record = training.load_record(config)
            if record is not None:
                out.append(_relabelled(record))
    return out


def _scratch(scale: str | None, paper_settings: bool) -> list[dict]:
    group = "paper_settings" if paper_settings else "sst2"
    configs = [c for c in plan(scale)[group] if c.variant == training.SCRATCH]
    found = [training.load_record(c) for c in configs]
    return [_relabelled(r) for r in found if r is not None]


def transfer_rows(scale: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Comparisons over pretraining runs (:func:`lshlib.verdict.compare`): ``main`` (the main
    settings, against the baseline's post-exit models, scratch beside), ``paper_settings``
    (likewise with the paper's settings) and ``full_attention`` (an LSH model's weights
    fine-tuned under full attention against the same weights with LSH attention); a group with
    no reference runs is empty."""
    records = transfer_records(scale)
    main = [r for r in records if not r["config"]["variant"].endswith("paper settings")]
    paper = [r for r in records if r["config"]["variant"].endswith("paper settings")]
    out: dict[str, list[dict[str, Any]]] = {"main": [], "paper_settings": [], "full_attention": []}
    own = [r for r in main if "full attention" not in r["config"]["variant"]]
    if any(r["config"]["variant"] == "baseline" for r in own):
        out["main"] = compare(own + _scratch(scale, False), "test_accuracy")
    if any(r["config"]["variant"] == "baseline, paper settings" for r in paper):
        out["paper_settings"] = compare(
            paper + _scratch(scale, True), "test_accuracy", reference="baseline, paper settings"
        )
    full = [r for r in main if r["config"]["variant"].startswith("lsh_paper")]
    if any(r["config"]["variant"] == "lsh_paper" for r in full) and len(full) > 1:
        out["full_attention"] = compare(
            [
                r
                for r in full
                if r["config"]["variant"] in ("lsh_paper", "lsh_paper weights, full attention")
            ],
            "test_accuracy",
            reference="lsh_paper",
        )
    return out


def arm_readings(scale: str | None = None) -> list[dict[str, Any]]:
    """Each mechanism arm with a finished seed: its exits by the pre-registered rule and the
    reading of :func:`lshlib.experiments.mechanisms.reading` (exploratory: outside the claims
    family)."""
    out = []
    for arm in mechanisms.ARMS:
        found = {}
        for seed in (*mechanisms.FIRST_SEEDS, mechanisms.TIEBREAK_SEED):
            record = training.load_record(plateau.arm_config(arm, seed, scale))
            if record is not None:
                found[seed] = exits.run_exit(record)
        if found:
            reading = mechanisms.reading(arm.name, [found[s].exited for s in sorted(found)])
            reading["km"] = survival.kaplan_meier(
                [e.step for e in found.values()], [e.exited for e in found.values()]
            )
            out.append(reading)
    return out


def squad_claim(records: list[dict], lexical_f1: float | None) -> dict[str, str] | None:
    """The SQuAD row from the records: at this scale every model's test F1 sits a few points
    above a lexical baseline, so the comparison is uninformative (no test, outside the family)."""
    if not records:
        return None
    f1 = [r["final"]["test_f1"] for r in records]
    lexical = "" if lexical_f1 is None else f" against {lexical_f1:.1f} for a lexical baseline"
    return {
        "measurement": f"SQuAD test F1 of every model, {len(f1)} runs: {min(f1):.1f} to "
        f"{max(f1):.1f} points{lexical}",
        "verdict": "uninformative at this scale: every model sits near the lexical floor",
    }
