"""The WordPiece tokenizer, trained locally on the corpus and cached per scale and corpus."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import WordPieceTrainer
from transformers import PreTrainedTokenizerFast

from lshlib import safeio
from lshlib.data.common import SPECIAL_TOKENS
from lshlib.data.corpus import corpus_digest, corpus_files, corpus_text
from lshlib.paths import runs_dir
from lshlib.scales import get_scale, sizes

log = logging.getLogger(__name__)


def train_tokenizer(texts: list[str], vocab_size: int, model_max_length: int = 512):
    """Train a BERT-style (lower-cased) WordPiece tokenizer on ``texts``; a transformers fast
    tokenizer with [PAD] [UNK] [CLS] [SEP] [MASK] and BERT's [CLS] A [SEP] B [SEP] template."""
    if vocab_size < len(SPECIAL_TOKENS) + 100:
        raise ValueError(
            f"vocab_size {vocab_size} too small; use at least {len(SPECIAL_TOKENS) + 100}"
        )
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    # The trainer's ids depend on hash-map order (the token set does not): renumber the tokens,
    # special tokens first, then in sorted order, so that a retrained tokenizer is identical.
    trained = tok.get_vocab()
    ordered = list(SPECIAL_TOKENS) + sorted(t for t in trained if t not in SPECIAL_TOKENS)
    tok.model = models.WordPiece(
        {t: i for i, t in enumerate(ordered)}, unk_token="[UNK]", continuing_subword_prefix="##"
    )
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def tokenizer_dir(scale: str | None = None) -> Path:
    """Where the tokenizer of ``scale`` is cached: ``runs/tokenizers/<scale>-v<vocab>-<key>``."""
    scale = get_scale(scale)
    settings = sizes("tokenizer", scale)
    files = [f"{p.parent.name}/{p.name}:{p.stat().st_size}" for p in corpus_files()]
    key = hashlib.sha1(json.dumps([settings, files, 3]).encode()).hexdigest()[:8]
    return runs_dir() / "tokenizers" / f"{scale}-v{settings['vocab_size']}-{key}"


CORPUS_STAMP = "lshlib_corpus.json"  # in a tokenizer folder: the corpus_digest it was trained on


def _stamp(path: Path) -> str | None:
    """The corpus digest stored in tokenizer folder ``path`` (``None``: none stored)."""
    file = path / CORPUS_STAMP
    if not file.is_file():
        return None
    try:
        return str(json.loads(file.read_text(encoding="utf-8"))["corpus_sha256"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "unreadable"


def _cached_tokenizer(path: Path) -> PreTrainedTokenizerFast | None:
    """The tokenizer cached in ``path``; ``None`` when absent, or when corrupt or trained on a
    corpus whose content has changed since (then moved aside with a warning naming it, so that
    it is rebuilt rather than failing every later run). The folder's name comes from the
    corpus files' names and sizes (it is part of every run's name); their content hash
    (:func:`corpus_digest`) is stored inside it (:data:`CORPUS_STAMP`) and checked here. A
    cache made before the hash was stored is taken as it is, and stamped."""
    if not path.exists():
        return None
    problem = None
    if not (path / "tokenizer.json").is_file():
        problem = "no tokenizer.json in the folder"
    else:
        try:
            tok = PreTrainedTokenizerFast.from_pretrained(path)
        except Exception as err:  # noqa: BLE001 - any load failure means a corrupt cache
            problem = f"cannot be loaded: {type(err).__name__}: {err}"
        else:
            ids = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))
            stamp, digest = _stamp(path), corpus_digest()
            if ids != list(range(len(SPECIAL_TOKENS))):
                problem = f"special tokens {SPECIAL_TOKENS} have ids {ids}, expected 0-4"
            elif stamp is None:  # made before the hash was stored
                with contextlib.suppress(OSError):
                    safeio.atomic_write_json(path / CORPUS_STAMP, {"corpus_sha256": digest})
                return tok
            elif stamp == digest:
                return tok
            else:
                problem = (
                    f"trained on another corpus (content hash {stamp}, the corpus now {digest}):"
                    " a corpus file was edited"
                )
    safeio.quarantine(path, problem)
    return None


def get_tokenizer(scale: str | None = None) -> PreTrainedTokenizerFast:
    """The WordPiece tokenizer of ``scale``, trained on the training part of the corpus.

    Vocabulary 32,000 at paper scale (as the paper), 8,000 at laptop and 2,000 at smoke (smaller
    embeddings and output layer: faster on a CPU). Trained once and cached under ``runs/``
    (written to a temporary folder, then renamed); the trainer is deterministic, so a rebuilt
    cache gives the same vocabulary. A corrupt cache is reported, moved aside and rebuilt.
    """
    path = tokenizer_dir(scale)
    cached = _cached_tokenizer(path)
    if cached is not None:
        return cached
    settings = sizes("tokenizer", scale)
    log.info("training WordPiece tokenizer %s", path.name)
    digest = corpus_digest()
    tok = train_tokenizer(corpus_text("train", settings["max_chars"]), settings["vocab_size"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    tok.save_pretrained(tmp)
    safeio.atomic_write_json(tmp / CORPUS_STAMP, {"corpus_sha256": digest})
    try:
        tmp.rename(path)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return PreTrainedTokenizerFast.from_pretrained(path)
