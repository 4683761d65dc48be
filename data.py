"""Data: ERASER rationale datasets, a synthetic demo task, subword tokenization and windows.

Everything between files on disk and padded id tensors lives here:

- Datasets: `load_eraser` reads any folder in the ERASER layout, `download_movies` fetches
  the ERASER movie reviews into a cache, and `make_synthetic` builds an offline task with
  known rationales for every class.
- Tokenization: a BPE tokenizer is trained on the training split. Each subword keeps
  the index of the word it came from, so scores map back exactly onto the annotated words.
- Windows: long documents are cut into overlapping windows that start with [CLS], and the
  per-window outputs are merged back into one score per subword.
- Batches: `collate` pads to the longest sequence and returns the lengths.

Run `python data.py --help` for the dataset summary command.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[MASK]"]
PAD_ID, UNK_ID, CLS_ID, MASK_ID = 0, 1, 2, 3  # [MASK] is the blank token of masked inputs

SPLITS = ("train", "val", "test")
MOVIES_URL = "http://www.eraserbenchmark.com/zipped/movies.tar.gz"
MOVIES_SHA256 = "66e18d4e6c9df9e9f5544572b0bfe92a39673f74ecbfc3859b46cedb2f5b2dee"
# Read once at import, so set RATIONALE_CACHE before starting Python.
DEFAULT_CACHE_DIR = Path(
    os.environ.get("RATIONALE_CACHE") or Path.home() / ".cache" / "rationale"
).expanduser()


@dataclass
class Example:
    doc_id: str  # e.g. "negR_000.txt" (ERASER annotation_id)
    words: list[str]  # the document's whitespace tokens, which ERASER offsets index
    label: int  # index into Dataset.classes
    gold: np.ndarray  # (N,) bool, words inside the human rationale of the gold class
    class_gold: np.ndarray | None = None  # (C, N) bool, rationale of every class (synthetic only)


@dataclass
class Dataset:
    name: str  # "movies", "synthetic", or the folder name
    classes: list[str]  # e.g. ["NEG", "POS"] (sorted label strings for ERASER)
    train: list[Example]
    val: list[Example]
    test: list[Example]


class DataError(Exception):
    """A data problem that the user can fix. The message names the file, the value and the fix."""


# ---------------------------------------------------------------- ERASER datasets


def read_document(path: Path) -> list[str]:
    """Read a document's words as ERASER does: strip lines, drop empty ones, split on ' '.

    Lines end only at \\n, \\r or \\r\\n (text-mode newlines, as ERASER reads them), never at
    other characters that str.splitlines() would break at, so the token offsets stay aligned.
    """
    try:
        with path.open(encoding="utf-8") as lines:
            return [word for line in lines for word in line.strip().split(" ") if word]
    except UnicodeDecodeError as error:
        message = f"document {path} is not valid UTF-8 ({error}); re-save it as UTF-8"
        raise DataError(message) from error


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record) for every non-blank line of a JSON Lines file."""
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(
                    f"{path} line {line_number}: invalid JSON ({error.msg} at column "
                    f"{error.colno}); fix or remove that line"
                ) from error
            if not isinstance(record, dict):
                raise DataError(
                    f"{path} line {line_number}: expected a JSON object, got {record!r:.60}"
                )
            yield line_number, record


def _field(record: dict, key: str, kind: type, where: str):
    """Return record[key], raising DataError when it is missing or not of type `kind`."""
    value = record.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):  # bool is a subclass of int
        raise DataError(f"{where}: field {key!r} must be a {kind.__name__}, got {value!r:.60}")
    return value


def _document_id(record: dict, where: str) -> str:
    """Return the one document an annotation refers to (its docids, evidences or own id)."""
    docids = record.get("docids") or []
    if not isinstance(docids, list):
        raise DataError(f"{where}: field 'docids' must be a list or null, got {docids!r:.60}")
    referenced = set(docids)
    for group in _evidence_groups(record, where):
        referenced.update(evidence["docid"] for evidence in group if "docid" in evidence)
    if len(referenced) > 1:
        raise DataError(
            f"{where}: the annotation refers to several documents {sorted(map(str, referenced))}; "
            "only datasets with one document per example are supported"
        )
    return referenced.pop() if referenced else _field(record, "annotation_id", str, where)


def _evidence_groups(record: dict, where: str) -> list[list[dict]]:
    """Return the annotation's evidence groups, each a list of evidence objects."""
    groups = _field(record, "evidences", list, where)
    for group in groups:
        if not isinstance(group, list) or not all(isinstance(item, dict) for item in group):
            raise DataError(
                f"{where}: each evidence group must be a list of objects, got {group!r:.60}"
            )
    return groups


def _gold_mask(record: dict, n_words: int, doc_id: str, where: str) -> np.ndarray:
    """Mark the words inside any evidence span of the annotation (end_token exclusive)."""
    gold = np.zeros(n_words, dtype=bool)  # (N,)
    for group in _evidence_groups(record, where):
        for evidence in group:
            start = _field(evidence, "start_token", int, where)
            end = _field(evidence, "end_token", int, where)
            # The movie test split contains empty spans (start == end, text ""), so allow them.
            if not 0 <= start <= end <= n_words:
                raise DataError(
                    f"{where}: evidence tokens {start}:{end} are outside document {doc_id}, "
                    f"which has {n_words} words; fix the offsets (end exclusive) or the document"
                )
            gold[start:end] = True
    return gold


def _load_split(folder: Path, split: str, classes: list[str], documents: dict) -> list[Example]:
    """Read one split file into examples, caching documents shared between splits."""
    path = folder / f"{split}.jsonl"
    examples = []
    for line_number, record in _read_jsonl(path):
        where = f"{path} line {line_number}"
        label = _field(record, "classification", str, where)
        if label not in classes:
            raise DataError(
                f"{where}: unknown label {label!r}; the labels in train.jsonl are {classes}"
            )
        doc_id = _document_id(record, where)
        if doc_id not in documents:
            doc_path = folder / "docs" / doc_id
            if not doc_path.is_file():
                raise DataError(f"{where}: document {doc_id} not found at {doc_path}")
            documents[doc_id] = read_document(doc_path)
        words = documents[doc_id]
        if not words:
            raise DataError(f"{where}: document {folder / 'docs' / doc_id} is empty")
        gold = _gold_mask(record, len(words), doc_id, where)
        annotation_id = _field(record, "annotation_id", str, where)
        examples.append(Example(annotation_id, words, classes.index(label), gold))
    return examples


def _train_labels(folder: Path) -> list[str]:
    """Return the sorted label strings of train.jsonl, which define the class indices."""
    path = folder / "train.jsonl"
    labels = {
        _field(record, "classification", str, f"{path} line {line_number}")
        for line_number, record in _read_jsonl(path)
    }
    if len(labels) < 2:
        raise DataError(
            f"{path} contains the labels {sorted(labels)}; a classifier needs at least two"
        )
    return sorted(labels)


def load_eraser(folder: str | Path) -> Dataset:
    """Load a dataset in the ERASER layout: docs/, train.jsonl, val.jsonl and test.jsonl.

    Words are each document's whitespace tokens after dropping empty lines, so ERASER token
    offsets index them directly. The gold mask covers every evidence span of every evidence
    group. Raises DataError naming the file and line of any invalid record.
    """
    folder = Path(folder)
    require_eraser_folder(folder)
    classes = _train_labels(folder)
    documents: dict[str, list[str]] = {}
    splits = {split: _load_split(folder, split, classes, documents) for split in SPLITS}
    return Dataset(name=folder.name, classes=classes, **splits)


# ---------------------------------------------------------------- download and cache


def _missing_eraser_part(folder: Path) -> str | None:
    """Return the first missing part of an ERASER folder, or None when it is complete."""
    for part in ("docs", *(f"{split}.jsonl" for split in SPLITS)):
        if not (folder / part).exists():
            return part
    return None


def require_eraser_folder(folder: Path) -> None:
    """Raise DataError unless `folder` contains docs/, train.jsonl, val.jsonl and test.jsonl."""
    missing = _missing_eraser_part(folder)
    if missing is None:
        return
    hint = "pass --data-dir pointing to a folder with docs/, train.jsonl, val.jsonl and test.jsonl"
    if _missing_eraser_part(folder / "movies") is None:
        hint = f"did you mean --data-dir {folder / 'movies'}?"
    what = "does not exist" if not folder.exists() else f"has no {missing}"
    raise DataError(f"dataset folder {folder} {what}; {hint}")


def _movies_url() -> str:
    return os.environ.get("RATIONALE_MOVIES_URL") or MOVIES_URL


def _fetch(url: str, destination: Path) -> str:
    """Copy `url` to `destination` and return the sha256 hex digest of the bytes."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, destination.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    # URLError is an OSError, and urlopen raises ValueError for a malformed URL.
    except (OSError, ValueError) as error:
        raise DataError(
            f"could not download the movie reviews from {url} ({error}); connect to the internet, "
            "or download and extract the archive elsewhere and pass --data-dir pointing to its "
            "movies folder"
        ) from error
    return digest.hexdigest()


def _check_member(member: tarfile.TarInfo, url: str) -> None:
    """Reject archive members that could write outside the extraction folder."""
    parts = PurePosixPath(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        reason = "absolute path or '..'"
    elif not (member.isfile() or member.isdir()):
        reason = "not a regular file or folder"
    else:
        return
    raise DataError(
        f"archive from {url} contains the unsafe member {member.name!r} ({reason}); "
        "it was not extracted, so check where the URL points"
    )


def _extract(archive: Path, destination: Path, url: str) -> None:
    """Extract a .tar.gz after checking every member name and type."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, url)
            # The "data" filter (Python 3.11.4+) repeats the checks and drops unsafe modes.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(destination, members=members, **extra)
    except (tarfile.TarError, EOFError) as error:
        raise DataError(f"archive from {url} is not a valid .tar.gz ({error})") from error


def download_movies(
    cache_dir: Path = DEFAULT_CACHE_DIR, url: str | None = None, sha256: str = MOVIES_SHA256
) -> Path:
    """Download, verify and extract the ERASER movie reviews, and return cache_dir / "movies".

    Does nothing when the folder is already complete. `url` defaults to the environment
    variable RATIONALE_MOVIES_URL, then to MOVIES_URL; file:// URLs work. The archive is
    checked against `sha256`, extracted into a temporary folder inside `cache_dir` and renamed
    into place, so a failed or interrupted download leaves no partial dataset behind.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / "movies"
    if _missing_eraser_part(target) is None:
        return target
    url = url or _movies_url()
    cache_dir.mkdir(parents=True, exist_ok=True)
    print(f"downloading the movie reviews from {url} into {cache_dir}", file=sys.stderr)
    staging = Path(tempfile.mkdtemp(prefix=".movies-download-", dir=cache_dir))
    try:
        archive = staging / "movies.tar.gz"
        actual = _fetch(url, archive)
        if actual != sha256:
            raise DataError(
                f"checksum mismatch for {url}: sha256 {actual}, expected {sha256}; "
                "the download is corrupted or not the ERASER movies archive, so try again"
            )
        _extract(archive, staging / "extracted", url)
        extracted = staging / "extracted" / "movies"
        if _missing_eraser_part(extracted) is not None:
            raise DataError(f"archive from {url} has no complete movies/ folder")
        _move_into_place(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _move_into_place(source: Path, target: Path) -> None:
    """Rename `source` to `target`, accepting a complete copy that another process put there."""
    try:
        os.rename(source, target)
    except OSError as error:
        if _missing_eraser_part(target) is not None:
            raise DataError(
                f"cache folder {target} exists but is incomplete; delete it and run again"
            ) from error


def find_movies(
    data_dir: str | Path | None = None, cache_dir: Path = DEFAULT_CACHE_DIR, download: bool = True
) -> Path:
    """Return the movie-review folder: `data_dir` if given (validated), else the cache.

    A missing cache is filled by `download_movies` when `download` is true. When downloading
    is disabled or fails, DataError names the URL and the --data-dir option.
    """
    if data_dir is not None:
        require_eraser_folder(Path(data_dir))
        return Path(data_dir)
    cached = Path(cache_dir) / "movies"
    if _missing_eraser_part(cached) is None:
        return cached
    if not download:
        raise DataError(
            f"the movie reviews are not in the cache {cached} and downloading is disabled; "
            f"allow the download from {_movies_url()} (drop --no-download), or pass --data-dir "
            "pointing to an extracted movies folder"
        )
    return download_movies(Path(cache_dir))


def load_movies(
    data_dir: str | Path | None = None, cache_dir: Path = DEFAULT_CACHE_DIR, download: bool = True
) -> Dataset:
    """Load the ERASER movie reviews from `data_dir` or the cache (see `find_movies`)."""
    dataset = load_eraser(find_movies(data_dir, cache_dir, download))
    dataset.name = "movies"
    return dataset


# ---------------------------------------------------------------- synthetic demo task

# Phrases planted for each class. Every phrase contains a word that no filler sentence uses,
# such as "striker" or "soup", so a class phrase occurs in a document only where it was planted.
SYNTHETIC_PHRASES = {
    "sports": [
        "the striker scored a late goal", "the home team won the match",
        "the referee showed a red card", "the fans cheered in the stadium",
        "the keeper saved a penalty", "the runners crossed the finish line",
    ],
    "cooking": [
        "the soup simmered for an hour", "she chopped fresh garlic",
        "the bread baked in the oven", "we added a pinch of salt",
        "he fried the onions in butter", "the cake cooled on the rack",
    ],
    "weather": [
        "heavy rain flooded the streets", "a cold wind blew from the north",
        "the forecast promised sunshine", "thunder rolled over the hills",
        "snow covered the roads", "temperatures dropped below freezing",
    ],
    "music": [
        "the band played a new song", "the singer hit the high notes",
        "the drummer kept a steady beat", "the orchestra tuned their violins",
        "the guitar solo was loud", "the choir sang in harmony",
    ],
    "travel": [
        "the flight was delayed at the airport", "we packed our suitcases",
        "the hotel room faced the sea", "the train to the coast was crowded",
        "the tour guide showed us the old town", "our passports were checked at the border",
    ],
    "finance": [
        "the shares fell sharply", "the bank raised interest rates",
        "investors sold their bonds", "the company reported record profits",
        "the budget showed a deficit", "the stock market closed higher",
    ],
}
_SUBJECTS = ["my neighbour", "the old man", "a friend of mine", "my sister", "the new teacher",
             "our landlord", "everyone at work", "the postman", "my cousin", "nobody"]
_VERBS = ["talked about", "wrote a letter about", "asked me about", "forgot about",
          "kept thinking about", "told a story about", "complained about", "laughed about"]
_OBJECTS = ["the parking", "the garden fence", "a lost umbrella", "the new library",
            "the broken lift", "a birthday card", "the office printer", "an old photograph",
            "the missing keys", "the painted door"]
_TIMES = ["yesterday", "last tuesday", "this morning", "after work", "on the way back",
          "for a while", "again", "twice"]
_INTRODUCTIONS = ["someone said that", "i heard that", "it turned out that", "apparently",
                  "by the way ,", "later that day"]


def _pick(options: list[str], rng: np.random.Generator) -> list[str]:
    return options[int(rng.integers(len(options)))].split()


def _filler_sentence(rng: np.random.Generator) -> list[str]:
    parts = (_SUBJECTS, _VERBS, _OBJECTS, _TIMES)
    return [word for options in parts for word in _pick(options, rng)] + ["."]


def _planted_sentence(phrase: list[str], rng: np.random.Generator) -> tuple[list[str], slice]:
    """Return a sentence containing `phrase` and the slice of its words that is the phrase."""
    before = _pick(_INTRODUCTIONS, rng)
    after = _pick(_TIMES, rng) if rng.random() < 0.5 else []
    return before + phrase + after + ["."], slice(len(before), len(before) + len(phrase))


def _synthetic_example(
    doc_id: str, label: int, classes: list[str], rng: np.random.Generator
) -> Example:
    """Build a document of about 40-120 words: filler sentences plus planted class phrases.

    The label gets 2-4 phrases. Up to two phrases of other classes, always fewer than the
    label's, may appear as well.
    """
    n_label = int(rng.integers(2, 5))
    n_other = min(int(rng.choice([0, 0, 1, 2])), n_label - 1)
    others = [c for c in range(len(classes)) if c != label]
    planted = [label] * n_label + [int(rng.choice(others)) for _ in range(n_other)]

    sentences = []  # (words, phrase slice or None, class of the phrase)
    for c in planted:
        phrase = _pick(SYNTHETIC_PHRASES[classes[c]], rng)
        sentences.append((*_planted_sentence(phrase, rng), c))
    target_words = int(rng.integers(40, 111))
    while sum(len(words) for words, _, _ in sentences) < target_words:
        sentences.append((_filler_sentence(rng), None, -1))

    words: list[str] = []
    owner: list[int] = []  # class whose phrase each word belongs to, -1 for filler
    for index in rng.permutation(len(sentences)):
        sentence, phrase, c = sentences[index]
        for position, word in enumerate(sentence):
            words.append(word)
            inside = phrase is not None and phrase.start <= position < phrase.stop
            owner.append(c if inside else -1)
    class_gold = np.asarray(owner)[None, :] == np.arange(len(classes))[:, None]  # (C, N)
    return Example(doc_id, words, label, class_gold[label].copy(), class_gold)


def make_synthetic(
    seed: int = 0, n_train: int = 600, n_val: int = 150, n_test: int = 150, n_classes: int = 3
) -> Dataset:
    """Generate the offline demo task: topic classification with planted class phrases.

    Deterministic for a seed. Each split has its labels as balanced as its size allows.
    `class_gold` marks the planted phrases of every class, and `gold` is the row of the
    example's label.
    """
    if not 2 <= n_classes <= len(SYNTHETIC_PHRASES):
        raise ValueError(
            f"n_classes must be between 2 and {len(SYNTHETIC_PHRASES)}, got {n_classes}"
        )
    rng = np.random.default_rng(seed)
    classes = list(SYNTHETIC_PHRASES)[:n_classes]
    splits = {}
    for split, size in zip(SPLITS, (n_train, n_val, n_test)):
        labels = rng.permutation(np.arange(size) % n_classes)
        splits[split] = [
            _synthetic_example(f"synthetic_{split}_{i:04d}", int(label), classes, rng)
            for i, label in enumerate(labels)
        ]
    return Dataset(name="synthetic", classes=classes, **splits)


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


# ---------------------------------------------------------------- summary command


def summarize(dataset: Dataset) -> str:
    """Describe each split: examples, label counts, words per document, gold word fraction."""
    rows = []
    for split in SPLITS:
        examples = getattr(dataset, split)
        counts = Counter(dataset.classes[example.label] for example in examples)
        labels = " ".join(f"{name}={counts[name]}" for name in dataset.classes)
        lengths = np.array([len(example.words) for example in examples] or [0])
        gold_words = sum(int(example.gold.sum()) for example in examples)
        gold = gold_words / max(int(lengths.sum()), 1)
        rows.append((split, len(examples), labels, lengths.mean(), lengths.max(), gold))

    width = max(len("labels"), *(len(row[2]) for row in rows))
    lines = [
        f"dataset {dataset.name}: {len(dataset.classes)} classes {', '.join(dataset.classes)}",
        f"{'split':<6} {'examples':>8}  {'labels':<{width}}  "
        f"{'words mean':>10} {'max':>6} {'gold':>6}",
    ]
    for split, n_examples, labels, mean, longest, gold in rows:
        lines.append(
            f"{split:<6} {n_examples:>8}  {labels:<{width}}  "
            f"{mean:>10.1f} {longest:>6} {gold:>6.1%}"
        )
    lines.append("gold: fraction of the split's words inside the gold class's rationale")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print a dataset summary: examples per split, label counts, words per "
        "document (mean, max) and the fraction of words inside gold rationales."
    )
    parser.add_argument("--dataset", choices=["movies", "synthetic"], default="movies",
                        help="movies: ERASER movie reviews (default); synthetic: offline demo task")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder in the ERASER layout (docs/, train.jsonl, val.jsonl, "
                        "test.jsonl); default: the movie reviews in the cache")
    parser.add_argument("--cache-dir", metavar="DIR", type=Path, default=DEFAULT_CACHE_DIR,
                        help="download cache (default: $RATIONALE_CACHE or ~/.cache/rationale)")
    parser.add_argument("--no-download", action="store_true",
                        help="raise an error instead of downloading a missing dataset")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the synthetic task (default 0)")
    args = parser.parse_args(argv)
    if args.dataset == "synthetic" and args.data_dir:
        parser.error("--data-dir applies only to --dataset movies")

    try:
        if args.dataset == "synthetic":
            dataset = make_synthetic(seed=args.seed)
        elif args.data_dir:
            dataset = load_eraser(find_movies(args.data_dir))
        else:
            dataset = load_movies(cache_dir=args.cache_dir, download=not args.no_download)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summarize(dataset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
