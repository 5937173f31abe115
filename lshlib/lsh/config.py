"""LSH attention's settings: :class:`LSHConfig` and the values each of its fields may take.

One frozen dataclass holds every setting of BERT-LSH attention (:mod:`lshlib.lsh.attention`):
the hash family (``bits``, ``tables``, ``table_size``), the semantics (``mode``), the execution
strategy, when hashes are redrawn (``rehash``, ``seed``) and the controls (``pairs``, ``mirror``,
``density``). Invalid values raise ``ValueError`` naming the value and the valid range when the
config is built, so nothing downstream meets a bad setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from lshlib.lsh.flex import DEFAULT_BLOCK, check_block_size
from lshlib.lsh.hashing import HashSetting, _is_int, validate_hash_settings

__all__ = [
    "ATTN_NAME",
    "CONFIG_ATTR",
    "MODES",
    "STRATEGIES",
    "REHASH",
    "PAIRS",
    "DENSITIES",
    "MAX_SEED",
    "MAX_LAYERS",
    "LSHConfig",
]

ATTN_NAME = "bert_lsh"
CONFIG_ATTR = "lsh"  # name of the attribute holding the LSH settings on a transformers config
MODES = ("paper", "masked")
STRATEGIES = ("dense", "bucketed", "flex")
REHASH = ("call", "fixed")
PAIRS = ("lsh", "random")
# pairs="random": the density is that of the real (unmasked) pairs, or, as models saved before
# this setting existed (their config.lsh has no "density"), of every pair, padding included.
DENSITIES = ("all", "real_keys")
MAX_SEED = 2**32  # seeds and layer indices are combined into one 64-bit generator seed
MAX_LAYERS = 2**20


@dataclass(frozen=True)
class LSHConfig:
    """LSH attention settings. ``bits`` is the paper's ``bands``, ``tables`` its ``num_hashes``;
    ``table_size=None`` uses the plain ``2**bits`` signature buckets."""

    bits: int = 2
    tables: int = 1
    table_size: int | None = 256
    mode: str = "paper"
    strategy: str = "dense"
    rehash: str = "call"
    seed: int = 0
    pairs: str = "lsh"
    mirror: bool = True
    density: str = "all"  # pairs="random" only: see DENSITIES and random_pairs
    block_size: int = DEFAULT_BLOCK  # strategy "flex" only: FlexAttention's block (lshlib.lsh.flex)

    def __post_init__(self) -> None:
        validate_hash_settings(self.bits, self.tables, self.table_size)
        for name in ("bits", "tables", "table_size"):  # numpy integers -> int (JSON-able)
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.strategy in ("bucketed", "flex") and self.mode != "masked":
            raise ValueError(
                f"strategy {self.strategy!r} supports mode 'masked' only, got mode {self.mode!r} "
                "(paper mode runs with strategy 'dense')"
            )
        object.__setattr__(self, "block_size", check_block_size(self.block_size))
        if self.rehash not in REHASH:
            raise ValueError(f"rehash must be one of {REHASH}, got {self.rehash!r}")
        if self.pairs not in PAIRS:
            raise ValueError(f"pairs must be one of {PAIRS}, got {self.pairs!r}")
        if self.pairs == "random" and self.strategy != "dense":
            raise ValueError(
                f"pairs 'random' runs with strategy 'dense' only, got strategy {self.strategy!r}"
            )
        if self.density not in DENSITIES:
            raise ValueError(f"density must be one of {DENSITIES}, got {self.density!r}")
        if not isinstance(self.mirror, bool):
            raise ValueError(f"mirror must be True or False, got {self.mirror!r}")
        if not self.mirror and self.mode != "paper":
            raise ValueError(
                f"mirror=False applies to mode 'paper' only (masked mode never mirrors), got "
                f"mode {self.mode!r}"
            )
        if not _is_int(self.seed) or not 0 <= self.seed < MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def setting(self) -> HashSetting:
        """The hash setting (bits, tables, table_size) of this configuration."""
        return HashSetting(self.bits, self.tables, self.table_size)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stored as ``config.lsh`` on a transformers config)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LSHConfig:
        """Inverse of :meth:`to_dict`; an unknown or invalid field raises ``ValueError``."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown LSHConfig field(s) {unknown}; valid fields: {sorted(names)}")
        return cls(**d)
