"""Datasets: pretraining corpus, SST-2, SQuAD v1.1, and the locally trained WordPiece tokenizer.

Every loader reads the local copy under ``$LSHLIB_DATA_DIR`` first (layout in ``data/README.md``),
then tries the Hugging Face Hub, and otherwise stops within seconds with a :class:`MissingDataError`
that names the dataset and how to provide it. Nothing waits on an unreachable network: the Hub is
only tried when ``HF_HUB_OFFLINE`` is unset and a 2-second connection probe succeeds.

Splits follow the paper: SST-2 and SQuAD hold out 5% of the training set (seed 42) for
validation and use the official dev set as the test set; the corpus holds out the last 1% of
every document's paragraphs for evaluation (the paper held out 1% of BookCorpus blocks).

One module a job: what the loaders share (:mod:`~lshlib.data.common`), the fine-tuning datasets
(:mod:`~lshlib.data.tasks`), the pretraining corpus (:mod:`~lshlib.data.corpus`) and the tokenizer
(:mod:`~lshlib.data.tokenizer`); this package offers all their public names.
"""

from lshlib.data.common import (
    CORPUS_EVAL_FRACTION,
    EXPECTED_ROWS,
    HELDOUT_FRACTION,
    HUB_IDS,
    SPECIAL_TOKENS,
    SPLIT_SEED,
    SPLITS,
    SQUAD_COLUMNS,
    SQUAD_DEV_FILE,
    SQUAD_TRAIN_FILE,
    SST2_COLUMNS,
    DataFormatError,
    MissingDataError,
    hub_reachable,
)
from lshlib.data.corpus import (
    corpus_digest,
    corpus_files,
    corpus_text,
    load_corpus,
    strip_gutenberg,
)
from lshlib.data.tasks import load_squad, load_sst2
from lshlib.data.tokenizer import CORPUS_STAMP, get_tokenizer, tokenizer_dir, train_tokenizer

__all__ = [
    "CORPUS_EVAL_FRACTION",
    "CORPUS_STAMP",
    "EXPECTED_ROWS",
    "HELDOUT_FRACTION",
    "HUB_IDS",
    "SPECIAL_TOKENS",
    "SPLIT_SEED",
    "SPLITS",
    "SQUAD_COLUMNS",
    "SQUAD_DEV_FILE",
    "SQUAD_TRAIN_FILE",
    "SST2_COLUMNS",
    "DataFormatError",
    "MissingDataError",
    "corpus_digest",
    "corpus_files",
    "corpus_text",
    "get_tokenizer",
    "hub_reachable",
    "load_corpus",
    "load_squad",
    "load_sst2",
    "strip_gutenberg",
    "tokenizer_dir",
    "train_tokenizer",
]
