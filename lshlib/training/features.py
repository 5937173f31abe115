"""What the models read: corpus blocks for MLM, the MLM collator, SST-2 and SQuAD features.

Everything here turns a dataset from :mod:`lshlib.data` into model inputs; nothing trains.
Token ids of the corpus are cached under ``runs/cache`` (written atomically).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import datasets
import numpy as np
import torch
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerFast, TrainerCallback

from lshlib import data, safeio
from lshlib.paths import runs_dir
from lshlib.scales import get_scale, sizes


def subset(ds: datasets.Dataset, n: int | None, seed: int = data.SPLIT_SEED) -> datasets.Dataset:
    """A fixed random subset of ``n`` rows (all rows when ``n`` is None or larger)."""
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))


def corpus_ids(tokenizer: PreTrainedTokenizerFast, split: str, max_chars: int | None) -> np.ndarray:
    """All token ids of a corpus split, concatenated (cached under ``runs/cache``, keyed by the
    tokenizer, the split, ``max_chars`` and the corpus files' content hash: an edited corpus
    file, even of the same size, is tokenized again)."""
    parts = [tokenizer.name_or_path, split, max_chars, data.corpus_digest()]
    key = hashlib.sha1(json.dumps(parts).encode()).hexdigest()
    path = runs_dir() / "cache" / f"corpus-{split}-{key[:12]}.npy"
    cached = safeio.load_npy(path, np.int32, 1)  # a corrupt cache is reported and rebuilt
    if cached is not None:
        return cached
    texts = data.corpus_text(split, max_chars)
    ids: list[int] = []
    for start in range(0, len(texts), 2000):
        batch = tokenizer(texts[start : start + 2000], add_special_tokens=False, verbose=False)[
            "input_ids"
        ]
        for row in batch:
            ids.extend(row)
    array = np.asarray(ids, dtype=np.int32)
    safeio.atomic_save_npy(path, array)
    return array


def mlm_blocks(
    tokenizer: PreTrainedTokenizerFast,
    split: str,
    block_size: int,
    n: int | None,
    seed: int,
    max_chars: int | None = None,
) -> datasets.Dataset:
    """Corpus ``split`` (its first ``max_chars`` characters if given) tokenized, concatenated
    and cut into ``[CLS] ... [SEP]`` blocks of ``block_size`` tokens; a fixed random choice of
    ``n`` of them (the paper sampled 10% of BookCorpus)."""
    ids = corpus_ids(tokenizer, split, max_chars)
    inner = block_size - 2
    count = len(ids) // inner
    if count == 0:
        raise ValueError(f"corpus split {split!r} has fewer than block_size={block_size} tokens")
    blocks = ids[: count * inner].reshape(count, inner)
    order = np.random.default_rng(seed).permutation(count)
    chosen = np.sort(order[: n if n is not None else count])
    body = blocks[chosen]
    full = np.concatenate(
        [
            np.full((len(body), 1), tokenizer.cls_token_id, dtype=np.int32),
            body,
            np.full((len(body), 1), tokenizer.sep_token_id, dtype=np.int32),
        ],
        axis=1,
    )
    return datasets.Dataset.from_dict({"input_ids": full.tolist()})


class MLMCollator(TrainerCallback):
    """MLM masking (15%: 80% [MASK], 10% random, 10% kept) for training batches; examples that
    already carry ``labels`` (the pre-masked evaluation set) are only stacked.

    The masks are drawn from a generator seeded by the batch's token ids, the run's seed and the
    epoch, not from the global RNG: the Trainer's data loader collates one batch ahead, so with
    the global RNG a run resumed from a checkpoint would mask differently from an uninterrupted
    one. As a callback it learns the epoch at every epoch start.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerFast, mlm_probability: float = 0.15, seed: int = 0
    ):
        self.masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
        self.seed = seed
        self.epoch = 0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epoch = int(state.epoch or 0)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        if "labels" in features[0]:
            return {k: torch.tensor([f[k] for f in features]) for k in features[0]}
        ids = np.asarray([f["input_ids"] for f in features], dtype=np.int64)
        digest = hashlib.blake2b(
            ids.tobytes(), digest_size=8, key=f"{self.seed}/{self.epoch}".encode()
        )
        self.masker.generator = torch.Generator().manual_seed(int.from_bytes(digest.digest()) >> 1)
        return self.masker([{"input_ids": row} for row in ids.tolist()])


def premask(ds: datasets.Dataset, tokenizer: PreTrainedTokenizerFast, prob: float, seed: int = 0):
    """Mask an evaluation set once with a fixed seed, so every evaluation (and every variant)
    scores the same masked positions."""
    masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=prob)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        batch = masker([{"input_ids": row} for row in ds["input_ids"]])
    return datasets.Dataset.from_dict(
        {"input_ids": batch["input_ids"].tolist(), "labels": batch["labels"].tolist()}
    )


def mlm_eval_set(
    tokenizer: PreTrainedTokenizerFast, block_size: int, n: int | None, prob: float
) -> datasets.Dataset:
    """The MLM evaluation blocks, masked once (:func:`premask`): what every evaluation scores."""
    return premask(mlm_blocks(tokenizer, "eval", block_size, n, 0), tokenizer, prob)


def unigram_floor(
    tokenizer: PreTrainedTokenizerFast,
    block_size: int,
    n: int | None,
    prob: float,
    corpus_chars: int | None = None,
) -> dict[str, Any]:
    """The MLM accuracy of always predicting the training corpus's most frequent token, scored
    at the masked positions of :func:`mlm_eval_set`: what word frequency alone gets.

    Returns the token, its hits, the number of masked positions and the accuracy."""
    counts = np.bincount(corpus_ids(tokenizer, "train", corpus_chars), minlength=len(tokenizer))
    top = int(counts.argmax())
    labels = np.asarray(mlm_eval_set(tokenizer, block_size, n, prob)["labels"])
    labels = labels[labels != -100]  # DataCollatorForLanguageModeling's ignore index
    if labels.size == 0:
        raise ValueError(f"no masked positions in {n} evaluation blocks of {block_size} tokens")
    hits = int((labels == top).sum())
    return {
        "token": tokenizer.convert_ids_to_tokens(top),
        "hits": hits,
        "positions": int(labels.size),
        "accuracy": hits / labels.size,
    }


def sst2_features(ds: datasets.Dataset, tokenizer, max_length: int, pad: bool) -> datasets.Dataset:
    """Tokenized SST-2 sentences (``[CLS] sentence [SEP]``) with their labels."""

    def encode(batch):
        return tokenizer(
            batch["sentence"],
            truncation=True,
            max_length=max_length,
            padding="max_length" if pad else False,
        )

    return ds.map(encode, batched=True, remove_columns=["sentence"])


def _squad_windows(batch: dict, tokenizer, max_length: int, doc_stride: int, pad: bool):
    """``[CLS] question [SEP] context [SEP]`` windows over each context, ``doc_stride`` tokens
    of overlap, with offsets and the window-to-example map (shared by train and eval)."""
    return tokenizer(
        [q.lstrip() for q in batch["question"]],
        batch["context"],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length" if pad else False,
    )


def squad_train_features(
    ds: datasets.Dataset, tokenizer, max_length: int, doc_stride: int, pad: bool
) -> datasets.Dataset:
    """Windows ``[CLS] question [SEP] context [SEP]`` over each context (``doc_stride`` tokens
    of overlap) labelled with the answer's first and last token; windows that do not contain
    the whole answer are labelled at the ``[CLS]`` position (the standard recipe)."""

    def encode(batch):
        enc = _squad_windows(batch, tokenizer, max_length, doc_stride, pad)
        sample_map = enc.pop("overflow_to_sample_mapping")
        starts, ends = [], []
        for i, offsets in enumerate(enc.pop("offset_mapping")):
            cls_index = enc["input_ids"][i].index(tokenizer.cls_token_id)
            seq = enc.sequence_ids(i)
            answer = batch["answers"][sample_map[i]]
            start_char = answer["answer_start"][0]
            end_char = start_char + len(answer["text"][0])
            first = seq.index(1)
            last = len(seq) - 1 - seq[::-1].index(1)
            if offsets[first][0] > start_char or offsets[last][1] < end_char:
                starts.append(cls_index)
                ends.append(cls_index)
                continue
            s = first
            while s <= last and offsets[s][0] <= start_char:
                s += 1
            e = last
            while e >= first and offsets[e][1] >= end_char:
                e -= 1
            starts.append(s - 1)
            ends.append(e + 1)
        enc["start_positions"] = starts
        enc["end_positions"] = ends
        return enc

    return ds.map(encode, batched=True, remove_columns=ds.column_names)


def squad_eval_features(
    ds: datasets.Dataset, tokenizer, max_length: int, doc_stride: int, pad: bool
) -> datasets.Dataset:
    """Windows as in :func:`squad_train_features`, keeping ``example_id`` and an
    ``offset_mapping`` that is ``None`` outside the context (for answer extraction)."""

    def encode(batch):
        enc = _squad_windows(batch, tokenizer, max_length, doc_stride, pad)
        sample_map = enc.pop("overflow_to_sample_mapping")
        enc["example_id"] = [batch["id"][j] for j in sample_map]
        enc["offset_mapping"] = [
            [o if s == 1 else None for o, s in zip(offsets, enc.sequence_ids(i), strict=True)]
            for i, offsets in enumerate(enc["offset_mapping"])
        ]
        return enc

    return ds.map(encode, batched=True, remove_columns=ds.column_names)


def corpus_summary(scale: str | None = None) -> dict[str, Any]:
    """Size of the pretraining corpus and of the tokenizer at ``scale`` (for notebook 04)."""
    scale = get_scale(scale)
    mlm = sizes("training/mlm", scale)
    tokenizer = data.get_tokenizer(scale)
    chars = mlm.get("corpus_chars")
    train_ids = corpus_ids(tokenizer, "train", chars)
    eval_ids = corpus_ids(tokenizer, "eval", None)
    train_text = data.corpus_text("train", chars)
    words = sum(len(t.split()) for t in train_text)
    files = data.corpus_files()
    return {
        "gutenberg books": sum(f.parent.name == "gutenberg" for f in files),
        "wikitext-2 files": sum(f.parent.name == "wikitext-2" for f in files),
        "training paragraphs used": len(train_text),
        "training characters used": sum(len(t) for t in train_text),
        "training words": words,
        "training tokens": int(len(train_ids)),
        "held-out tokens": int(len(eval_ids)),
        "tokens per word": len(train_ids) / max(words, 1),
        "[UNK] share of held-out tokens": float(np.mean(eval_ids == tokenizer.unk_token_id)),
        "vocabulary size": len(tokenizer),
        "block size": mlm["max_length"],
        "training blocks available": int(len(train_ids) // (mlm["max_length"] - 2)),
        "training blocks used": mlm["max_train"] or "all",
    }
