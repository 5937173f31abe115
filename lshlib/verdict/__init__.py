"""The verdict: its run plan, comparisons, long runs, plateau runner and claims.

The verdict (notebook 06): its run plan (:mod:`~lshlib.verdict.planning`), the comparisons over its
records (:mod:`~lshlib.verdict.comparisons`), the long runs (:mod:`~lshlib.verdict.long`), the
plateau transfer readings (:mod:`~lshlib.verdict.transfer`), the plateau runner
(:mod:`~lshlib.verdict.runner`, ``make plateau``) and the claims table
(:mod:`~lshlib.verdict.claims`, ``claims.json``).

``python -m lshlib.verdict`` trains what the plan misses; the names ``lshlib.verdict`` offered as
one module are still offered here, each found in its submodule when first used.
"""

from lshlib import reexports

_NAMES = {
    "GROUPS": "planning",
    "MAIN": "planning",
    "plan": "planning",
    "WORKERS_ENV": "planning",
    "workers_from_env": "planning",
    "run_plan": "planning",
    "eta_line": "planning",
    "plan_records": "planning",
    "missing_line": "planning",
    "train_missing": "planning",
    "first_seed": "planning",
    "plan_summary": "planning",
    "recorded_training": "planning",
    "generalisation_gap": "comparisons",
    "seed_values": "comparisons",
    "unit_of": "comparisons",
    "unit_values": "comparisons",
    "compare": "comparisons",
    "CONTROL_PAIRS": "comparisons",
    "control_rows": "comparisons",
    "only": "comparisons",
    "row": "comparisons",
    "locality_path": "comparisons",
    "locality_table": "comparisons",
    "locality_summary": "comparisons",
    "PLATEAU_VARIANTS": "long",
    "long_plan": "long",
    "run_long": "long",
    "long_records": "long",
    "plateau_exit": "long",
    "plateau_summary": "long",
    "time_to_loss": "long",
    "final_smoothed_loss": "long",
    "long_missing": "long",
    "CLAIMS_FILE": "claims",
    "write_derived": "derived",
    "locality_runs": "derived",
    "save_claims": "claims",
    "load_claims": "claims",
    "load_claims_file": "claims",
}
__getattr__ = reexports(__name__, _NAMES)
