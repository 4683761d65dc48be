"""Tests for subwords.py: tokenizer, word alignment, windows and batches."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import data  # noqa: E402
import subwords  # noqa: E402
from subwords import CLS_ID, PAD_ID, UNK_ID, DataError  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MOVIES_DIR = SHARED_DATA / "movies"


def require_shared_data() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")


# ---------------------------------------------------------------- real movie reviews


@pytest.fixture(scope="module")
def movies():
    require_shared_data()
    return data.load_eraser(MOVIES_DIR)


@pytest.fixture(scope="module")
def movie_tokenizer(movies):
    return subwords.train_tokenizer([example.words for example in movies.train], vocab_size=8000)


@pytest.fixture(scope="module")
def movie_test_encodings(movies, movie_tokenizer):
    return subwords.encode_documents(movie_tokenizer, [example.words for example in movies.test])


def test_movies_alignment_round_trip(movies, movie_test_encodings):
    rng = np.random.default_rng(0)
    for example, (ids, word_index) in zip(movies.test, movie_test_encodings):
        n_words = len(example.words)
        assert len(ids) == len(word_index) >= n_words
        assert np.array_equal(np.unique(word_index), np.arange(n_words))
        assert (np.diff(word_index) >= 0).all()

        subword_gold = subwords.word_mask_to_subwords(example.gold, word_index)
        back = subwords.subword_scores_to_words(subword_gold.astype(float), word_index, n_words)
        assert np.array_equal(back == 1.0, example.gold), example.doc_id

        scores = rng.random((n_words, 2))
        spread = subwords.word_mask_to_subwords(scores, word_index)
        assert np.allclose(subwords.subword_scores_to_words(spread, word_index, n_words), scores)


def test_movies_encoding_matches_pretokenized(movies, movie_tokenizer, movie_test_encodings):
    """encode_documents equals the tokenizer's own pre-split encoding with its word ids."""
    documents = [example.words for example in movies.test]
    reference = movie_tokenizer.encode_batch(
        documents, is_pretokenized=True, add_special_tokens=False
    )
    for encoding, (ids, word_index) in zip(reference, movie_test_encodings):
        assert ids.tolist() == encoding.ids
        assert word_index.tolist() == encoding.word_ids


def test_movies_batch_matches_single_words(movies, movie_tokenizer, movie_test_encodings):
    """The batch encoding of a document equals encoding each of its words on its own."""
    for example, (ids, word_index) in list(zip(movies.test, movie_test_encodings))[:3]:
        for position, word in enumerate(example.words):
            alone = movie_tokenizer.encode([word], is_pretokenized=True, add_special_tokens=False)
            assert ids[word_index == position].tolist() == (alone.ids or [UNK_ID]), word


def test_movies_long_documents_windowed(movies, movie_test_encodings):
    rng = np.random.default_rng(1)
    lengths = [len(example.words) for example in movies.test]
    longest = np.argsort(lengths)[-3:]
    assert lengths[longest[-1]] > 2000
    for index in longest:
        ids, word_index = movie_test_encodings[index]
        windows = subwords.make_windows(ids, max_len=128, overlap=32)
        subword_mask = rng.random((len(ids), 2))  # (S, C)
        masks = [
            np.vstack([rng.random((1, 2)), subword_mask[w.start : w.start + len(w.ids) - 1]])
            for w in windows
        ]
        merged = subwords.merge_window_masks(windows, masks, len(ids))
        assert np.allclose(merged, subword_mask)
        scores = subwords.subword_scores_to_words(merged, word_index, lengths[index])
        assert scores.shape == (lengths[index], 2)


# ---------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def synthetic():
    return data.make_synthetic(seed=0)


@pytest.fixture(scope="module")
def tokenizer(synthetic):
    return subwords.train_tokenizer([example.words for example in synthetic.train], vocab_size=300)


def test_tokenizer_special_ids(tokenizer):
    for expected_id, token in enumerate(subwords.SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == expected_id
    assert (subwords.PAD_ID, subwords.UNK_ID, subwords.CLS_ID, subwords.MASK_ID) == (0, 1, 2, 3)
    assert tokenizer.get_vocab_size() <= 300


def test_tokenizer_lowercase_and_accents(tokenizer):
    plain, _ = subwords.encode_words(tokenizer, ["goal", "weather"])
    assert UNK_ID not in plain.tolist()
    for variant in (["GOAL", "Weather"], ["góal", "wéather"]):
        ids, _ = subwords.encode_words(tokenizer, variant)
        assert ids.tolist() == plain.tolist()


@pytest.mark.parametrize(
    "word",
    ["", " ", "\x00\x07", "\u200b", "😀", "中", "\ud800"],
)
def test_tokenizer_odd_word_is_one_unk(tokenizer, word):
    ids, word_index = subwords.encode_words(tokenizer, [word])
    assert ids.tolist() == [UNK_ID]
    assert word_index.tolist() == [0]


def test_tokenizer_unseen_character_inside_word(tokenizer):
    ids, word_index = subwords.encode_words(tokenizer, ["€uro"])
    assert ids[0] == UNK_ID
    assert UNK_ID not in ids[1:].tolist()
    assert tokenizer.decode(ids[1:].tolist()).replace(" ", "") == "uro"
    assert word_index.tolist() == [0] * len(ids)


def test_tokenizer_very_long_word(tokenizer):
    ids, word_index = subwords.encode_words(tokenizer, ["g" * 5000, "goal"])
    assert (word_index == 0).sum() >= 1
    assert UNK_ID not in ids[word_index == 0].tolist()
    assert tokenizer.decode(ids[word_index == 1].tolist()).replace(" ", "") == "goal"


def test_tokenizer_odd_words_in_document(tokenizer):
    words = ["the", "", "goal", "😀", "\t", "salt", "中文"]
    ids, word_index = subwords.encode_words(tokenizer, words)
    assert ids.dtype == np.int64
    assert word_index.dtype == np.int64
    assert (np.diff(word_index) >= 0).all()
    assert np.array_equal(np.unique(word_index), np.arange(len(words)))
    for position in (1, 3, 4):
        assert ids[word_index == position].tolist() == [UNK_ID]
    assert UNK_ID not in ids[word_index == 2].tolist()


def test_tokenizer_special_token_text(tokenizer):
    from tokenizers import Tokenizer

    reloaded = Tokenizer.from_str(tokenizer.to_str())  # loses encode_special_tokens
    for model in (tokenizer, reloaded):
        ids, word_index = subwords.encode_words(model, ["[MASK]", "[CLS]x", "[PAD]"])
        assert not set(ids.tolist()) & {subwords.PAD_ID, subwords.CLS_ID, subwords.MASK_ID}
        assert np.array_equal(np.unique(word_index), np.arange(3))


def test_tokenizer_empty_documents(tokenizer):
    ids, word_index = subwords.encode_words(tokenizer, [])
    assert ids.shape == word_index.shape == (0,)
    assert ids.dtype == np.int64
    assert subwords.encode_documents(tokenizer, []) == []


def test_tokenizer_save_load(tokenizer, tmp_path):
    words = ["The", "striker", "scored", "a", "late", "goal", "😀"]
    path = subwords.save_tokenizer(tokenizer, tmp_path / "model" / "tokenizer.json")
    assert path == tmp_path / "model" / "tokenizer.json"
    assert [item.name for item in path.parent.iterdir()] == ["tokenizer.json"]
    for location in (path, path.parent):
        loaded = subwords.load_tokenizer(location)
        assert loaded.encode_special_tokens
        original_ids, original_index = subwords.encode_words(tokenizer, words)
        reloaded_ids, reloaded_index = subwords.encode_words(loaded, words)
        assert np.array_equal(original_ids, reloaded_ids)
        assert np.array_equal(original_index, reloaded_index)
    assert subwords.save_tokenizer(tokenizer, tmp_path / "model") == path


def test_tokenizer_load_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        subwords.load_tokenizer(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{oops")
    with pytest.raises(DataError, match="not a valid tokenizer"):
        subwords.load_tokenizer(broken)
    from tokenizers import Tokenizer, models

    vocab = {"[UNK]": 0, "[PAD]": 1, "[CLS]": 2, "[MASK]": 3}
    Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")).save(str(tmp_path / "swapped.json"))
    with pytest.raises(DataError, match=r"maps \[PAD\] to id 1, expected 0"):
        subwords.load_tokenizer(tmp_path / "swapped.json")


def test_tokenizer_vocab_size_checked():
    with pytest.raises(ValueError, match="vocab_size"):
        subwords.train_tokenizer([["a"]], vocab_size=4)


# ---------------------------------------------------------------- word alignment by hand


def test_word_mask_to_subwords_by_hand():
    word_index = np.array([0, 0, 1, 2, 2])
    mask = subwords.word_mask_to_subwords(np.array([True, False, True]), word_index)
    assert mask.tolist() == [True, True, False, True, True]
    columns = subwords.word_mask_to_subwords(np.array([[1, 0], [0, 1], [1, 1]]), word_index)
    assert columns.tolist() == [[1, 0], [1, 0], [0, 1], [1, 1], [1, 1]]
    with pytest.raises(ValueError, match="word 2"):
        subwords.word_mask_to_subwords(np.array([True, False]), word_index)


def test_subword_scores_to_words_by_hand():
    word_index = np.array([0, 0, 1, 2, 2])
    scores = np.array([0.2, 0.4, 1.0, 0.0, 0.5])
    assert np.allclose(subwords.subword_scores_to_words(scores, word_index, 3), [0.3, 1.0, 0.25])
    two = subwords.subword_scores_to_words(np.stack([scores, 1 - scores], axis=1), word_index, 3)
    assert np.allclose(two, [[0.3, 0.7], [1.0, 0.0], [0.25, 0.75]])


def test_subword_scores_to_words_errors():
    with pytest.raises(ValueError, match="word 1 has no subword"):
        subwords.subword_scores_to_words(np.ones(2), np.array([0, 2]), 3)
    with pytest.raises(ValueError, match="rows"):
        subwords.subword_scores_to_words(np.ones(3), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="n_words is 2"):
        subwords.subword_scores_to_words(np.ones(3), np.array([0, 1, 2]), 2)


# ---------------------------------------------------------------- windows


WINDOW_CASES = [
    (n_subwords, max_len, overlap)
    for n_subwords in (0, 1, 2, 5, 9, 10, 11, 50, 257)
    for max_len in (2, 3, 6, 10, 64)
    for overlap in sorted({0, 1, (max_len - 1) // 2, max_len - 2})
    if overlap < max_len - 1
]


def test_make_windows_cover_document():
    for n_subwords, max_len, overlap in WINDOW_CASES:
        case = (n_subwords, max_len, overlap)
        ids = np.arange(n_subwords) + 10
        windows = subwords.make_windows(ids, max_len, overlap)
        covered = np.zeros(n_subwords, dtype=int)
        for window in windows:
            assert window.ids.dtype == np.int64
            assert window.ids[0] == CLS_ID, case
            assert 1 <= len(window.ids) <= max_len, case
            stop = window.start + len(window.ids) - 1
            assert window.ids[1:].tolist() == ids[window.start : stop].tolist(), case
            covered[window.start : window.start + len(window.ids) - 1] += 1
        assert (covered >= 1).all(), case
        assert windows[0].start == 0, case
        assert windows[-1].start + len(windows[-1].ids) - 1 == n_subwords, case
        for previous, following in zip(windows, windows[1:]):
            assert previous.start + len(previous.ids) - 1 - following.start == overlap, case
            assert len(previous.ids) == max_len, case


def test_make_windows_empty_document():
    windows = subwords.make_windows(np.array([], dtype=np.int64), max_len=8, overlap=2)
    assert len(windows) == 1
    assert windows[0].ids.tolist() == [CLS_ID]
    assert windows[0].start == 0


@pytest.mark.parametrize(
    "max_len, overlap, message",
    [(1, 0, "max_len must be at least 2"), (8, -1, "overlap must be"), (8, 7, "max_len - 2 = 6")],
)
def test_make_windows_invalid_sizes(max_len, overlap, message):
    with pytest.raises(ValueError, match=message):
        subwords.make_windows(np.arange(20), max_len, overlap)


def test_merge_constant_mask():
    for n_subwords, max_len, overlap in WINDOW_CASES:
        windows = subwords.make_windows(np.arange(n_subwords), max_len, overlap)
        masks = [np.full((len(w.ids), 3), [0.2, 0.5, 0.9]) for w in windows]
        merged = subwords.merge_window_masks(windows, masks, n_subwords)
        assert merged.shape == (n_subwords, 3)
        assert np.allclose(merged, [0.2, 0.5, 0.9]), (n_subwords, max_len, overlap)
        flat_masks = [np.full(len(w.ids), 0.7) for w in windows]
        flat = subwords.merge_window_masks(windows, flat_masks, n_subwords)
        assert flat.shape == (n_subwords,)
        assert np.allclose(flat, 0.7)


def test_merge_blend_by_hand():
    windows = subwords.make_windows(np.arange(7), max_len=6, overlap=3)
    assert [w.start for w in windows] == [0, 2]
    masks = [np.ones((6, 1)), np.zeros((6, 1))]
    merged = subwords.merge_window_masks(windows, masks, 7)
    assert np.allclose(merged[:, 0], [1, 1, 0.75, 0.5, 0.25, 0, 0])


def reference_blend(windows, masks, n_subwords):
    """Blend each position in two windows, weighting the earlier one (shared - j) / (shared + 1)."""
    merged = np.zeros((n_subwords, masks[0].shape[1]))
    for position in range(n_subwords):
        covering = [
            k for k, w in enumerate(windows) if w.start <= position < w.start + len(w.ids) - 1
        ]
        if len(covering) == 1:
            k = covering[0]
            merged[position] = masks[k][1 + position - windows[k].start]
            continue
        early, late = covering
        shared = windows[early].start + len(windows[early].ids) - 1 - windows[late].start
        weight = (shared - (position - windows[late].start)) / (shared + 1)
        merged[position] = (
            weight * masks[early][1 + position - windows[early].start]
            + (1 - weight) * masks[late][1 + position - windows[late].start]
        )
    return merged


def test_merge_matches_reference_blend():
    rng = np.random.default_rng(2)
    for n_subwords, max_len, overlap in WINDOW_CASES:
        if overlap > (max_len - 1) // 2:  # three windows overlap; the reference covers two
            continue
        windows = subwords.make_windows(np.arange(n_subwords), max_len, overlap)
        masks = [rng.random((len(w.ids), 2)) for w in windows]
        expected = reference_blend(windows, masks, n_subwords)
        assert np.allclose(subwords.merge_window_masks(windows, masks, n_subwords), expected)


def test_merge_single_window_unchanged():
    windows = subwords.make_windows(np.arange(4), max_len=10, overlap=2)
    mask = np.random.default_rng(3).random((5, 2))
    assert np.array_equal(subwords.merge_window_masks(windows, [mask], 4), mask[1:])


def test_merge_window_masks_errors():
    windows = subwords.make_windows(np.arange(12), max_len=6, overlap=1)
    masks = [np.zeros((len(w.ids), 2)) for w in windows]
    with pytest.raises(ValueError, match="one mask per window"):
        subwords.merge_window_masks(windows, masks[:-1], 12)
    with pytest.raises(ValueError, match="beyond n_subwords=10"):
        subwords.merge_window_masks(windows, masks, 10)
    with pytest.raises(ValueError, match="subword 12 is in no window"):
        subwords.merge_window_masks(windows, masks, 14)


def test_merge_window_logits():
    logits = np.array([[1.0, -1.0, 0.0], [3.0, 1.0, 0.5]])
    assert np.allclose(subwords.merge_window_logits(logits), [2.0, 0.0, 0.25])
    assert np.allclose(subwords.merge_window_logits(logits[:1]), logits[0])
    with pytest.raises(ValueError, match="shape"):
        subwords.merge_window_logits(np.zeros(3))


# ---------------------------------------------------------------- batches


def test_collate_pads_and_lengths():
    ids, lengths = subwords.collate([np.array([5, 6, 7]), np.array([8]), np.array([], dtype=np.int64)])
    assert ids.dtype == torch.long
    assert lengths.dtype == torch.long
    assert ids.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID], [PAD_ID, PAD_ID, PAD_ID]]
    assert lengths.tolist() == [3, 1, 0]
    single, single_lengths = subwords.collate([np.array([CLS_ID, 9])])
    assert single.tolist() == [[CLS_ID, 9]]
    assert single_lengths.tolist() == [2]
    with pytest.raises(ValueError, match="at least one"):
        subwords.collate([])


def test_random_window_offsets():
    ids = np.arange(12) + 10
    rng = np.random.default_rng(4)
    starts = set()
    for _ in range(500):
        window = subwords.random_window(ids, max_len=6, rng=rng)
        assert window.dtype == np.int64
        assert window[0] == CLS_ID
        assert len(window) == 6
        start = int(window[1]) - 10
        assert window[1:].tolist() == ids[start : start + 5].tolist()
        starts.add(start)
    assert starts == set(range(8))


def test_random_window_short_document():
    rng = np.random.default_rng(5)
    assert subwords.random_window(np.array([7, 8]), max_len=6, rng=rng).tolist() == [CLS_ID, 7, 8]
    assert subwords.random_window(np.array([], dtype=np.int64), max_len=6, rng=rng).tolist() == [CLS_ID]
    assert subwords.random_window(np.arange(5), max_len=6, rng=rng).tolist() == [CLS_ID, 0, 1, 2, 3, 4]
