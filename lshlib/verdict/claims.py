"""The claims table's rows as a named type, its one multiplicity family, and the words a verdict
may use.

Fixed in code before the re-analysis (and never chosen per result): every claims-table row that
carries a test is one member of :data:`FAMILY`; their p-values are adjusted together by Holm's
method (:func:`lshlib.experiments.stats.holm`) over the whole family (a member whose runs are
missing counts as p = 1), and a row's verdict follows its *adjusted* p. Rows outside the
family (the compute claim, a claim "not testable" at this scale) keep their own words; notebook
comparisons and the mechanism arms are exploratory and never enter it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lshlib import safeio
from lshlib.bench.measure import machine_info
from lshlib.experiments import stats
from lshlib.paths import results_dir
from lshlib.scales import get_scale

__all__ = [
    "ALPHA",
    "CLAIMS_FILE",
    "FAMILY",
    "Claim",
    "verdict_words",
    "adjust",
    "holm_with",
    "save_claims",
    "load_claims",
    "load_claims_file",
]

ALPHA = 0.05
FAMILY: tuple[str, ...] = (
    "pretraining",
    "sst2",
    "squad",
    "pretraining_helps",
    "pretraining_helps_paper_settings",
    "locality",
    "plateau",
    "sst2_long",
    "pretraining_helps_long",
)


@dataclass
class Claim:
    """One claims-table row: the claim, the paper's evidence, our measurement, its unit and n,
    the test with its p (and Holm-adjusted p), the interval, and the verdict."""

    key: str
    claim: str
    evidence: str
    measurement: str
    verdict: str = ""
    unit: str = ""
    n: str = ""
    test: str = ""
    p: float | None = None
    interval: tuple[float, float] | None = None
    estimate: float | None = None
    sign: int = 1  # the claim says the difference is positive (+1) or negative (-1)
    paper_effect: float | None = None  # the paper's own difference, where it reports one
    scope: str = ""  # what the measurement's length is, for an equivalence statement
    # what the interval is of, when not of the tested quantity: it is then descriptive only, and
    # the verdict says so rather than read it as a second test
    interval_of: str = ""
    p_holm: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def in_family(self) -> bool:
        """A member of the multiplicity family: its key is in :data:`FAMILY` and it has a p."""
        return self.key in FAMILY and self.p is not None and not math.isnan(self.p)

    def to_dict(self) -> dict[str, Any]:
        """The row as ``claims.json`` stores it (the four original keys first)."""
        return {
            "claim": self.claim,
            "paper's evidence": self.evidence,
            "our measurement": self.measurement,
            "verdict": self.verdict,
            "key": self.key,
            "unit": self.unit,
            "n": self.n,
            "test": self.test,
            "p": _finite_or_none(self.p),
            "p_holm": self.p_holm,
            "interval": [_finite_or_none(v) for v in self.interval] if self.interval else None,
            "family": self.in_family,
        }


def _finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: a missing number is null."""
    return None if value is None or not math.isfinite(value) else float(value)


def verdict_words(claim: Claim) -> str:
    """The verdict of a family member from its Holm-adjusted p, the sign of its estimate, and,
    when the difference is within noise, whether its interval rules out the paper's effect."""
    if claim.p_holm is None or claim.estimate is None:
        raise ValueError(f"claim {claim.key!r} has no adjusted p or estimate to judge")
    said = f"Holm-adjusted p = {claim.p_holm:.3g}"
    if claim.p_holm < ALPHA:
        if claim.estimate * claim.sign > 0:
            return f"supported ({said})"
        return f"not supported: the opposite holds ({said})"
    low, high = claim.interval or (math.nan, math.nan)
    excludes_zero = not math.isnan(low) and (low > 0 or high < 0)
    if excludes_zero and claim.interval_of:  # an interval of another quantity: descriptive
        words = (
            f"inconclusive: {said} does not pass {ALPHA} (the descriptive 95% interval of "
            f"{claim.interval_of} excludes 0, but it is not the test)"
        )
    elif excludes_zero:  # the interval alone would say more
        words = (
            f"inconclusive after the family's adjustment: the unadjusted 95% interval "
            f"excludes 0, but {said} does not pass {ALPHA}"
        )
    else:
        words = f"inconclusive: within noise ({said})"
    effect = claim.paper_effect
    if effect is not None and not math.isnan(low) and not low <= effect <= high:
        words += (
            f"; the interval rules out a difference as large as the paper's "
            f"({effect:+.4f}){' ' + claim.scope if claim.scope else ''}"
        )
    return words


def adjust(claims: list[Claim]) -> list[Claim]:
    """Holm-adjust the p-values of the family's members (rows of :data:`FAMILY` that carry a p)
    and set their verdicts (:func:`verdict_words`); other rows are left as they are."""
    members = [c for c in claims if c.in_family]
    if not members:
        return claims
    adjusted = _holm_family({c.key: c.p for c in members})
    for claim in members:
        claim.p_holm = adjusted[claim.key]
        claim.verdict = verdict_words(claim)
    return claims


def _holm_family(ps: dict[str, float]) -> dict[str, float]:
    """Holm-adjusted p of each member in ``ps`` (key: p). The family is fixed: a member without
    a test yet (its runs missing) counts as p = 1, so a missing row never makes the adjustment of
    the others less strict."""
    keys = list(ps)
    adjusted = stats.holm([ps[k] for k in keys] + [1.0] * (len(FAMILY) - len(keys)))
    return dict(zip(keys, adjusted, strict=False))


def holm_with(rows: Sequence[dict], key: str, p: float) -> float:
    """The Holm-adjusted p that family member ``key`` would get if its p were ``p``, every other
    member's p as the saved claims rows (``claims.json``) hold it and absent members at p = 1, as
    in :func:`adjust`: for a projection ("what would the plan's best case give?"), never a
    verdict."""
    if key not in FAMILY:
        raise ValueError(f"key must be one of the family {FAMILY}, got {key!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    ps = {r["key"]: r["p"] for r in rows if r.get("family") and r["key"] != key}
    return _holm_family({**ps, key: p})[key]


# --------------------------------------------------------------------------- claims.json


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
        {
            "scale": get_scale(scale),
            "machine": machine_info(),
            "runs": len(done),
            "run_devices": sorted(devices),
            "train_minutes": sum(r["train_seconds"] for r in done) / 60,
            "claims": rows,
        },
        indent=1,
    )


def load_claims_file(scale: str | None = None, device: str | None = None) -> dict | None:
    """The whole saved claims file (machine, runs, claims), or ``None`` when there is none; read
    only (a corrupt file raises :class:`lshlib.safeio.DerivedFileError`, nothing is moved)."""
    path = results_dir(scale, device) / CLAIMS_FILE
    return safeio.read_derived(path) if path.is_file() else None


def load_claims(
    scale: str | None = None, device: str | None = None, required: bool = False
) -> list[dict] | None:
    """The saved claims table, or ``None`` when ``python -m lshlib.verdict`` has not written one
    (with ``required``, a :class:`lshlib.safeio.DerivedFileError` naming that command)."""
    data = load_claims_file(scale, device)
    if data is None and required:
        raise safeio.DerivedFileError(
            f"{results_dir(scale, device) / CLAIMS_FILE} is missing; {safeio.DERIVED_BY} writes it"
        )
    return None if data is None else data["claims"]
