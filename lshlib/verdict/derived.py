"""Every derived file of a scale, written in one place: the MLM unigram floor, the SQuAD lexical
baseline, the locality tables of trained models and the claims table (``claims.json``).

``python -m lshlib.verdict`` writes them after training, and ``python -m lshlib.verdict
--derived`` (what ``make figures`` runs before executing the notebooks) writes them without
training. Notebooks and the README only read them: a missing one is an error naming this
command (:func:`lshlib.safeio.read_derived`), never a silent computation.
"""

from __future__ import annotations

from pathlib import Path

from lshlib.experiments.baselines import LEXICAL_FILE, squad_test_scores
from lshlib.paths import results_dir
from lshlib.scales import get_scale
from lshlib.training.runs import UNIGRAM_FILE, unigram_floor
from lshlib.verdict import table
from lshlib.verdict.claims import CLAIMS_FILE
from lshlib.verdict.comparisons import locality_path, locality_table
from lshlib.verdict.planning import first_seed, plan

__all__ = ["locality_runs", "write_derived"]


def locality_runs(scale: str | None = None) -> dict[str, list]:
    """The runs whose locality notebook 06 shows: the first pretraining seed of each variant,
    and the first SST-2 seed of the two LSH variants."""
    runs = plan(scale)
    return {
        "pretraining": first_seed(runs["pretraining"]),
        "sst2": first_seed(runs["sst2"], ("lsh_paper", "lsh_masked")),
    }


def write_derived(scale: str | None = None) -> list[Path]:
    """Write every derived file of ``scale``; returns their paths. A locality table is
    computed from the run's model only when its cache is missing or stale."""
    scale = get_scale(scale)
    out = results_dir(scale, "cpu")
    unigram_floor(scale, save=True)
    squad_test_scores(scale, save=True)
    written = [out / UNIGRAM_FILE, out / LEXICAL_FILE]
    for configs in locality_runs(scale).values():
        locality_table(configs, scale, compute=True)
        written += [locality_path(c) for c in configs]
    table.write(scale)
    return [*written, results_dir(scale) / CLAIMS_FILE]
