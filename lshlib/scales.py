"""The one scale setting, ``LSHLIB_SCALE``, read in one place.

* ``smoke``: everything tiny, for CI and nbval.
* ``laptop`` (default): a real, reduced reproduction on a 2-core CPU.
* ``paper``: the paper's sizes, meant for a GPU.

Modules that need sizes keep their own per-scale tables and look them up with :func:`get_scale`.
"""

from __future__ import annotations

import os
from typing import Literal

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
