"""Tests of the model-independent metrics in metrics.py.

Expected values are worked out by hand in the comments, or come from brute-force
computations written here independently of metrics.py.
"""

import json
import math
import os

import numpy as np
import pytest

from metrics import (FRACTIONS, accuracy, auprc, average_rationale_metrics, eraser_auprc,
                      eraser_record, eraser_scores, faithfulness, iou_f1, macro_f1,
                      rationale_metrics, read_eraser_predictions, spans, token_f1,
                      top_fraction_mask, top_k_mask, write_eraser_predictions)

T, F = True, False


# ---- Brute-force references --------------------------------------------------------------

def precision_recall_by_loops(scores, gold):
    """List (recall, precision) at each distinct threshold, highest first, by counting."""
    positives = sum(gold)
    points = []
    for threshold in sorted(set(scores), reverse=True):
        true_positives = false_positives = 0
        for score, is_gold in zip(scores, gold):
            if score >= threshold:
                if is_gold:
                    true_positives += 1
                else:
                    false_positives += 1
        points.append((true_positives / positives,
                       true_positives / (true_positives + false_positives)))
    return points


def brute_force_average_precision(scores, gold):
    total, previous_recall = 0.0, 0.0
    for recall, precision in precision_recall_by_loops(scores, gold):
        total += (recall - previous_recall) * precision
        previous_recall = recall
    return total


def brute_force_trapezoid_auprc(scores, gold):
    area, previous = 0.0, (0.0, 1.0)
    for recall, precision in precision_recall_by_loops(scores, gold):
        area += (recall - previous[0]) * (precision + previous[1]) / 2
        previous = (recall, precision)
    return area


def random_document(rng, length):
    """Return scores with many ties (5 levels) and a gold mask with at least one True."""
    scores = rng.integers(0, 5, size=length) / 4
    gold = rng.random(length) < 0.3
    gold[rng.integers(length)] = True
    return scores, gold


# The running example: 4 words, ranked by score as word 0, 2, 3, 1.
EXAMPLE_SCORES = np.array([0.9, 0.1, 0.8, 0.3])
EXAMPLE_GOLD = np.array([T, F, F, T])


# ---- AUPRC ------------------------------------------------------------------------------

def test_auprc_hand_case():
    # threshold 0.9: {0}        TP 1, P 1/1, R 1/2
    # threshold 0.8: {0,2}      TP 1, P 1/2, R 1/2
    # threshold 0.3: {0,2,3}    TP 2, P 2/3, R 1
    # threshold 0.1: all        TP 2, P 2/4, R 1
    # AP = 1/2 * 1 + 0 * 1/2 + 1/2 * 2/3 + 0 = 5/6
    assert auprc(EXAMPLE_SCORES, EXAMPLE_GOLD) == pytest.approx(5 / 6)


def test_auprc_ties_form_one_threshold():
    # threshold 0.5: words 0,1,2 enter together, TP 1, P 1/3, R 1/2
    # threshold 0.2: all,                        TP 2, P 1/2, R 1
    # AP = 1/2 * 1/3 + 1/2 * 1/2 = 5/12. Ranking the tied gold word first would give 3/4.
    scores = np.array([0.5, 0.5, 0.5, 0.2])
    assert auprc(scores, np.array([T, F, F, T])) == pytest.approx(5 / 12)
    assert auprc(scores, np.array([F, F, T, T])) == pytest.approx(5 / 12)


def test_auprc_empty_gold_is_nan():
    assert math.isnan(auprc(EXAMPLE_SCORES, np.zeros(4, dtype=bool)))
    assert math.isnan(auprc(np.array([]), np.array([], dtype=bool)))


def test_auprc_full_gold_is_one():
    # Every threshold has precision 1.
    assert auprc(EXAMPLE_SCORES, np.ones(4, dtype=bool)) == 1.0


def test_auprc_one_word_documents():
    assert auprc(np.array([0.3]), np.array([T])) == 1.0
    assert math.isnan(auprc(np.array([0.3]), np.array([F])))


def test_auprc_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(300):
        scores, gold = random_document(rng, int(rng.integers(1, 40)))
        expected = brute_force_average_precision(scores.tolist(), gold.tolist())
        assert auprc(scores, gold) == pytest.approx(expected, abs=1e-12)


def test_auprc_rejects_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        auprc(np.array([0.1, np.nan]), np.array([T, F]))
    with pytest.raises(ValueError, match="shape"):
        auprc(np.array([0.1, 0.2]), np.array([T, F, F]))
    with pytest.raises(ValueError, match="0 and 1"):
        auprc(np.array([0.1, 0.2]), np.array([0.5, 1.0]))


# ---- Word selection and spans -------------------------------------------------------------

def test_top_fraction_ties_keep_earlier_word():
    # ceil(0.4 * 5) = 2 words; words 1, 2, 3 tie at 0.7, so words 1 and 2 are kept.
    mask = top_fraction_mask(np.array([0.2, 0.7, 0.7, 0.7, 0.1]), 0.4)
    assert mask.tolist() == [F, T, T, F, F]


def test_top_fraction_ignores_float_noise():
    # 0.15 * 20 is 3.0000000000000004 in floating point, but exactly 3 words are meant.
    assert top_fraction_mask(np.arange(20.0), 0.15).sum() == 3
    # ceil(0.05 * 10) = ceil(0.5) = 1 and ceil(0.95 * 10) = ceil(9.5) = 10.
    assert top_fraction_mask(np.arange(10.0), 0.05).sum() == 1
    assert top_fraction_mask(np.arange(10.0), 0.95).sum() == 10


def test_top_fraction_matches_sorted_brute_force():
    rng = np.random.default_rng(1)
    for length in range(0, 121):
        scores = rng.integers(0, 6, size=length) / 5
        ranked = sorted(range(length), key=lambda i: (-scores[i], i))
        for percent in range(5, 100, 5):
            count = -(-percent * length // 100)  # exact integer ceil(percent * length / 100)
            expected = np.zeros(length, dtype=bool)
            expected[ranked[:count]] = True
            mask = top_fraction_mask(scores, percent / 100)
            assert mask.tolist() == expected.tolist(), (length, percent)


def test_fractions_are_the_nineteen_steps():
    assert len(FRACTIONS) == 19
    assert FRACTIONS == tuple(round(0.05 * step, 2) for step in range(1, 20))


def test_top_k_mask_bounds():
    assert top_k_mask(EXAMPLE_SCORES, 0).tolist() == [F, F, F, F]
    assert top_k_mask(EXAMPLE_SCORES, 2).tolist() == [T, F, T, F]
    assert top_k_mask(EXAMPLE_SCORES, 4).tolist() == [T, T, T, T]
    with pytest.raises(ValueError, match="k=5"):
        top_k_mask(EXAMPLE_SCORES, 5)


def test_spans_cases():
    assert spans(np.array([], dtype=bool)) == []
    assert spans(np.array([F, F, F])) == []
    assert spans(np.array([T, T, T])) == [(0, 3)]
    assert spans(np.array([T])) == [(0, 1)]
    assert spans(np.array([T, F, T, T, F, F, T])) == [(0, 1), (2, 4), (6, 7)]


# ---- Token-F1 and IoU-F1 ------------------------------------------------------------------

def test_token_f1_hand_cases():
    gold = np.array([F, T, T, T, F])
    # predicted {0,1,2}: TP 2, P 2/3, R 2/3, F1 2/3
    assert token_f1(np.array([T, T, T, F, F]), gold) == pytest.approx(2 / 3)
    # predicted {1}: TP 1, P 1, R 1/3, F1 = 2 * 1/3 / (4/3) = 1/2
    assert token_f1(np.array([F, T, F, F, F]), gold) == pytest.approx(0.5)
    assert token_f1(gold, gold) == 1.0
    assert token_f1(np.zeros(5, dtype=bool), gold) == 0.0


def test_token_f1_empty_gold_is_zero():
    assert token_f1(np.array([T, F]), np.array([F, F])) == 0.0
    assert token_f1(np.array([F, F]), np.array([F, F])) == 0.0


def test_iou_f1_soft_hand_case():
    # gold spans (1,4), (6,8); predicted spans (0,2), (6,7)
    # IoU((0,2),(1,4)) = 1/4, IoU((6,7),(6,8)) = 1/2, cross pairs 0
    # precision = (1/4 + 1/2) / 2 = 3/8, recall = (1/4 + 1/2) / 2 = 3/8, F1 = 3/8
    gold = np.array([F, T, T, T, F, F, T, T])
    pred = np.array([T, T, F, F, F, F, T, F])
    assert iou_f1(pred, gold) == pytest.approx(3 / 8)


def test_iou_f1_soft_asymmetric_case():
    # gold spans (0,2), (4,6); predicted span (0,6)
    # IoU((0,6),(0,2)) = 2/6 = 1/3, IoU((0,6),(4,6)) = 1/3
    # precision = max = 1/3 (one predicted span), recall = mean(1/3, 1/3) = 1/3
    gold = np.array([T, T, F, F, T, T])
    assert iou_f1(np.ones(6, dtype=bool), gold) == pytest.approx(1 / 3)
    # predicted (0,2) only: precision 1, recall (1 + 0) / 2 = 1/2, F1 = 2/3
    assert iou_f1(np.array([T, T, F, F, F, F]), gold) == pytest.approx(2 / 3)


def test_iou_f1_matching_needs_more_than_half():
    gold = np.array([T, T, T, T, F, F])  # span (0,4)
    # predicted (0,2): IoU 2/4 = 0.5 exactly, which does not exceed 0.5
    assert iou_f1(np.array([T, T, F, F, F, F]), gold, match_threshold=0.5) == 0.0
    # predicted (0,3): IoU 3/4 matches; P 1, R 1
    assert iou_f1(np.array([T, T, T, F, F, F]), gold, match_threshold=0.5) == 1.0
    # predicted (0,3) and (5,6): P 1/2, R 1/1, F1 = 2/3
    assert iou_f1(np.array([T, T, T, F, F, T]), gold, match_threshold=0.5) == pytest.approx(2 / 3)


def test_iou_f1_without_spans_is_zero():
    assert iou_f1(np.zeros(3, dtype=bool), np.array([T, F, F])) == 0.0
    assert iou_f1(np.array([T, F, F]), np.zeros(3, dtype=bool)) == 0.0


# ---- Per-document metrics -----------------------------------------------------------------

def test_rationale_metrics_hand_case():
    # Word counts ceil(q * 4) over the 19 fractions: k=1 for q 0.05..0.25 (5 values),
    # k=2 for 0.30..0.50 (5), k=3 for 0.55..0.75 (5), k=4 for 0.80..0.95 (4).
    # Kept words by rank: {0}, {0,2}, {0,2,3}, all. Gold {0,3}, gold spans (0,1), (3,4).
    # Token F1:  k=1 P 1, R 1/2 -> 2/3;  k=2 P 1/2, R 1/2 -> 1/2;
    #            k=3 P 2/3, R 1 -> 4/5;  k=4 P 1/2, R 1 -> 2/3
    #   mean = (5 * 2/3 + 5 * 1/2 + 5 * 4/5 + 4 * 2/3) / 19 = 12.5 / 19
    # D-Token-F1: k = 2 gold words -> {0,2} -> 1/2
    # IoU-F1:    k=1 spans (0,1): P 1, R (1 + 0)/2 -> 2/3
    #            k=2 spans (0,1),(2,3): P (1 + 0)/2, R (1 + 0)/2 -> 1/2
    #            k=3 spans (0,1),(2,4): IoU((2,4),(3,4)) = 1/2, P (1 + 1/2)/2 = 3/4,
    #                R (1 + 1/2)/2 = 3/4 -> 3/4
    #            k=4 span (0,4): IoU 1/4 with each gold span, P 1/4, R 1/4 -> 1/4
    #   mean = (5 * 2/3 + 5 * 1/2 + 5 * 3/4 + 4 * 1/4) / 19 = (127/12) / 19
    # D-IoU-F1: spans (0,1),(2,3); (0,1) matches gold (0,1) with IoU 1: P 1/2, R 1/2 -> 1/2
    metrics = rationale_metrics(EXAMPLE_SCORES, EXAMPLE_GOLD)
    assert metrics["auprc"] == pytest.approx(5 / 6)
    assert metrics["token_f1"] == pytest.approx(12.5 / 19)
    assert metrics["d_token_f1"] == pytest.approx(0.5)
    assert metrics["iou_f1"] == pytest.approx(127 / 12 / 19)
    assert metrics["d_iou_f1"] == pytest.approx(0.5)


def test_rationale_metrics_empty_gold_is_nan():
    metrics = rationale_metrics(EXAMPLE_SCORES, np.zeros(4, dtype=bool))
    assert set(metrics) == {"auprc", "token_f1", "d_token_f1", "iou_f1", "d_iou_f1"}
    for name, value in metrics.items():
        assert math.isnan(value), name


def test_rationale_metrics_full_gold():
    # Every kept word is gold: token F1 at k words of 4 is 2 * (k/4) / (1 + k/4) = 2k / (4 + k).
    #   k=1: 2/5, k=2: 2/3, k=3: 6/7, k=4: 1
    # Token-F1 = (5 * 2/5 + 5 * 2/3 + 5 * 6/7 + 4 * 1) / 19
    # IoU-F1: one gold span (0,4). k=1: span (0,1) IoU 1/4 -> 1/4.
    #   k=2 spans (0,1),(2,3): P 1/4, R 1/4 -> 1/4. k=3 spans (0,1),(2,4): IoU 1/4 and 2/4,
    #   P 3/8, R 2/4 (best) -> 2 * 3/8 * 1/2 / (7/8) = 3/7. k=4: 1
    # IoU-F1 = (5 * 1/4 + 5 * 1/4 + 5 * 3/7 + 4 * 1) / 19
    metrics = rationale_metrics(EXAMPLE_SCORES, np.ones(4, dtype=bool))
    assert metrics["auprc"] == 1.0
    assert metrics["token_f1"] == pytest.approx((2 + 10 / 3 + 30 / 7 + 4) / 19)
    assert metrics["d_token_f1"] == 1.0
    assert metrics["iou_f1"] == pytest.approx((1.25 + 1.25 + 15 / 7 + 4) / 19)
    assert metrics["d_iou_f1"] == 1.0


def test_rationale_metrics_one_word_document():
    # Every fraction keeps the single word, which is the whole gold rationale.
    assert rationale_metrics(np.array([0.2]), np.array([T])) == {
        "auprc": 1.0, "token_f1": 1.0, "d_token_f1": 1.0, "iou_f1": 1.0, "d_iou_f1": 1.0}
    assert all(math.isnan(v) for v in rationale_metrics(np.array([0.2]), np.array([F])).values())


def test_average_rationale_metrics_skips_empty_gold():
    # Mean of the running example and a one-word document (all 1); the empty-gold one is left out.
    averaged = average_rationale_metrics(
        [EXAMPLE_SCORES, np.array([0.2]), np.array([0.5, 0.4])],
        [EXAMPLE_GOLD, np.array([T]), np.array([F, F])])
    assert averaged["auprc"] == pytest.approx((5 / 6 + 1) / 2)
    assert averaged["token_f1"] == pytest.approx((12.5 / 19 + 1) / 2)
    assert averaged["d_iou_f1"] == pytest.approx((0.5 + 1) / 2)


def test_average_rationale_metrics_all_empty_is_nan():
    averaged = average_rationale_metrics([np.array([0.5])], [np.array([F])])
    assert all(math.isnan(value) for value in averaged.values())
    with pytest.raises(ValueError, match="2 score arrays but 1 gold"):
        average_rationale_metrics([EXAMPLE_SCORES, EXAMPLE_SCORES], [EXAMPLE_GOLD])


# ---- Faithfulness -------------------------------------------------------------------------

def test_faithfulness_toy_model():
    # Toy model: p(gold class | kept words) = 0.2 + sum of word values of the kept words,
    # with values [0.4, 0.0, 0.3, 0.1], so the full document gives 1.0.
    # Ranking 0, 2, 3, 1 and counts k = 1 (5 fractions), 2 (5), 3 (5), 4 (4).
    # Sufficiency, keep top-k:   k=1 0.6 -> drop 0.4; k=2 0.9 -> 0.1; k=3 1.0 -> 0; k=4 -> 0
    #   mean = (5 * 0.4 + 5 * 0.1) / 19 = 2.5 / 19
    # Comprehensiveness, keep the rest: k=1 {1,2,3} 0.6 -> 0.4; k=2 {1,3} 0.3 -> 0.7;
    #   k=3 {1} 0.2 -> 0.8; k=4 {} 0.2 -> 0.8
    #   mean = (5 * 0.4 + 5 * 0.7 + 5 * 0.8 + 4 * 0.8) / 19 = 12.7 / 19
    values = np.array([0.4, 0.0, 0.3, 0.1])
    calls = []

    def gold_class_probability(keep):
        calls.append(keep.copy())
        return 0.2 + keep.astype(float) @ values

    result = faithfulness(EXAMPLE_SCORES, gold_class_probability, full_probability=1.0)
    assert result["sufficiency"] == pytest.approx(2.5 / 19)
    assert result["comprehensiveness"] == pytest.approx(12.7 / 19)
    assert len(calls) == 1
    assert calls[0].shape == (38, 4)
    assert calls[0].dtype == bool
    assert (calls[0][:19] ^ calls[0][19:]).all()  # second half is the complement


def test_faithfulness_one_word_document():
    # The single word is always kept: sufficiency gets the full document, comprehensiveness
    # an empty one.
    def probability(keep):
        return np.where(keep[:, 0], 0.9, 0.5)

    result = faithfulness(np.array([0.7]), probability, full_probability=0.9)
    assert result["sufficiency"] == pytest.approx(0.0)
    assert result["comprehensiveness"] == pytest.approx(0.4)


def test_faithfulness_rejects_wrong_output_shape():
    with pytest.raises(ValueError, match=r"shape \(38,\)"):
        faithfulness(EXAMPLE_SCORES, lambda keep: np.zeros(19), full_probability=1.0)
    with pytest.raises(ValueError, match="0 words"):
        faithfulness(np.array([]), lambda keep: np.zeros(38), full_probability=1.0)


# ---- Classification ------------------------------------------------------------------------

def test_accuracy_hand_case():
    assert accuracy([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75
    with pytest.raises(ValueError, match="shape"):
        accuracy([0, 1], [0, 1, 1])


def test_macro_f1_hand_case():
    # labels [0,0,1,1,2], predicted [0,1,1,1,0]
    # class 0: TP 1, FP 1, FN 1 -> 2/4;  class 1: TP 2, FP 1, FN 0 -> 4/5;
    # class 2: TP 0, FP 0, FN 1 -> 0;    mean = (1/2 + 4/5 + 0) / 3 = 13/30
    assert macro_f1([0, 1, 1, 1, 0], [0, 0, 1, 1, 2], n_classes=3) == pytest.approx(13 / 30)


def test_macro_f1_leaves_out_absent_class():
    # Class 2 never occurs: mean over classes 0 and 1 only, both perfect.
    assert macro_f1([0, 1], [0, 1], n_classes=3) == 1.0
    with pytest.raises(ValueError, match="outside"):
        macro_f1([0, 3], [0, 1], n_classes=3)


# ---- ERASER export ------------------------------------------------------------------------

def test_eraser_record_fields():
    record = eraser_record("negR_000.txt", ["NEG", "POS"], np.array([0.3, 0.7]),
                           np.array([0.5, 0.9, 0.2, 0.49, 0.6, 0.6]))
    assert record["annotation_id"] == "negR_000.txt"
    assert record["classification"] == "POS"
    assert record["classification_scores"] == {"NEG": pytest.approx(0.3), "POS": pytest.approx(0.7)}
    rationale, = record["rationales"]
    assert rationale["docid"] == "negR_000.txt"
    # Scores >= 0.5: words 0, 1 and 4, 5 (0.49 is below the threshold).
    assert rationale["hard_rationale_predictions"] == [
        {"start_token": 0, "end_token": 2}, {"start_token": 4, "end_token": 6}]
    assert rationale["soft_rationale_predictions"] == [0.5, 0.9, 0.2, 0.49, 0.6, 0.6]
    json.dumps(record)  # plain Python types only


def test_eraser_record_rejects_bad_probabilities():
    with pytest.raises(ValueError, match="sum to"):
        eraser_record("d", ["NEG", "POS"], np.array([0.3, 0.3]), np.array([0.1]))
    with pytest.raises(ValueError, match="3 probabilities for 2 classes"):
        eraser_record("d", ["NEG", "POS"], np.array([0.2, 0.3, 0.5]), np.array([0.1]))


def test_eraser_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    lengths = {f"doc_{i}.txt": int(rng.integers(1, 60)) for i in range(8)}
    records = []
    for docid, length in lengths.items():
        scores = rng.random(length).astype(np.float32)
        probability = float(rng.random())
        records.append(eraser_record(docid, ["NEG", "POS"],
                                     np.array([1 - probability, probability]), scores))
    path = tmp_path / "predictions.jsonl"
    write_eraser_predictions(path, records)
    read = read_eraser_predictions(path, document_lengths=lengths)
    assert read == records
    for record in read:
        rationale, = record["rationales"]
        length = lengths[rationale["docid"]]
        soft = np.array(rationale["soft_rationale_predictions"])
        assert len(soft) == length
        for span in rationale["hard_rationale_predictions"]:
            assert 0 <= span["start_token"] < span["end_token"] <= length
        expected = [{"start_token": s, "end_token": e} for s, e in spans(soft >= 0.5)]
        assert rationale["hard_rationale_predictions"] == expected
    assert os.listdir(tmp_path) == ["predictions.jsonl"]  # no temporary file left


def test_write_eraser_invalid_record_keeps_file(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text("old\n")
    with pytest.raises(ValueError, match="annotation_id"):
        write_eraser_predictions(path, [{"rationales": []}])
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["predictions.jsonl"]


GOOD_LINE = json.dumps(eraser_record("a.txt", ["NEG", "POS"], np.array([0.4, 0.6]),
                                     np.array([0.9, 0.8, 0.1])))  # hard span (0,2), 3 words
OTHER_LINE = GOOD_LINE.replace('"a.txt"', '"b.txt"')


@pytest.mark.parametrize("bad_line, message", [
    ('{"annotation_id": "b.txt", ', "Expecting"),
    (json.dumps({"annotation_id": "b.txt", "classification": "POS",
                 "classification_scores": {"POS": 1.0}}), "rationales"),
    (GOOD_LINE, "annotation_id a.txt appears twice"),
    (OTHER_LINE.replace('"end_token": 2', '"end_token": 7'), "ends after the last word"),
    (OTHER_LINE.replace('"start_token": 0', '"start_token": 2'), "start_token < end_token"),
    (OTHER_LINE.replace('"classification": "POS"', '"classification": "MAYBE"'),
     "'classification' must name a key"),
    (OTHER_LINE.replace('"POS": 0.6', '"POS": "high"'), "finite numbers"),
    (OTHER_LINE.replace('[0.9, 0.8, 0.1]', '[0.9, NaN, 0.1]'), "list of finite numbers"),
])
def test_eraser_read_bad_file_names_line(tmp_path, bad_line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(GOOD_LINE + "\n" + bad_line + "\n")
    with pytest.raises(ValueError) as error:
        read_eraser_predictions(path)
    assert f"{path}, line 2: " in str(error.value)
    assert message in str(error.value)


def test_eraser_read_checks_document_lengths(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(GOOD_LINE + "\n")
    assert len(read_eraser_predictions(path, {"a.txt": 3})) == 1
    with pytest.raises(ValueError, match=r"line 1: .*3 scores for a document of 5 words"):
        read_eraser_predictions(path, {"a.txt": 5})
    with pytest.raises(ValueError, match="line 1: document a.txt is not among"):
        read_eraser_predictions(path, {"other.txt": 3})


def test_eraser_read_rejects_overlapping_spans(tmp_path):
    record = json.loads(GOOD_LINE)
    record["rationales"][0]["hard_rationale_predictions"] = [
        {"start_token": 0, "end_token": 2}, {"start_token": 1, "end_token": 3}]
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="line 1: .*overlaps"):
        read_eraser_predictions(path)


# ---- ERASER scores ------------------------------------------------------------------------

def eraser_hand_case():
    """Three documents whose ERASER scores are worked out in test_eraser_scores_hand_case."""
    gold = {"A": np.array([F, T, T, T, F, F]),  # span (1,4)
            "B": np.array([T, T, F, F]),        # span (0,2)
            "C": np.array([T, T, T])}           # span (0,3)
    soft = {"A": [0.1, 0.9, 0.6, 0.2, 0.7, 0.55],  # hard spans (1,3), (4,6)
            "B": [0.4, 0.3, 0.2, 0.1],            # no hard span
            "C": [0.9, 0.9, 0.9]}                 # hard span (0,3)
    records = [eraser_record(docid, ["NEG", "POS"], np.array([0.5, 0.5]), np.array(scores))
               for docid, scores in soft.items()]
    return records, gold


def test_eraser_scores_hand_case():
    # Tokens:  A pred {1,2,4,5}, gold {1,2,3}: overlap 2, P 1/2, R 2/3,
    #            F1 = 2 * 1/2 * 2/3 / (7/6) = 4/7
    #          B pred {}, gold {0,1}: P 0, R 0, F1 0
    #          C pred = gold = {0,1,2}: P R F1 1
    #   macro P = (1/2 + 0 + 1) / 3 = 1/2, R = (2/3 + 0 + 1) / 3 = 5/9,
    #         F1 = mean of F1s = (4/7 + 0 + 1) / 3 = 11/21 (F1 of the means would be 10/19)
    #   micro: overlap 5, predicted 7, gold 8 -> P 5/7, R 5/8, F1 = (50/56) / (75/56) = 2/3
    # IOU:     A: IoU((1,3),(1,4)) = 2/3 >= 0.5 is a TP, (4,6) is not: TP 1 of 2 pred, 1 gold
    #          B: 0 predicted spans, 1 gold.  C: IoU 1, TP 1 of 1 pred, 1 gold
    #   macro P = mean over A, C (B has no prediction) = (1/2 + 1) / 2 = 3/4
    #   macro R = mean over A, B, C = (1 + 0 + 1) / 3 = 2/3, F1 = 2 * 3/4 * 2/3 / (17/12) = 12/17
    #   micro: TP 2, predicted 3, gold 3 -> F1 2/3
    # AUPRC (trapezoid): A, sorted .9T .7F .6T .55F .2T .1F, 3 gold words:
    #   points (R, P): (0,1) (1/3,1) (1/3,1/2) (2/3,2/3) (2/3,1/2) (1,3/5) (1,1/2)
    #   area = 1/3 * 1 + 0 + 1/3 * (1/2 + 2/3)/2 + 0 + 1/3 * (1/2 + 3/5)/2
    #        = 60/180 + 35/180 + 33/180 = 32/45
    #   B: (0,1) (1/2,1) (1,1) -> 1.  C: (0,1) (1,1) -> 1.  mean = (32/45 + 2) / 3 = 122/135
    records, gold = eraser_hand_case()
    scores = eraser_scores(records, gold)
    assert scores["token_precision"] == pytest.approx(1 / 2)
    assert scores["token_recall"] == pytest.approx(5 / 9)
    assert scores["token_f1"] == pytest.approx(11 / 21)
    assert scores["token_f1_micro"] == pytest.approx(2 / 3)
    assert scores["iou_precision"] == pytest.approx(3 / 4)
    assert scores["iou_recall"] == pytest.approx(2 / 3)
    assert scores["iou_f1"] == pytest.approx(12 / 17)
    assert scores["iou_f1_micro"] == pytest.approx(2 / 3)
    assert scores["auprc"] == pytest.approx(122 / 135)


def test_eraser_scores_from_written_file(tmp_path):
    records, gold = eraser_hand_case()
    path = tmp_path / "predictions.jsonl"
    write_eraser_predictions(path, records)
    lengths = {docid: len(mask) for docid, mask in gold.items()}
    read = read_eraser_predictions(path, document_lengths=lengths)
    assert eraser_scores(read, gold) == eraser_scores(records, gold)


def test_eraser_iou_match_at_exactly_half():
    # Gold span (0,4), predicted span (0,2): IoU 2/4 = 0.5 counts in ERASER (>= 0.5),
    # so P 1, R 1, F1 1. The D-IoU-F1 of the other protocol needs IoU > 0.5.
    gold = {"d": np.array([T, T, T, T, F])}
    record = eraser_record("d", ["NEG", "POS"], np.array([0.5, 0.5]),
                           np.array([0.9, 0.9, 0.1, 0.1, 0.1]))
    assert eraser_scores([record], gold)["iou_f1"] == 1.0
    assert iou_f1(np.array([T, T, F, F, F]), gold["d"], match_threshold=0.5) == 0.0


def test_eraser_scores_missing_prediction_scores_zero():
    # Document E has gold words but no record: it adds a zero to token macro F1 and IOU recall.
    records, gold = eraser_hand_case()
    gold["E"] = np.array([T, F])
    scores = eraser_scores(records, gold)
    assert scores["token_f1"] == pytest.approx((4 / 7 + 0 + 1 + 0) / 4)
    assert scores["iou_recall"] == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert scores["auprc"] == pytest.approx(122 / 135)  # soft scores exist only for A, B, C


def test_eraser_scores_reject_unknown_document():
    records, gold = eraser_hand_case()
    del gold["A"]
    with pytest.raises(ValueError, match="no gold mask for document A"):
        eraser_scores(records, gold)


def test_eraser_auprc_matches_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(300):
        scores, gold = random_document(rng, int(rng.integers(1, 40)))
        expected = brute_force_trapezoid_auprc(scores.tolist(), gold.tolist())
        assert eraser_auprc(scores, gold) == pytest.approx(expected, abs=1e-12)


def test_eraser_auprc_differs_from_average_precision():
    # Sorted .9T .7F .6T .2T .1F .0F, 3 gold words. Points (R, P): (0,1) (1/3,1) (1/3,1/2)
    # (2/3,2/3) (1,3/4) (1,3/5) (1,1/2).
    # Trapezoid: 1/3 * 1 + 1/3 * (1/2 + 2/3)/2 + 1/3 * (2/3 + 3/4)/2
    #   = 24/72 + 14/72 + 17/72 = 55/72.
    # Average precision: 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/4 = 29/36.
    scores = np.array([0.1, 0.9, 0.6, 0.2, 0.7, 0.0])
    gold = np.array([F, T, T, T, F, F])
    assert eraser_auprc(scores, gold) == pytest.approx(55 / 72)
    assert auprc(scores, gold) == pytest.approx(29 / 36)
    assert math.isnan(eraser_auprc(scores, np.zeros(6, dtype=bool)))
