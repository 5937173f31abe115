"""The verdict's runs (notebook 06): every seed and control, as one cached plan.

:func:`plan` lists the run configurations of each group at a scale (seeds from
:data:`lshlib.scales.VERDICT`):

* ``pretraining``: MLM of the three variants, one run per pretraining seed;
* ``sst2`` and ``squad``: the three variants and the ``scratch`` control, one run per fine-tuning
  seed, each starting from its variant's pretraining run of the seed at the same position
  (cycling when there are more fine-tuning seeds than pretraining seeds);
* ``controls``: SST-2 fine-tuning of the LSH variants and the attention controls
  (:data:`lshlib.modeling.CONTROL_VARIANTS`), all from the *baseline's* pretrained checkpoint, so
  only the attention used in fine-tuning differs;
* ``paper_settings``: SST-2 with the paper's fine-tuning settings
  (:data:`lshlib.scales.PAPER_FINETUNING`) for the baseline, ``lsh_paper`` and ``scratch``.

:func:`run_plan` runs what is missing (each run cached and resumable like any other) and returns
the records; :func:`seed_values` and :func:`compare` turn them into per-seed metrics and paired
differences with intervals (:mod:`lshlib.stats`).
"""

from __future__ import annotations

import argparse
import functools
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import torch
from tqdm.std import tqdm

from lshlib import safeio, scoring, stats, training, wallclock
from lshlib.locality import trained_locality
from lshlib.measure import machine_info
from lshlib.modeling import CONTROL_VARIANTS, VARIANTS, load_model
from lshlib.paths import results_dir
from lshlib.scales import LONG, PAPER_FINETUNING, SCALES, get_scale, sizes
from lshlib.training import SCRATCH, RunConfig

__all__ = [
    "GROUPS",
    "CONTROL_PAIRS",
    "plan",
    "plan_summary",
    "recorded_training",
    "run_plan",
    "train_missing",
    "seed_values",
    "compare",
    "generalisation_gap",
    "control_rows",
    "locality_table",
    "locality_path",
    "long_plan",
    "run_long",
    "long_records",
    "plateau_exit",
    "time_to_loss",
    "final_smoothed_loss",
    "first_seed",
    "only",
    "row",
    "long_missing",
    "plateau_summary",
    "locality_summary",
    "save_claims",
    "load_claims",
    "load_claims_file",
]

GROUPS = ("pretraining", "sst2", "squad", "controls", "paper_settings")
MAIN = (*VARIANTS, SCRATCH)


def _finetune(task: str, variants: Iterable[str], seeds, mlm_seeds, scale: str, source=None,
              **overrides) -> list[RunConfig]:  # fmt: skip
    """Fine-tuning runs; ``source`` names the variant whose pretraining run they start from
    (``None``: their own variant's)."""
    configs = []
    for i, seed in enumerate(seeds):
        mlm_seed = mlm_seeds[i % len(mlm_seeds)]
        for variant in variants:
            extra = dict(overrides)
            if variant != SCRATCH:
                pretrained = training.run_config("mlm", source or variant, scale, mlm_seed)
                extra["pretrained"] = pretrained.name
            configs.append(training.run_config(task, variant, scale, seed, **extra))
    return configs


def plan(scale: str | None = None) -> dict[str, list[RunConfig]]:
    """Every run of the verdict at ``scale``, by group (see the module)."""
    scale = get_scale(scale)
    v = sizes("verdict", scale)
    mlm = [training.run_config("mlm", var, scale, s) for s in v["mlm_seeds"] for var in VARIANTS]
    controls = ("lsh_paper", "lsh_masked", *CONTROL_VARIANTS)
    return {
        "pretraining": mlm,
        "sst2": _finetune("sst2", MAIN, v["sst2_seeds"], v["mlm_seeds"], scale),
        "squad": _finetune("squad", MAIN, v["squad_seeds"], v["mlm_seeds"], scale),
        "controls": _finetune(
            "sst2", controls, v["control_seeds"], v["mlm_seeds"], scale, source="baseline"
        ),  # fmt: skip
        "paper_settings": _finetune(
            "sst2",
            ("baseline", "lsh_paper", SCRATCH),
            v["control_seeds"],
            v["mlm_seeds"],
            scale,
            **PAPER_FINETUNING,
        ),  # fmt: skip
    }


WORKERS_ENV = "LSHLIB_WORKERS"


def workers_from_env() -> int:
    """``$LSHLIB_WORKERS`` (default 1): how many fine-tuning runs :func:`run_plan` trains at
    once."""
    raw = os.environ.get(WORKERS_ENV, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{WORKERS_ENV} must be an integer >= 1, got {raw!r}")
    return int(raw)


def _worker_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def run_plan(
    scale: str | None = None,
    groups: Iterable[str] = GROUPS,
    progress: bool = True,
    workers: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Run (or reuse) every run of ``groups``; returns ``{group: [record, ...]}`` in plan order.

    With one worker the runs go one at a time, the pretraining runs the groups need first. With
    ``workers`` > 1 (default :func:`workers_from_env`) the missing runs, pretraining included,
    are trained by that many processes at once, each with an equal share of the CPU threads
    (:func:`train_missing`): on this study's 2-core machine two 1-thread runs did about 1.4
    (SQuAD) to 1.5 (MLM) times the work of one 2-thread run (BERT-tiny's small matrices use a
    second thread poorly). Their records then time 1-thread runs."""
    groups = list(groups)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; valid groups: {', '.join(GROUPS)}")
    workers = workers_from_env() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    runs = plan(scale)
    todo = [(g, c) for g in GROUPS if g in groups for c in runs[g]]
    needed = {c.pretrained for _, c in todo} | {c.name for g, c in todo if g == "pretraining"}
    ordered = [c for c in runs["pretraining"] if c.name in needed]
    ordered += [c for _, c in todo if c.task != "mlm"]
    done: dict[str, dict] = {}
    if progress:
        print(eta_line(ordered, workers), flush=True)
    # a text bar (a notebook widget is saved stuck at 0%); its last state is the saved line
    bar = tqdm(total=len(ordered), desc="verdict runs", disable=not progress, unit="run",
               mininterval=10)  # fmt: skip
    serial = (
        ordered
        if workers == 1
        else [c for c in ordered if training.load_record(c, quarantine=True)]
    )
    for config in serial:
        bar.set_postfix_str(config.name, refresh=False)
        done[config.name] = training.run(config, progress=False, chain=True)
        wallclock.heartbeat(config.name, scale=scale)  # a no-op outside make reproduce
        bar.update()
    missing = [c for c in ordered if c.name not in done]
    if missing:
        threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, context, _worker_threads, (threads,)) as pool:
            done.update(train_missing(missing, pool, workers, bar))
    bar.close()
    records: dict[str, list[dict[str, Any]]] = {g: [] for g in groups}
    for group, config in todo:
        records[group].append(done[config.name])
    return records


def eta_line(configs: list[RunConfig], workers: int = 1) -> str:
    """How long the missing runs of ``configs`` should take here: each run's seconds from like
    records of this machine (:func:`lshlib.runner.estimate_run_seconds`), summed and shared
    among ``workers`` (an estimate, said as one)."""
    from lshlib.measure import cpu_model
    from lshlib.runner import estimate_run_seconds, finished_records

    if not configs:
        return "nothing to train"
    records, cpu = finished_records(results_dir(configs[0].scale, "cpu")), cpu_model()
    missing = [c for c in configs if training.load_record(c) is None]
    if not missing:
        return f"all {len(configs)} runs finished earlier: nothing to train"
    seconds, unknown = 0.0, 0
    for config in missing:
        try:
            seconds += estimate_run_seconds(config, records, cpu)
        except LookupError:
            unknown += 1
    said = f"{len(missing)} of {len(configs)} runs to train, about {seconds / 60 / workers:.0f} "
    said += f"min with {workers} worker{'s' if workers > 1 else ''} (from this machine's records)"
    return said + (f"; {unknown} runs have no like record to go by" if unknown else "")


def plan_records(scale: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The finished records of every group of the plan, in plan order, read only: missing runs
    are left out (:func:`missing_line` names them; ``make reproduce`` or ``python -m
    lshlib.verdict`` trains them). What a notebook calls: it never starts a run."""
    out: dict[str, list[dict[str, Any]]] = {}
    for group, configs in plan(scale).items():
        out[group] = [r for r in map(training.load_record, configs) if r is not None]
    return out


def missing_line(scale: str | None = None) -> str:
    """Which runs of the plan have no record yet, in one line."""
    missing = [c.name for cs in plan(scale).values() for c in cs if training.load_record(c) is None]
    if not missing:
        return "every run of the plan has a record"
    return (f"{len(missing)} runs of the plan have no record yet (python -m lshlib.verdict trains "
            f"them): {', '.join(missing)}")  # fmt: skip


def train_missing(
    configs: list[RunConfig], pool: Executor, workers: int, bar: tqdm | None = None
) -> dict[str, dict]:
    """Train ``configs`` (pretraining runs listed before the runs that start from them) on
    ``pool``, ``workers`` at a time, and return ``{name: record}``.

    A fine-tuning run starts once its pretrained model is saved, so fine-tuning fills a worker
    that the last pretraining runs leave idle. A run whose pretraining run is neither in
    ``configs`` nor saved makes it itself (``chain``); two such runs of one pretraining run never
    start together, so no two processes ever train one run."""
    pending, out = list(configs), {}
    running: dict[Future, tuple[RunConfig, str | None]] = {}  # and the pretraining run it trains

    def trains(config: RunConfig) -> str | None:
        if config.task == "mlm":
            return config.name
        saved = config.pretrained is None or training.pretrained_saved(config)
        return None if saved else config.pretrained

    def blocked(config: RunConfig) -> bool:
        need = trains(config) if config.task != "mlm" else None
        made = {m for _, m in running.values()}
        return need is not None and (need in made or any(c.name == need for c in pending))

    while pending or running:
        for config in list(pending):  # one at a time: a start can block the next candidate
            if len(running) < workers and not blocked(config):
                pending.remove(config)
                future = pool.submit(training.run, config, progress=False, chain=True)
                running[future] = (config, trains(config))
        if not running:
            raise RuntimeError(f"runs that can never start: {[c.name for c in pending]}")
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            config, _ = running.pop(future)
            out[config.name] = future.result()
            wallclock.heartbeat(config.name, scale=getattr(config, "scale", None))
            if bar is not None:
                bar.set_postfix_str(config.name, refresh=False)
                bar.update()
    return out


Metric = str | Callable[[dict], float]


def generalisation_gap(record: dict) -> float:
    """Validation loss minus the last training loss: how much worse held-out data fares."""
    return record["final"]["validation_loss"] - record["final"]["train_loss_last"]


def seed_values(records: list[dict], metric: Metric) -> dict[str, dict[int, float]]:
    """``{variant: {seed: value}}`` from a group's records; ``metric`` names a key of a record's
    ``final`` metrics or is a function of the record (:func:`generalisation_gap`)."""
    out: dict[str, dict[int, float]] = {}
    for record in records:
        config = record["config"]
        value = metric(record) if callable(metric) else record["final"][metric]
        out.setdefault(config["variant"], {})[config["seed"]] = value
    return out


def _examples(record: dict, key: str) -> list[float] | None:
    """The record's own per-example scores (draw 0, :mod:`lshlib.scoring`), or ``None`` for an
    older record that holds none: no model is ever reloaded to re-score it."""
    try:
        return scoring.examples_of(record).get(key)
    except KeyError:
        return None


@functools.lru_cache(maxsize=8)
def _pretraining_configs(scale: str) -> dict[str, dict]:
    """The configurations of every pretraining run a plan names, by run name."""
    configs = [*plan(scale)["pretraining"], *long_plan(scale)["plateau"]]
    return {c.name: c.to_dict() for c in configs}


def unit_of(record: dict) -> tuple[str, int]:
    """The independent unit a record belongs to and the seed that pairs it: a fine-tuning run
    that starts from a pretrained model belongs to that pretraining run (its fine-tuning seeds are
    not independent of each other for a claim about pretraining); any other run (MLM, scratch) is
    its own unit. The pretraining run's identity comes from its configuration (the record's
    ``pretrained_run`` or the plan's), never from parsing its name."""
    config = record["config"]
    if config["task"] == "mlm" or config.get("pretrained") is None:
        return ("run", int(config["seed"]))
    made = record.get("pretrained_run", {}).get("config")
    if made is None:
        made = _pretraining_configs(config["scale"]).get(config["pretrained"])
    if made is None:
        raise ValueError(
            f"record {record.get('name')!r}: its pretraining run {config['pretrained']!r} is in "
            "no plan and the record does not carry its configuration"
        )
    return ("pretraining run", int(made["seed"]))


def unit_values(records: list[dict], metric: Metric) -> dict[str, dict[int, list[float]]]:
    """``{variant: {unit seed: [value per run of that unit]}}`` (:func:`unit_of`)."""
    out: dict[str, dict[int, list[float]]] = {}
    for record in records:
        value = metric(record) if callable(metric) else record["final"][metric]
        out.setdefault(record["config"]["variant"], {}).setdefault(unit_of(record)[1], []).append(
            value
        )
    return out


def _units_said(records: list[dict], variant: str) -> tuple[str, str]:
    mine = [r for r in records if r["config"]["variant"] == variant]
    kind = unit_of(mine[0])[0]
    per_unit: dict[int, int] = {}
    for r in mine:
        per_unit[unit_of(r)[1]] = per_unit.get(unit_of(r)[1], 0) + 1
    units = len(per_unit)
    if kind == "pretraining run":
        most = max(per_unit.values())
        runs = f"{units} pretraining runs" + (f" x {len(mine)} fine-tuning seeds" if most > 1
                                               else ", one fine-tuning seed each")  # fmt: skip
        return kind, runs
    return kind, f"{units} runs"


def compare(
    records: list[dict], metric: Metric, reference: str = "baseline", example_key: str | None = None
) -> list[dict[str, Any]]:
    """One row per variant: the mean and spread of ``metric`` over its independent units
    (:func:`unit_of`: pretraining runs for fine-tuning from a pretrained model, where fine-tuning
    seeds of one pretraining run are averaged first), and against ``reference`` the difference
    with its 95% interval and two-sided p: a paired t over units of the same kind and seed
    (shared initial weights, data order and masks; df = units - 1), Welch's t otherwise (e.g.
    ``scratch`` against a pretrained model). With ``example_key`` (``correct``, ``f1``) and
    records that hold per-example predictions, a paired bootstrap over the test examples of the
    first shared unit's first runs; older records hold none, and nothing is re-scored."""
    values = unit_values(records, metric)
    if reference not in values:
        raise ValueError(f"reference {reference!r} has no runs; variants: {sorted(values)}")
    means = {v: {u: sum(xs) / len(xs) for u, xs in units.items()} for v, units in values.items()}
    rows = []
    for variant, units in means.items():
        kind, said = _units_said(records, variant)
        row: dict[str, Any] = {"variant": variant, **stats.seed_summary(list(units.values())),
                               "unit": kind, "n_desc": said}  # fmt: skip
        if variant != reference:
            ref_kind, ref_said = _units_said(records, reference)
            row["n_compared"] = said if kind == ref_kind else f"{said} against {ref_said}"
            if kind == ref_kind:
                diff = stats.paired_seed_difference(units, means[reference])
                row["test"] = f"paired t over {kind}s"
            else:
                a, b = list(units.values()), list(means[reference].values())
                if min(len(a), len(b)) < 2:  # no spread on one side: the difference alone
                    mean = sum(a) / len(a) - sum(b) / len(b)
                    diff = {"mean": mean, "low": math.nan, "high": math.nan, "p": math.nan}
                else:
                    diff = stats.welch_difference(a, b)
                row["test"] = "Welch t (unpaired: nothing shared but the seed number)"
            row.update({f"diff_{k}": diff[k] for k in ("mean", "low", "high")})
            row["p"] = diff.get("p", math.nan)
            row["seeds_say"] = stats.in_words(diff["low"], diff["high"])
            shared = [u for u in units if u in means[reference]]
            if example_key and shared and kind == ref_kind:
                first = {r["config"]["variant"]: r for r in records
                         if unit_of(r)[1] == shared[0]}  # fmt: skip
                a = _examples(first.get(variant, {}), example_key) if variant in first else None
                b = _examples(first[reference], example_key) if reference in first else None
                if a is not None and b is not None:
                    boot = stats.paired_bootstrap(a, b)
                    row.update({"boot_low": boot["low"], "boot_high": boot["high"]})
        rows.append(row)
    return rows


# Each control against the variant it changes one thing of (:data:`lshlib.modeling`).
CONTROL_PAIRS = (
    ("random_paper", "lsh_paper", "locality (random pairs of the same density)"),
    ("random_masked", "lsh_masked", "locality, masked mode"),
    ("lsh_paper_fixed", "lsh_paper", "hashes redrawn at every call (vs fixed)"),
    ("lsh_paper_unmirrored", "lsh_paper", "mirrored scores (vs each pair as itself)"),
    ("lsh_masked", "lsh_paper", "zero scores (paper) vs exclusion (masked)"),
)


def control_rows(records: list[dict], metric: Metric = "test_accuracy") -> list[dict[str, Any]]:
    """Each control minus the variant it departs from (:data:`CONTROL_PAIRS`), paired over
    seeds, on the ``controls`` group (every run fine-tuned from the baseline's checkpoint)."""
    rows = []
    for control, reference, what in CONTROL_PAIRS:
        pair = [r for r in records if r["config"]["variant"] in (control, reference)]
        found = {r["config"]["variant"] for r in pair}
        if found != {control, reference}:
            continue
        row = next(r for r in compare(pair, metric, reference) if r["variant"] == control)
        rows.append({"control": control, "against": reference, "tests": what, **row})
    return rows


def first_seed(configs: list[RunConfig], variants: Iterable[str] | None = None) -> list:
    """The configs of the first seed of a group (of ``variants`` only, when given)."""
    keep = None if variants is None else set(variants)
    return [c for c in configs if c.seed == configs[0].seed and (keep is None or c.variant in keep)]


def only(records: list[dict], variants: Iterable[str]) -> list[dict]:
    """The records of ``variants``."""
    keep = set(variants)
    return [r for r in records if r["config"]["variant"] in keep]


def row(rows: list[dict], variant: str) -> dict:
    """The row of ``variant`` among :func:`compare` or :func:`locality_summary` rows."""
    found = [r for r in rows if r.get("variant") == variant]
    if not found:
        raise ValueError(f"no row for {variant!r}; variants: {[r.get('variant') for r in rows]}")
    return found[0]


def plan_summary(runs: dict[str, list[RunConfig]]) -> list[dict[str, Any]]:
    """One row per group: its task, variants, seeds and number of runs."""
    return [
        {
            "group": group,
            "task": ", ".join(sorted({c.task for c in configs})),
            "variants": ", ".join(dict.fromkeys(c.variant for c in configs)),
            "seeds": ", ".join(str(s) for s in dict.fromkeys(c.seed for c in configs)),
            "runs": len(configs),
        }
        for group, configs in runs.items()
    ]


def recorded_training(scale: str | None = None) -> dict[str, Any]:
    """The training wall-clock recorded by the finished runs of the plan (what ``make
    reproduce`` retrains), in minutes per number of CPU threads they ran on, with ``runs`` (how
    many have a record) and ``planned``. 1-thread runs were trained two at a time, 2-thread runs
    alone, so ``minutes[2] + minutes[1] / 2`` is how long those runs took as they were made."""
    configs = {c.name: c for group in plan(scale).values() for c in group}
    minutes: dict[int, float] = {}
    records = [r for r in map(training.load_record, configs.values()) if r is not None]
    for r in records:
        threads = int(r["device"].get("threads", 0))
        minutes[threads] = minutes.get(threads, 0.0) + r["train_seconds"] / 60
    return {"minutes": minutes, "runs": len(records), "planned": len(configs)}


def locality_path(config: RunConfig) -> Path:
    """Where :func:`locality_table` caches the rows of ``config``'s run."""
    return results_dir(config.scale) / "locality" / f"{config.name}.json"


def locality_table(configs: Iterable[RunConfig], scale: str | None = None) -> list[dict]:
    """:func:`lshlib.locality.trained_locality` of each finished run's final model (sizes from
    the ``verdict`` table), one row per (run, layer, head). Each run's rows are cached in
    ``results/<scale>/locality/<run>.json`` with the sizes and the record's ``finished_at``,
    so notebook 06 re-executes from committed results without the models."""
    v = sizes("verdict", scale)
    key = {"sentences": v["locality_sentences"], "draws": v["locality_draws"]}
    rows = []
    for config in configs:
        path = locality_path(config)
        stamp = (training.load_record(config) or {}).get("finished_at")
        cached = safeio.load_json_dict(path)
        if cached and cached.get("key") == key and cached.get("finished") == stamp:
            rows += cached["rows"]
            continue
        final = training.run_dir(config) / "final"
        if not (final / "config.json").is_file():
            raise FileNotFoundError(
                f"run {config.name} has no final model under {final.parent} and no cached "
                f"locality rows at {path}; train it first (python -m lshlib.verdict)"
            )
        with training.quiet_bars():
            model = load_model(final, config.task)
        mine = [
            {"variant": config.variant, "seed": config.seed, **row}
            for row in trained_locality(model, key["sentences"], key["draws"], scale=scale)
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        safeio.atomic_write_json(path, {"run": config.name, "finished": stamp, "key": key,
                                        "rows": mine}, indent=1)  # fmt: skip
        rows += mine
    return rows


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


def locality_summary(rows: list[dict]) -> list[dict[str, Any]]:
    """:func:`locality_table` rows averaged over layers, heads and seeds, one row per variant
    (plain means: every head of every layer counts the same)."""
    by_variant: dict[str, list[dict]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row)
    keys = [k for k in rows[0] if k not in ("variant", "seed", "layer", "head")] if rows else []
    return [
        {"variant": v, **{k: sum(r[k] for r in rs) / len(rs) for k in keys}}
        for v, rs in by_variant.items()
    ]


CLAIMS_FILE = "claims.json"


def _device_name(device: dict) -> str:
    if device.get("type") == "cuda" or device.get("model"):
        return str(device.get("model") or device["name"])
    return f"{device.get('name', '?')} CPU (model not recorded)"


def save_claims(
    rows: list[dict[str, str]], scale: str | None = None, records: dict | None = None
) -> None:
    """Write the claims table to ``results/<scale>[-<device>]/claims.json`` (the README reads
    the CPU laptop one), with the machine that wrote it and, given the plan's ``records``, how
    many distinct runs it rests on, the devices they name and their training wall-clock."""
    done = {r["name"]: r for group in (records or {}).values() for r in group}.values()
    devices = {_device_name(r["device"]) for r in done}
    safeio.atomic_write_json(
        results_dir(scale) / CLAIMS_FILE,
        {"scale": get_scale(scale), "machine": machine_info(), "runs": len(done),
         "run_devices": sorted(devices),
         "train_minutes": sum(r["train_seconds"] for r in done) / 60, "claims": rows},
        indent=1,
    )  # fmt: skip


def load_claims_file(scale: str | None = None, device: str | None = None) -> dict | None:
    """The whole saved claims file (machine, runs, claims), or ``None``."""
    return safeio.load_json_dict(results_dir(scale, device) / CLAIMS_FILE)


def load_claims(scale: str | None = None, device: str | None = None) -> list[dict] | None:
    """The saved claims table, or ``None`` when notebook 06 has not written one."""
    data = load_claims_file(scale, device)
    return None if data is None else data["claims"]


def main(argv: list[str] | None = None) -> None:
    """``python -m lshlib.verdict [--scale S] [--long]``: run the verdict's plan (or the long
    runs) from the command line, as ``make long`` does."""
    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--scale", default=None, choices=SCALES)
    parser.add_argument("--long", action="store_true", help="the plateau and long-sequence runs")
    args = parser.parse_args(argv)
    if args.long:
        run_long(args.scale)
    else:
        run_plan(args.scale)


if __name__ == "__main__":
    main()
