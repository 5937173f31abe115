"""Training: run configurations, the Trainer runs, their scores and records.

Training: what a run is (:mod:`~lshlib.training.config`), what it reads
(:mod:`~lshlib.training.features`), how it trains and is scored (:mod:`~lshlib.training.jobs`,
:mod:`~lshlib.training.trainers`, :mod:`~lshlib.training.scoring`,
:mod:`~lshlib.training.diagnostics`), and the cached, resumable runs with their records
(:mod:`~lshlib.training.runs`, :mod:`~lshlib.training.records`,
:mod:`~lshlib.training.checkpoints`, :mod:`~lshlib.training.runlock`).

``python -m lshlib.training`` is the command line (:mod:`lshlib.training.__main__`, parsed by
:mod:`lshlib.training.cli` before torch loads). The names that ``lshlib.training`` offered as
one module (``run_config``, ``run``, ``load_record``, the variant names, ...) are still offered
here, each found in its submodule when first used.
"""

from lshlib import reexports

_NAMES = {
    "RANDOM_DENSITIES": "config",
    "MAX_LENGTH_RANGE": "config",
    "RunConfig": "config",
    "OPTIONAL_DEFAULTS": "config",
    "LR_SCHEDULES": "config",
    "PROBE_BLOCKS": "config",
    "run_config": "config",
    "RECORD_KEYS": "runs",
    "results_path": "runs",
    "run_dir": "runs",
    "load_record": "runs",
    "made_in_this_reproduce": "runs",
    "MissingRunError": "runs",
    "pretrained_saved": "runs",
    "pretrained_model_dir": "runs",
    "run": "runs",
    "lock_path": "runs",
    "run_lock": "runs",
    "quiet_bars": "runs",
    "UNIGRAM_FILE": "runs",
    "unigram_floor": "runs",
    "load_unigram_floor": "runs",
    "run_all": "runs",
    "CONTROL_VARIANTS": "config",
    "FINETUNE_TASKS": "config",
    "FINETUNE_VARIANTS": "config",
    "LONG_VARIANTS": "config",
    "RANDOM_VARIANTS": "config",
    "RUN_VARIANTS": "config",
    "SCRATCH": "config",
    "TASKS": "config",
    "VARIANTS": "config",
    "RunLockedError": "runlock",
}
__getattr__ = reexports(__name__, _NAMES)
