"""Tests for data.py: ERASER loading, download, movie reviews, synthetic task, summary command."""

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import data  # noqa: E402
from subwords import DataError  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MOVIES_DIR = SHARED_DATA / "movies"
MOVIES_ARCHIVE = SHARED_DATA / "movies.tar.gz"


def require_shared_data() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")


# ---------------------------------------------------------------- ERASER fixture written here

DOCS = {
    "a.txt": "good film .\n\n  really  fine acting \n",  # blank line and extra spaces are dropped
    "b.txt": "bad plot\nawful ending .\n",
    "c.txt": "nothing special\n",
}


def evidence(docid: str, start: int, end: int) -> dict:
    return {"docid": docid, "start_token": start, "end_token": end, "text": ""}


def record(docid: str, label: str, groups: list[list[dict]]) -> dict:
    return {"annotation_id": docid, "classification": label, "evidences": groups, "docids": None}


def base_splits() -> dict[str, list]:
    return {
        "train": [
            record("a.txt", "POS", [[evidence("a.txt", 0, 2)], [evidence("a.txt", 3, 5)]]),
            record("b.txt", "NEG", [[evidence("b.txt", 0, 1), evidence("b.txt", 2, 3)]]),
        ],
        "val": [record("c.txt", "POS", [])],
        "test": [record("b.txt", "NEG", [[evidence("b.txt", 4, 5)]])],
    }


def write_eraser(folder: Path, docs: dict = DOCS, splits: dict | None = None) -> Path:
    """Write an ERASER-layout folder; split values are lists of records or raw JSONL text."""
    (folder / "docs").mkdir(parents=True)
    for name, text in docs.items():
        (folder / "docs" / name).write_text(text)
    for split, records in (splits or base_splits()).items():
        if isinstance(records, str):
            text = records
        else:
            text = "".join(json.dumps(item) + "\n" for item in records)
        (folder / f"{split}.jsonl").write_text(text)
    return folder


def test_load_eraser_fixture(tmp_path):
    dataset = data.load_eraser(write_eraser(tmp_path / "tiny"))
    assert dataset.name == "tiny"
    assert dataset.classes == ["NEG", "POS"]
    assert [len(dataset.train), len(dataset.val), len(dataset.test)] == [2, 1, 1]
    first, second = dataset.train
    assert first.doc_id == "a.txt"
    assert first.words == ["good", "film", ".", "really", "fine", "acting"]
    assert first.label == 1
    assert first.gold.dtype == bool
    assert first.gold.tolist() == [True, True, False, True, True, False]
    assert second.words == ["bad", "plot", "awful", "ending", "."]
    assert second.label == 0
    assert second.gold.tolist() == [True, False, True, False, False]
    assert second.class_gold is None
    assert dataset.val[0].gold.tolist() == [False, False]
    assert dataset.test[0].gold.tolist() == [False, False, False, False, True]


def test_read_document_keeps_odd_line_breaks(tmp_path):
    path = tmp_path / "doc.txt"
    path.write_text("a\x0cb c\u2028d\r\n\n e  f\n", newline="")
    assert data.read_document(path) == ["a\x0cb", "c\u2028d", "e", "f"]


def test_load_eraser_empty_evidence_span(tmp_path):
    splits = base_splits()
    splits["test"] = [record("b.txt", "NEG", [[evidence("b.txt", 5, 5)]])]
    dataset = data.load_eraser(write_eraser(tmp_path / "tiny", splits=splits))
    assert not dataset.test[0].gold.any()


def break_json(splits):
    splits["val"] = json.dumps(splits["val"][0]) + "\n{not json\n"


def missing_document(splits):
    splits["test"][0] = record("zzz.txt", "NEG", [])


def end_outside(splits):
    splits["train"][0]["evidences"][1][0]["end_token"] = 99


def negative_start(splits):
    splits["train"][1]["evidences"][0][1]["start_token"] = -1


def unknown_label(splits):
    splits["val"][0]["classification"] = "MAYBE"


def missing_label(splits):
    del splits["train"][1]["classification"]


def empty_document(splits):
    splits["test"][0] = record("empty.txt", "NEG", [])


@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (break_json, ["val.jsonl line 2", "invalid JSON"]),
        (missing_document, ["test.jsonl line 1", "zzz.txt", "not found"]),
        (end_outside, ["train.jsonl line 1", "3:99", "6 words"]),
        (negative_start, ["train.jsonl line 2", "-1:3", "5 words"]),
        (unknown_label, ["val.jsonl line 1", "'MAYBE'", "['NEG', 'POS']"]),
        (missing_label, ["train.jsonl line 2", "'classification'"]),
        (empty_document, ["test.jsonl line 1", "empty.txt", "is empty"]),
    ],
)
def test_load_eraser_bad_files(tmp_path, corrupt, expected):
    splits = base_splits()
    corrupt(splits)
    folder = write_eraser(tmp_path / "tiny", docs={**DOCS, "empty.txt": "\n \n\n"}, splits=splits)
    with pytest.raises(DataError) as caught:
        data.load_eraser(folder)
    message = str(caught.value)
    assert str(folder) in message
    for part in expected:
        assert part in message


def test_load_eraser_missing_split(tmp_path):
    folder = write_eraser(tmp_path / "tiny")
    (folder / "test.jsonl").unlink()
    with pytest.raises(DataError, match="has no test.jsonl; pass --data-dir"):
        data.load_eraser(folder)


def test_load_eraser_single_label(tmp_path):
    splits = base_splits()
    splits["train"][1]["classification"] = "POS"
    with pytest.raises(DataError, match="at least two"):
        data.load_eraser(write_eraser(tmp_path / "tiny", splits=splits))


# ---------------------------------------------------------------- download and cache


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    """Return the movies folder fetched through the real download path from a file:// URL."""
    require_shared_data()
    cache = tmp_path_factory.mktemp("cache")
    return data.download_movies(cache, url=MOVIES_ARCHIVE.as_uri())


def test_download_real_archive(downloaded):
    assert downloaded.name == "movies"
    assert [path.name for path in downloaded.parent.iterdir()] == ["movies"]  # no staging left
    dataset = data.load_eraser(downloaded)
    assert [len(dataset.train), len(dataset.val), len(dataset.test)] == [1600, 200, 199]
    assert len(list((downloaded / "docs").iterdir())) == 2000


def test_download_present_is_noop(downloaded):
    unreachable = (downloaded.parent / "absent.tar.gz").as_uri()
    assert data.download_movies(downloaded.parent, url=unreachable) == downloaded


def test_find_movies_uses_cache(downloaded):
    assert data.find_movies(cache_dir=downloaded.parent, download=False) == downloaded


def test_download_corrupted_archive(tmp_path):
    require_shared_data()
    archive = bytearray(MOVIES_ARCHIVE.read_bytes())
    archive[len(archive) // 2] ^= 0xFF
    corrupted = tmp_path / "movies.tar.gz"
    corrupted.write_bytes(bytes(archive))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="checksum mismatch"):
        data.download_movies(cache, url=corrupted.as_uri())
    assert list(cache.iterdir()) == []


def test_download_interrupted_leaves_nothing(tmp_path, monkeypatch):
    require_shared_data()
    extract = data._extract

    def extract_then_interrupt(*args):
        extract(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "_extract", extract_then_interrupt)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        data.download_movies(cache, url=MOVIES_ARCHIVE.as_uri())
    assert list(cache.iterdir()) == []


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, content: bytes = b"x") -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
        return info, None
    info.size = len(content)
    return info, io.BytesIO(content)


def write_tar(path: Path, members: list[tuple]) -> str:
    """Write a .tar.gz of (TarInfo, file object) pairs; return its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for info, content in members:
            tar.addfile(info, content)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "member, reason",
    [
        (tar_member("../evil.txt"), "'..'"),
        (tar_member("movies/../../evil.txt"), "'..'"),
        (tar_member("/tmp/evil.txt"), "absolute path"),
        (tar_member("movies/link", tarfile.SYMTYPE), "not a regular file"),
    ],
)
def test_download_unsafe_member(tmp_path, member, reason):
    archive = tmp_path / "evil.tar.gz"
    checksum = write_tar(archive, [tar_member("movies/train.jsonl"), member])
    cache = tmp_path / "sub" / "cache"
    with pytest.raises(DataError, match="unsafe member") as caught:
        data.download_movies(cache, url=archive.as_uri(), sha256=checksum)
    assert reason in str(caught.value)
    assert list(cache.iterdir()) == []
    assert not (tmp_path / "sub" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_download_archive_without_movies(tmp_path):
    archive = tmp_path / "other.tar.gz"
    checksum = write_tar(archive, [tar_member("other/readme.txt")])
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="no complete movies/ folder"):
        data.download_movies(cache, url=archive.as_uri(), sha256=checksum)
    assert list(cache.iterdir()) == []


def test_download_offline_message(tmp_path):
    url = (tmp_path / "absent" / "movies.tar.gz").as_uri()
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as caught:
        data.download_movies(cache, url=url)
    assert url in str(caught.value)
    assert "--data-dir" in str(caught.value)
    assert list(cache.iterdir()) == []


def test_download_url_from_environment(tmp_path, monkeypatch):
    url = (tmp_path / "from-env.tar.gz").as_uri()
    monkeypatch.setenv("RATIONALE_MOVIES_URL", url)
    with pytest.raises(DataError, match=url):
        data.download_movies(tmp_path / "cache")


def test_find_movies_without_download(tmp_path):
    with pytest.raises(DataError) as caught:
        data.find_movies(cache_dir=tmp_path / "cache", download=False)
    assert data.MOVIES_URL in str(caught.value)
    assert "--data-dir" in str(caught.value)


def test_find_movies_data_dir(tmp_path):
    folder = write_eraser(tmp_path / "movies")
    assert data.find_movies(folder) == folder
    with pytest.raises(DataError, match=f"did you mean --data-dir {folder}"):
        data.find_movies(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        data.find_movies(tmp_path / "absent")


# ---------------------------------------------------------------- real movie reviews


@pytest.fixture(scope="module")
def movies():
    require_shared_data()
    return data.load_eraser(MOVIES_DIR)


def test_movies_counts(movies):
    assert movies.classes == ["NEG", "POS"]
    expected = {"train": (800, 800), "val": (100, 100), "test": (100, 99)}
    for split, (negative, positive) in expected.items():
        labels = [example.label for example in getattr(movies, split)]
        assert (labels.count(0), labels.count(1)) == (negative, positive), split


def test_movies_test_gold_coverage(movies):
    gold_words = sum(int(example.gold.sum()) for example in movies.test)
    words = sum(len(example.words) for example in movies.test)
    assert 0.29 <= gold_words / words <= 0.31


def test_movies_gold_matches_evidence(movies):
    """Each evidence's text equals its words, and gold is exactly the union of the spans."""
    for split in data.SPLITS:
        examples = {example.doc_id: example for example in getattr(movies, split)}
        for line in (MOVIES_DIR / f"{split}.jsonl").read_text().splitlines():
            annotation = json.loads(line)
            example = examples[annotation["annotation_id"]]
            inside = set()
            for group in annotation["evidences"]:
                for span in group:
                    words = example.words[span["start_token"] : span["end_token"]]
                    assert " ".join(words) == span["text"], (split, example.doc_id)
                    inside.update(range(span["start_token"], span["end_token"]))
            assert set(np.flatnonzero(example.gold)) == inside, (split, example.doc_id)


# ---------------------------------------------------------------- synthetic task


@pytest.fixture(scope="module")
def synthetic():
    return data.make_synthetic(seed=0)


def phrase_positions(words: list[str], phrases: list[str]) -> set[int]:
    """Return every position covered by an occurrence of one of the phrases (brute force)."""
    positions = set()
    for phrase in phrases:
        phrase_words = phrase.split()
        for start in range(len(words) - len(phrase_words) + 1):
            if words[start : start + len(phrase_words)] == phrase_words:
                positions.update(range(start, start + len(phrase_words)))
    return positions


def test_synthetic_deterministic(synthetic):
    again = data.make_synthetic(seed=0)
    other = data.make_synthetic(seed=1)
    for first, second in zip(synthetic.train + synthetic.test, again.train + again.test):
        assert first.words == second.words
        assert first.label == second.label
        assert np.array_equal(first.class_gold, second.class_gold)
    assert [e.words for e in synthetic.train] != [e.words for e in other.train]


def test_synthetic_shapes_and_classes(synthetic):
    assert synthetic.name == "synthetic"
    assert synthetic.classes == ["sports", "cooking", "weather"]
    assert [len(synthetic.train), len(synthetic.val), len(synthetic.test)] == [600, 150, 150]
    for split in data.SPLITS:
        labels = [example.label for example in getattr(synthetic, split)]
        assert [labels.count(c) for c in range(3)] == [len(labels) // 3] * 3
    for example in synthetic.train:
        assert 40 <= len(example.words) <= 125
        assert example.class_gold.shape == (3, len(example.words))
        assert example.class_gold.dtype == bool
        assert np.array_equal(example.gold, example.class_gold[example.label])
        assert all(word.isalpha() or word in {".", ","} for word in example.words)
    six = data.make_synthetic(n_train=12, n_val=6, n_test=6, n_classes=6)
    assert six.classes[3:] == ["music", "travel", "finance"]
    for bad in (1, 7):
        with pytest.raises(ValueError, match="n_classes"):
            data.make_synthetic(n_classes=bad)


def test_synthetic_phrases_are_gold(synthetic):
    six = data.make_synthetic(seed=3, n_train=60, n_val=0, n_test=0, n_classes=6)
    for dataset in (synthetic, six):
        for example in dataset.test + dataset.train[:150]:
            for c, name in enumerate(dataset.classes):
                found = phrase_positions(example.words, data.SYNTHETIC_PHRASES[name])
                assert set(np.flatnonzero(example.class_gold[c])) == found, (example.doc_id, name)


def test_synthetic_label_phrases_dominate(synthetic):
    with_other = 0
    for example in synthetic.train:
        counts = [0] * len(synthetic.classes)
        for c, name in enumerate(synthetic.classes):
            for phrase in data.SYNTHETIC_PHRASES[name]:
                words = phrase.split()
                counts[c] += sum(
                    example.words[i : i + len(words)] == words for i in range(len(example.words))
                )
        label_count = counts.pop(example.label)
        assert 2 <= label_count <= 4
        assert max(counts) < label_count
        with_other += sum(counts) > 0
    assert 0.2 * len(synthetic.train) < with_other < 0.8 * len(synthetic.train)


def test_synthetic_learnable_by_bag_of_words(synthetic):
    """A linear classifier on word counts, trained for 150 Adam steps, reaches 95% accuracy."""
    words = sorted({word for example in synthetic.train for word in example.words})
    vocabulary = {word: i for i, word in enumerate(words)}

    def word_counts(examples):
        counts = np.zeros((len(examples), len(vocabulary)), dtype=np.float32)  # (B, V)
        for row, example in enumerate(examples):
            for word in example.words:
                if word in vocabulary:
                    counts[row, vocabulary[word]] += 1
        return torch.from_numpy(counts)

    train_labels = torch.tensor([example.label for example in synthetic.train])
    test_labels = torch.tensor([example.label for example in synthetic.test])
    train_counts, test_counts = word_counts(synthetic.train), word_counts(synthetic.test)
    torch.manual_seed(0)
    model = torch.nn.Linear(len(vocabulary), len(synthetic.classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(train_counts), train_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(test_counts).argmax(dim=1) == test_labels).float().mean().item()
    assert accuracy >= 0.95


# ---------------------------------------------------------------- summary command


def test_cli_synthetic(capsys):
    assert data.main(["--dataset", "synthetic"]) == 0
    output = capsys.readouterr().out
    assert "dataset synthetic: 3 classes sports, cooking, weather" in output
    assert "sports=200 cooking=200 weather=200" in output


def test_cli_real_data_dir(capsys):
    require_shared_data()
    assert data.main(["--data-dir", str(MOVIES_DIR)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[:4] == ["train", "1600", "NEG=800", "POS=800"]
    assert lines[3].split()[:4] == ["val", "200", "NEG=100", "POS=100"]
    assert lines[4].split()[:4] == ["test", "199", "NEG=100", "POS=99"]
    assert lines[4].split()[-1] == "30.3%"


def test_cli_cache_without_download(downloaded, capsys):
    assert data.main(["--cache-dir", str(downloaded.parent), "--no-download"]) == 0
    assert "test        199" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    assert data.main(["--data-dir", str(tmp_path / "absent")]) == 1
    assert "--data-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data.main(["--dataset", "synthetic", "--data-dir", str(tmp_path)])


def test_cli_script_help():
    script = Path(data.__file__)
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "--data-dir" in result.stdout
