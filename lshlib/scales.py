"""Every per-scale table of the study, and the one scale setting, ``LSHLIB_SCALE``.

* ``smoke``: everything tiny, for CI and nbval.
* ``laptop`` (default): a real, reduced reproduction on a 2-core CPU.
* ``paper``: the paper's sizes (docs/paper.md#configuration), meant for a GPU.

What a scale means is read here, in one file: tokenizer size, Monte Carlo trials, analysis
sizes and every training run's data sizes and hyper-parameters. Other modules look their sizes
up with :func:`sizes` and never keep tables of their own.
"""

from __future__ import annotations

import os
from typing import Any, Literal

Scale = Literal["smoke", "laptop", "paper"]
SCALES: tuple[str, ...] = ("smoke", "laptop", "paper")
DEFAULT_SCALE: Scale = "laptop"
ENV_VAR = "LSHLIB_SCALE"


def check_scale(value: str) -> Scale:
    """Return ``value`` if it names a scale, else raise ``ValueError`` listing the valid ones."""
    if value not in SCALES:
        raise ValueError(
            f"unknown scale {value!r} (from {ENV_VAR} or an argument); "
            f"valid scales are: {', '.join(SCALES)}"
        )
    return value  # type: ignore[return-value]


def get_scale(scale: str | None = None) -> Scale:
    """The scale to use: ``scale`` if given, else ``$LSHLIB_SCALE``, else ``laptop``."""
    if scale is None:
        scale = os.environ.get(ENV_VAR, "").strip() or DEFAULT_SCALE
    return check_scale(scale)


# --------------------------------------------------------------------------- the tables

TOKENIZER: dict[str, dict[str, Any]] = {
    "smoke": {"vocab_size": 2000, "max_chars": 2_000_000},
    "laptop": {"vocab_size": 8000, "max_chars": None},
    "paper": {"vocab_size": 32000, "max_chars": None},
}
"""WordPiece vocabulary (the paper: 32,000) and how much of the corpus trains it."""

THEORY: dict[str, dict[str, Any]] = {
    "smoke": {"trials": 300},
    "laptop": {"trials": 3000},
    "paper": {"trials": 20000},
}
"""Monte Carlo trials per point when notebook 01 checks the closed form."""

ANALYSIS: dict[str, dict[str, Any]] = {
    "smoke": {"sentences": 4, "draws": 3},
    "laptop": {"sentences": 48, "draws": 20},
    "paper": {"sentences": 256, "draws": 50},
}
"""SST-2 sentences and hash draws for the attention experiments of notebook 02."""

DENSITY: dict[str, dict[str, Any]] = {
    "smoke": {"sentences": 4, "draws": 10},
    "laptop": {"sentences": 16, "draws": 40},
    "paper": {"sentences": 64, "draws": 100},
}
"""SST-2 sentences and hash draws for notebook 03's measured-density check."""

# Per scale and task: data sizes and hyper-parameters. ``paper`` follows docs/paper.md (run_mlm /
# run_glue / run_qa defaults where the paper says nothing). ``laptop`` is a reduced run for a
# 2-core CPU; ``smoke`` only checks the plumbing.
TRAINING: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "mlm": dict(
            max_length=64,
            max_train=128,
            max_eval=16,
            corpus_chars=1_000_000,
            epochs=1.0,
            batch_size=16,
            learning_rate=5e-4,
            weight_decay=0.0,
            warmup=0.1,
            logging_steps=2,
            eval_steps=4,
            save_steps=4,
        ),
        "sst2": dict(
            max_length=64,
            max_train=256,
            max_eval=64,
            max_test=128,
            epochs=1.0,
            batch_size=32,
            learning_rate=1e-4,
            weight_decay=0.01,
            warmup=0.1,
            logging_steps=2,
            eval_steps=4,
            save_steps=4,
        ),
        "squad": dict(
            max_length=128,
            doc_stride=32,
            max_train=32,
            max_eval=16,
            max_test=32,
            epochs=1.0,
            batch_size=16,
            learning_rate=1e-4,
            weight_decay=0.01,
            warmup=0.1,
            logging_steps=2,
            eval_steps=4,
            save_steps=4,
        ),
    },
    "laptop": {
        # Chosen in docs/laptop-tuning.md: the sparse MLM head trains 6.4M tokens (50k blocks)
        # in a few minutes on 2 idle cores; fine-tuning sees every training example.
        "mlm": dict(
            max_length=128,
            max_train=50_000,
            max_eval=256,
            epochs=1.0,
            batch_size=16,
            learning_rate=2e-3,
            weight_decay=0.0,
            warmup=0.05,
            logging_steps=50,
            eval_steps=500,
            save_steps=500,
        ),
        "sst2": dict(
            max_length=64,
            max_train=None,
            max_eval=1000,
            max_test=None,
            epochs=1.0,
            batch_size=32,
            learning_rate=5e-4,
            weight_decay=0.01,
            warmup=0.05,
            logging_steps=50,
            eval_steps=500,
            save_steps=500,
        ),
        "squad": dict(
            max_length=256,
            doc_stride=64,
            max_train=None,
            max_eval=200,
            max_test=800,
            epochs=2.0,
            batch_size=16,
            learning_rate=5e-4,
            weight_decay=0.01,
            warmup=0.05,
            logging_steps=50,
            eval_steps=200,
            save_steps=200,
        ),
    },
    "paper": {
        "mlm": dict(
            max_length=512,
            max_train=None,
            max_eval=None,
            max_test=None,
            epochs=3.0,
            batch_size=8,
            learning_rate=5e-5,
            weight_decay=0.0,
            warmup=0.0,
            logging_steps=500,
            eval_steps=5000,
            save_steps=5000,
        ),
        "sst2": dict(
            max_length=128,
            pad_to_max_length=True,
            max_train=None,
            max_eval=None,
            max_test=None,
            epochs=3.0,
            batch_size=32,
            learning_rate=2e-5,
            weight_decay=0.01,
            warmup=0.0,
            logging_steps=100,
            eval_steps=500,
            save_steps=500,
        ),
        "squad": dict(
            max_length=384,
            doc_stride=128,
            pad_to_max_length=True,
            max_train=None,
            max_eval=None,
            max_test=None,
            epochs=3.0,
            batch_size=32,
            learning_rate=2e-5,
            weight_decay=0.01,
            warmup=0.0,
            logging_steps=100,
            eval_steps=500,
            save_steps=500,
        ),
    },
}


# The verdict's run plan (notebook 06): seeds per group of runs (the first is the
# default runs' seed, so those are reused), and the sizes of the locality measurement. At the
# laptop scale the cuts apply: SQuAD keeps 2 seeds, and the attention controls are
# fine-tuned from the baseline's pretrained checkpoint instead of being pretrained themselves,
# and the density sweep of the masked mode (the first cut) is not run.
VERDICT: dict[str, dict[str, Any]] = {
    "smoke": dict(
        mlm_seeds=(42, 1),
        sst2_seeds=(42, 1),
        squad_seeds=(42, 1),
        control_seeds=(42, 1),
        locality_sentences=8,
        locality_draws=2,
    ),
    "laptop": dict(
        mlm_seeds=(42, 1, 2),
        sst2_seeds=(42, 1, 2, 3, 4),
        squad_seeds=(42, 1),
        control_seeds=(42, 1, 2),
        locality_sentences=128,
        locality_draws=16,
    ),
    "paper": dict(
        mlm_seeds=(42, 1, 2),
        sst2_seeds=(42, 1, 2, 3, 4),
        squad_seeds=(42, 1, 2),
        control_seeds=(42, 1, 2),
        locality_sentences=256,
        locality_draws=32,
    ),
}
# The verdict's long runs (``make long``; not part of ``make reproduce``): a plateau run of the
# baseline, lsh_paper and lsh_paper_fixed (several epochs over every block, at least 45 minutes
# each on 2 cores), and a long-sequence pretraining of the baseline (SDPA) and lsh_bucketed at
# the same token budget (laptop: 4,000 blocks of 2,048 tokens, 8.2M tokens, about 40 minutes for
# the pair on 2 cores; the baseline's 0.8 s per step is most of it). Overrides of the scale's
# MLM settings.
LONG: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "plateau": dict(max_train=None, epochs=2.0, eval_steps=8, save_steps=8),
        "long_sequence": dict(
            max_length=256, max_train=16, batch_size=2, eval_steps=4, save_steps=4, max_eval=4
        ),
    },
    "laptop": {
        "plateau": dict(
            max_train=None, epochs=5.0, logging_steps=100, eval_steps=2000, save_steps=2000
        ),
        "long_sequence": dict(
            max_length=2048,
            max_train=4000,
            batch_size=2,
            max_eval=16,
            logging_steps=20,
            eval_steps=250,
            save_steps=250,
        ),
    },
    "paper": {
        "plateau": dict(max_train=None, epochs=10.0),
        "long_sequence": dict(max_length=4096, max_train=None, batch_size=4, max_eval=64),
    },
}


# The plateau runs (lshlib.experiments.plateau, ``make plateau``): the laptop plateau schedule of
# LONG (5 epochs over every block, 25,700 steps at the laptop scale) stopped at ``stop_at`` (16,000
# at the laptop scale), evaluated every 500 steps on every held-out block with isolated evaluation
# and attention diagnostics; the seeds of each arm. The exit rule (lshlib.experiments.survival) is
# written in laptop steps; the smoke scale only checks the plumbing.
PLATEAU: dict[str, dict[str, Any]] = {
    "smoke": dict(
        settings=dict(
            max_train=None,
            epochs=2.0,
            eval_steps=4,
            save_steps=4,
            stop_at=12,
            isolated_eval=True,
            diagnostics=True,
        ),
        seeds={"baseline": (1,), "lsh_paper": (1,)},
        transfer_seeds=(1,),
        arms=False,
    ),
    "laptop": dict(
        settings=dict(
            max_train=None,
            epochs=5.0,
            logging_steps=100,
            eval_steps=500,
            save_steps=1000,
            max_eval=None,
            stop_at=16_000,
            isolated_eval=True,
            diagnostics=True,
        ),
        seeds={
            "baseline": (1, 2, 3, 4, 5),
            "lsh_paper": (1, 2, 3, 4, 5),
            "lsh_paper_fixed": (1, 2, 3),
        },
        transfer_seeds=(1, 2),
        arms=True,  # lshlib.experiments.mechanisms: queued behind the seeds above
    ),
    "paper": dict(
        settings=dict(max_train=None, epochs=10.0, isolated_eval=True, diagnostics=True),
        seeds={"baseline": (1, 2, 3, 4, 5), "lsh_paper": (1, 2, 3, 4, 5)},
        transfer_seeds=(1, 2),
        arms=False,
    ),
}


# The paper's fine-tuning settings (docs/paper.md#configuration), run beside ours as a control.
PAPER_FINETUNING: dict[str, Any] = dict(learning_rate=2e-5, epochs=3.0, batch_size=32, warmup=0.0)


TABLES: dict[str, dict[str, dict[str, Any]]] = {
    "tokenizer": TOKENIZER,
    "theory": THEORY,
    "analysis": ANALYSIS,
    "density": DENSITY,
    "verdict": VERDICT,
    "plateau": PLATEAU,
}


def sizes(table: str, scale: str | None = None) -> dict[str, Any]:
    """A copy of ``table``'s entry for ``scale`` (``LSHLIB_SCALE`` when ``None``).

    ``table`` is one of ``tokenizer``, ``theory``, ``analysis``, ``density`` or
    ``training/<task>`` (``mlm``, ``sst2``, ``squad``).
    """
    scale = get_scale(scale)
    if table.startswith("training/") and table[9:] in TRAINING[scale]:
        return dict(TRAINING[scale][table[9:]])
    if table not in TABLES:
        valid = [*TABLES, *(f"training/{t}" for t in TRAINING[scale])]
        raise ValueError(f"unknown table {table!r}; valid tables are: {', '.join(valid)}")
    return dict(TABLES[table][scale])
