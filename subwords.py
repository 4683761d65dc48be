"""Subwords: the BPE tokenizer, word alignment, windows and batches.

Everything between a document's words and padded id tensors, and back, lives here:

- Tokenization: a BPE tokenizer is trained on the training split. Each subword keeps
  the index of the word it came from, so scores map back exactly onto the annotated words.
- Windows: long documents are cut into overlapping windows that start with [CLS], and the
  per-window outputs are merged back into one score per subword.
- Batches: `collate` pads to the longest sequence and returns the lengths.

Reading datasets is data.py's job. DataError is defined here because `load_tokenizer` raises
it as well, and data.py imports this module rather than the reverse.
"""

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[MASK]"]
PAD_ID, UNK_ID, CLS_ID, MASK_ID = 0, 1, 2, 3  # [MASK] is the blank token of masked inputs


class DataError(Exception):
    """A data problem that the user can fix. The message names the file, the value and the fix."""


# ---------------------------------------------------------------- tokenizer


def _check_special_tokens(tokenizer: Tokenizer, source: str) -> None:
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        actual_id = tokenizer.token_to_id(token)
        if actual_id != expected_id:
            raise DataError(
                f"tokenizer from {source} maps {token} to id {actual_id}, expected {expected_id}; "
                "retrain it with train_tokenizer"
            )


def train_tokenizer(documents: Iterable[list[str]], vocab_size: int = 8000) -> Tokenizer:
    """Train a lowercasing BPE tokenizer on pre-split documents (the training split only).

    The special tokens get ids 0-3, and text such as "[MASK]" inside a document is encoded as
    ordinary characters, never as a special token. The normalizer lowercases, strips accents
    and removes control characters. Words are further split at punctuation and around CJK
    characters, and each run of characters outside the learned alphabet becomes one [UNK].
    BPE without a continuing-subword prefix is used because its training is deterministic:
    the WordPiece trainer of `tokenizers` 0.23 breaks ties between merges differently from
    run to run, so two runs with the same seed would get different vocabularies.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed {len(SPECIAL_TOKENS)}, got {vocab_size}")
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]", fuse_unk=True))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()  # also splits off punctuation
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    tokenizer.train_from_iterator((" ".join(words) for words in documents), trainer)
    _check_special_tokens(tokenizer, "train_tokenizer")
    tokenizer.encode_special_tokens = True
    return tokenizer


def _tokenizer_file(path: str | Path) -> Path:
    path = Path(path)
    return path / "tokenizer.json" if path.is_dir() else path


def save_tokenizer(tokenizer: Tokenizer, path: str | Path) -> Path:
    """Write the tokenizer as JSON atomically and return the file; a folder gets tokenizer.json."""
    path = _tokenizer_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(tokenizer.to_str())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokenizer saved by `save_tokenizer` (a tokenizer.json file or its folder)."""
    path = _tokenizer_file(path)
    if not path.is_file():
        raise DataError(
            f"tokenizer file {path} not found; pass the tokenizer.json saved with the model"
        )
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for every parse error
        raise DataError(f"tokenizer file {path} is not a valid tokenizer ({error})") from error
    _check_special_tokens(tokenizer, str(path))
    tokenizer.encode_special_tokens = True  # not stored in tokenizer.json
    return tokenizer


# ---------------------------------------------------------------- word alignment


def _word_index(offsets: list[tuple[int, int]], words: list[str]) -> np.ndarray:
    """Map each subword of " ".join(words) to its word through its character offsets."""
    lengths = np.fromiter((len(word) + 1 for word in words), dtype=np.int64, count=len(words))
    word_starts = np.cumsum(lengths) - lengths  # (N,) character where each word begins
    subword_starts = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)[:, 0]  # (S,)
    return np.searchsorted(word_starts, subword_starts, side="right") - 1


def _align(ids: list[int], word_index: np.ndarray, n_words: int) -> tuple[np.ndarray, np.ndarray]:
    """Insert one [UNK] for each word without subwords, keeping subwords in word order."""
    ids = np.asarray(ids, dtype=np.int64)  # (S,)
    empty = np.flatnonzero(np.bincount(word_index, minlength=n_words) == 0)
    if len(empty) == 0:
        return ids, word_index
    ids = np.concatenate([ids, np.full(len(empty), UNK_ID, dtype=np.int64)])
    word_index = np.concatenate([word_index, empty])
    order = np.argsort(word_index, kind="stable")
    return ids[order], word_index[order]


def _valid_utf8(words: list[str]) -> list[str]:
    """Return the words with lone surrogates replaced by U+FFFD, the replacement character.

    Lone surrogates come from undecodable bytes (errors="surrogateescape"), and tokenizers
    rejects any string that is not valid UTF-8.
    """
    try:
        "".join(words).encode("utf-8")
        return list(words)
    except UnicodeEncodeError:
        return [
            "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in word)
            for word in words
        ]


def encode_documents(
    tokenizer: Tokenizer, documents: list[list[str]]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Encode pre-split documents and return (ids, word_index) per document, without [CLS].

    ids (S,) int64 are subword ids and word_index (S,) int64 the word each subword belongs to,
    non-decreasing. Every word gets at least one subword: a word that the normalizer empties
    (an empty string, only whitespace or control characters) is encoded as [UNK].
    """
    # Encoding the space-joined text and mapping subwords back through their character offsets
    # gives the same result as encode_batch(..., is_pretokenized=True), because the
    # pre-tokenizer splits at every space, but takes about half the time on the movie reviews.
    documents = [_valid_utf8(words) for words in documents]
    texts = [" ".join(words) for words in documents]
    # Set here as well because tokenizer.json does not store it: "[MASK]" in a text is no blank.
    tokenizer.encode_special_tokens = True
    encoded = []
    # Chunks of 256 documents bound the memory that tokenizers' Encoding objects take (peak
    # RSS fell by 160 MiB on the movie reviews) for about 5% more time on 2 CPUs.
    for first in range(0, len(texts), 256):
        encodings = tokenizer.encode_batch(texts[first : first + 256], add_special_tokens=False)
        for encoding, words in zip(encodings, documents[first : first + 256]):
            encoded.append(_align(encoding.ids, _word_index(encoding.offsets, words), len(words)))
    return encoded


def encode_words(tokenizer: Tokenizer, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Encode one pre-split document, as `encode_documents` does."""
    return encode_documents(tokenizer, [words])[0]


def word_mask_to_subwords(word_mask: np.ndarray, word_index: np.ndarray) -> np.ndarray:
    """Give each subword the value of its word: (N,) -> (S,), or (N, C) -> (S, C)."""
    word_mask = np.asarray(word_mask)
    if len(word_index) and word_index.max() >= len(word_mask):
        raise ValueError(
            f"word_index refers to word {word_index.max()}, but the mask has {len(word_mask)} words"
        )
    return word_mask[word_index]


def subword_scores_to_words(scores: np.ndarray, word_index: np.ndarray, n_words: int) -> np.ndarray:
    """Average subword scores per word: (S,) -> (N,), or (S, C) -> (N, C), as float64."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[0] != len(word_index):
        raise ValueError(
            f"scores have {scores.shape[0]} rows but word_index has {len(word_index)}"
        )
    counts = np.bincount(word_index, minlength=n_words)  # (N,) subwords per word
    if len(counts) > n_words:
        raise ValueError(f"word_index refers to word {len(counts) - 1}, but n_words is {n_words}")
    if (counts == 0).any():
        raise ValueError(f"word {np.argmin(counts)} has no subword; encode with encode_words")
    columns = scores.reshape(len(word_index), -1)  # (S, C)
    sums = [np.bincount(word_index, weights=column, minlength=n_words) for column in columns.T]
    means = np.stack(sums, axis=1) / counts[:, None]  # (N, C)
    return means.reshape((n_words, *scores.shape[1:]))


# ---------------------------------------------------------------- windows and batches


@dataclass
class Window:
    """One window of a document: [CLS] followed by consecutive subwords."""

    ids: np.ndarray  # (L,) int64, ids[0] == CLS_ID, then L-1 subword ids, L <= max_len
    start: int  # index (into the document's subwords) of ids[1]


def _check_window_sizes(max_len: int, overlap: int) -> None:
    if max_len < 2:
        raise ValueError(f"max_len must be at least 2 ([CLS] and one subword), got {max_len}")
    if not 0 <= overlap < max_len - 1:
        raise ValueError(
            f"overlap must be between 0 and max_len - 2 = {max_len - 2} subwords, got {overlap}"
        )


def make_windows(ids: np.ndarray, max_len: int, overlap: int) -> list[Window]:
    """Cut a document's subword ids into windows of at most max_len tokens, [CLS] included.

    Consecutive windows share exactly `overlap` subwords; the last window may be shorter. An
    empty document gives one window holding only [CLS].
    """
    _check_window_sizes(max_len, overlap)
    ids = np.asarray(ids, dtype=np.int64)
    body = max_len - 1  # subwords per window
    starts = [0]
    while starts[-1] + body < len(ids):
        starts.append(starts[-1] + body - overlap)
    cls = np.array([CLS_ID], dtype=np.int64)
    return [Window(np.concatenate([cls, ids[start : start + body]]), start) for start in starts]


def _blend_weights(windows: list[Window], k: int) -> np.ndarray:
    """Return window k's blending weight for each of its subwords.

    Across an overlap of `shared` subwords with window k-1 the weight rises as (j+1)/(shared+1)
    for j = 0 .. shared-1. Across the overlap with window k+1 it falls as (shared-j)/(shared+1).
    """
    length = len(windows[k].ids) - 1
    weights = np.ones(length)  # (L_k - 1,)
    if k > 0:
        previous = windows[k - 1]
        shared = min(max(previous.start + len(previous.ids) - 1 - windows[k].start, 0), length)
        weights[:shared] *= np.arange(1, shared + 1) / (shared + 1)
    if k + 1 < len(windows):
        shared = min(max(windows[k].start + length - windows[k + 1].start, 0), length)
        weights[length - shared :] *= np.arange(shared, 0, -1) / (shared + 1)
    return weights


def merge_window_masks(
    windows: list[Window], masks: list[np.ndarray], n_subwords: int
) -> np.ndarray:
    """Merge per-window masks (L_k, C), [CLS] row included, into one (n_subwords, C) mask.

    In the overlap of two consecutive windows the earlier window's weight falls linearly from
    1 to 0 and the later one's rises, so the result is a convex combination of the windows'
    values. NOTE: when overlap exceeds half a window, a subword lies in three windows and the
    blend is a normalized product of the ramps, no longer linear.
    """
    if not windows or len(windows) != len(masks):
        raise ValueError(
            f"need one mask per window, got {len(masks)} masks for {len(windows)} windows"
        )
    squeeze = np.asarray(masks[0]).ndim == 1
    n_columns = 1 if squeeze else np.asarray(masks[0]).shape[1]
    total = np.zeros((n_subwords, n_columns))
    weight_sum = np.zeros(n_subwords)
    for k, (window, mask) in enumerate(zip(windows, masks)):
        mask = np.asarray(mask, dtype=np.float64).reshape(len(window.ids), n_columns)
        stop = window.start + len(window.ids) - 1
        if stop > n_subwords:
            raise ValueError(f"window {k} ends at subword {stop}, beyond n_subwords={n_subwords}")
        weights = _blend_weights(windows, k)  # (L_k - 1,)
        total[window.start : stop] += weights[:, None] * mask[1:]
        weight_sum[window.start : stop] += weights
    if (weight_sum == 0).any():
        raise ValueError(f"subword {np.argmin(weight_sum)} is in no window")
    merged = total / weight_sum[:, None]  # (n_subwords, C)
    return merged[:, 0] if squeeze else merged


def merge_window_logits(logits: np.ndarray) -> np.ndarray:
    """Average class logits over a document's windows: (W, C) -> (C,)."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or len(logits) == 0:
        raise ValueError(f"logits must have shape (windows, classes), got {logits.shape}")
    return logits.mean(axis=0)


def collate(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id sequences with PAD_ID to the longest and return ids (B, T) and lengths (B,)."""
    if not sequences:
        raise ValueError("collate needs at least one sequence")
    lengths = torch.tensor([len(sequence) for sequence in sequences], dtype=torch.long)
    ids = torch.full((len(sequences), int(lengths.max())), PAD_ID, dtype=torch.long)  # (B, T)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.as_tensor(np.asarray(sequence, dtype=np.int64))
    return ids, lengths


def random_window(ids: np.ndarray, max_len: int, rng: np.random.Generator) -> np.ndarray:
    """Return [CLS] plus up to max_len-1 consecutive subwords from a uniformly random offset."""
    _check_window_sizes(max_len, 0)
    body = max_len - 1
    start = int(rng.integers(len(ids) - body + 1)) if len(ids) > body else 0
    return np.concatenate([[CLS_ID], np.asarray(ids[start : start + body], dtype=np.int64)])
