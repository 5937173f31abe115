"""The plateau runs: does paper-mode LSH leave the MLM plateau where the baseline does not?

One *job* per pretraining run: an MLM run on the plateau schedule (:data:`lshlib.scales.PLATEAU`:
the long schedule stopped at ``stop_at``, evaluated every ``eval_steps`` on every held-out block
with isolated evaluation and attention diagnostics), then its chained SST-2 transfer, fine-tuned
from the stopped model at once, before the model can be lost:

* two fine-tuning seeds with the main settings, in the run's own attention;
* one with the paper's fine-tuning settings (:data:`lshlib.scales.PAPER_FINETUNING`);
* for an LSH variant, one more with its weights under full attention (the ``baseline`` variant).

Runs of one seed share initial weights, data order and MLM masks, so arms pair by seed. The
exit rule and the statistics that read these records are in :mod:`lshlib.experiments.survival`; the
runner that trains missing jobs from a pinned git worktree is :mod:`lshlib.verdict.runner`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lshlib import training
from lshlib.experiments import mechanisms, survival
from lshlib.scales import PAPER_FINETUNING, get_scale, sizes
from lshlib.training import RunConfig

__all__ = [
    "Job",
    "pretraining_config",
    "transfer_configs",
    "seed_jobs",
    "arm_config",
    "arm_jobs",
    "recorded_exit",
    "jobs",
    "job_by_name",
]


@dataclass(frozen=True)
class Job:
    """A plateau pretraining run and the SST-2 runs chained to it."""

    pretraining: RunConfig
    transfer: tuple[RunConfig, ...]

    @property
    def name(self) -> str:
        return self.pretraining.name

    @property
    def configs(self) -> tuple[RunConfig, ...]:
        return (self.pretraining, *self.transfer)


def pretraining_config(variant: str, seed: int, scale: str | None = None) -> RunConfig:
    """The plateau MLM run of ``variant`` and ``seed``."""
    settings = sizes("plateau", scale)["settings"]
    return training.run_config("mlm", variant, scale, seed, **settings)


def transfer_configs(mlm: RunConfig) -> tuple[RunConfig, ...]:
    """The SST-2 runs chained to the plateau run ``mlm`` (see the module)."""
    seeds = sizes("plateau", mlm.scale)["transfer_seeds"]
    common = dict(pretrained=mlm, isolated_eval=True)
    out = [training.run_config("sst2", mlm.variant, mlm.scale, s, **common) for s in seeds]
    out.append(
        training.run_config("sst2", mlm.variant, mlm.scale, seeds[0], **common, **PAPER_FINETUNING)
    )
    if mlm.variant != "baseline":
        out.append(training.run_config("sst2", "baseline", mlm.scale, seeds[0], **common))
    return tuple(out)


def seed_jobs(scale: str | None = None) -> list[Job]:
    """The plateau jobs of the main arms (baseline, lsh_paper, lsh_paper_fixed), seed by seed
    (seed 1 of every arm first), so that the first jobs to finish pair up."""
    scale = get_scale(scale)
    seeds = sizes("plateau", scale)["seeds"]
    order = sorted({s for arm in seeds.values() for s in arm})
    out = []
    for seed in order:
        for variant, arm in seeds.items():
            if seed in arm:
                mlm = pretraining_config(variant, seed, scale)
                out.append(Job(mlm, transfer_configs(mlm)))
    return out


def arm_config(arm: mechanisms.Arm, seed: int, scale: str | None = None) -> RunConfig:
    """The plateau MLM run of a mechanism arm (:data:`lshlib.experiments.mechanisms.ARMS`) and
    seed."""
    settings = {**sizes("plateau", scale)["settings"], **arm.settings}
    return training.run_config("mlm", arm.variant, scale, seed, **settings)


def recorded_exit(config: RunConfig) -> bool | None:
    """Whether ``config``'s finished run left the plateau by the pre-registered rule (``None``
    while it has no record)."""
    record = training.load_record(config)
    if record is None:
        return None
    return survival.exit_step(record["curves"]["eval"]).exited


def arm_jobs(scale: str | None = None) -> list[Job]:
    """The jobs of the mechanism arms, in :data:`lshlib.experiments.mechanisms.ARMS` order: seeds 1
    and 2 of each, then seed 3 of the arms whose seeds 1 and 2 disagree (once both are recorded)."""
    scale = get_scale(scale)
    if not sizes("plateau", scale)["arms"]:
        return []
    out = []
    for seeds_pass in (mechanisms.FIRST_SEEDS, (mechanisms.TIEBREAK_SEED,)):
        for arm in mechanisms.ARMS:
            exits = {s: recorded_exit(arm_config(arm, s, scale)) for s in mechanisms.FIRST_SEEDS}
            known = {s: e for s, e in exits.items() if e is not None}
            for seed in seeds_pass:
                if seed in mechanisms.seeds_for(known):
                    mlm = arm_config(arm, seed, scale)
                    out.append(Job(mlm, transfer_configs(mlm)))
    return out


def jobs(scale: str | None = None) -> list[Job]:
    """Every plateau job at ``scale``: the main arms' seeds first, then the mechanism arms."""
    return seed_jobs(scale) + arm_jobs(scale)


def job_by_name(name: str, scale: str | None = None) -> Job:
    """The job whose pretraining run is ``name``; the error lists the valid names."""
    found = {j.name: j for j in jobs(scale)}
    if name not in found:
        raise ValueError(f"no plateau job {name!r} at this scale; jobs: {', '.join(found)}")
    return found[name]
