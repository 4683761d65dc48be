"""Data: ERASER rationale datasets and a synthetic demo task.

Everything between files on disk and lists of annotated examples lives here. `load_eraser`
reads any folder in the ERASER layout, `download_movies` fetches the ERASER movie reviews into
a cache, and `make_synthetic` builds an offline task with known rationales for every class.

Turning words into subword ids and windows, and scores back into words, is in subwords.py.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from subwords import DataError  # defined there because load_tokenizer raises it too

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
