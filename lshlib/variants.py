"""The names of the tasks and model variants, in a module that imports nothing heavy.

:mod:`lshlib.modeling` builds the models these names stand for; the command line
(:mod:`lshlib.training.cli`) offers them before torch and transformers are imported.
"""

from __future__ import annotations

TASKS: tuple[str, ...] = ("mlm", "sst2", "squad")
FINETUNE_TASKS: tuple[str, ...] = ("sst2", "squad")
VARIANTS: tuple[str, ...] = ("baseline", "lsh_paper", "lsh_masked")
# The attention controls: the paper's LSH with one thing changed (see lshlib.lsh.attention).
CONTROL_VARIANTS: tuple[str, ...] = (
    "random_paper",
    "random_masked",
    "lsh_paper_fixed",
    "lsh_paper_unmirrored",
)
# The random-pairs controls (LSHConfig.pairs == "random").
RANDOM_VARIANTS: tuple[str, ...] = ("random_paper", "random_masked")
# Masked LSH attention through the sparse bucketed kernel with 4 bits and plain signatures (the
# kernel's fastest setting, notebook 03): the long-sequence runs of the verdict.
LONG_VARIANTS: tuple[str, ...] = ("lsh_bucketed",)
ALL_VARIANTS: tuple[str, ...] = (*VARIANTS, *CONTROL_VARIANTS, *LONG_VARIANTS)
# The random-initialisation control of fine-tuning: the baseline model, no pretraining.
SCRATCH = "scratch"
FINETUNE_VARIANTS: tuple[str, ...] = (*VARIANTS, SCRATCH)
# Every variant a run may have: the main ones, scratch, and the attention controls.
RUN_VARIANTS: tuple[str, ...] = (*FINETUNE_VARIANTS, *CONTROL_VARIANTS, *LONG_VARIANTS)


def run_variants(task: str) -> tuple[str, ...]:
    """The variants a run of ``task`` may have (``scratch`` is fine-tuning only)."""
    return tuple(v for v in RUN_VARIANTS if not (task == "mlm" and v == SCRATCH))
