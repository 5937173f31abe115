"""lshlib: the computing behind the lsh-bert-study notebooks (BERT-LSH, arXiv:2404.08836)."""

from lshlib.scales import get_scale

__version__ = "0.1.0"
__all__ = ["get_scale", "__version__"]
