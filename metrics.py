"""Measure rationales against human ones, their faithfulness, and classification quality.

Two protocols are computed and must be reported separately:

- Threshold-free and threshold-averaged agreement (AUPRC, Token-F1, D-Token-F1, IoU-F1,
  D-IoU-F1) plus sufficiency and comprehensiveness. These score the gold class's word scores
  of each document and average over documents.
- The ERASER benchmark protocol (DeYoung et al., ACL 2020): a JSONL file of hard rationale
  spans, soft word scores and class probabilities, scored as the ERASER scorer
  `rationale_benchmark/metrics.py` (github.com/jayded/eraserbenchmark) scores it.

All rationale metrics work on a document's words (its whitespace tokens), never on subword
tokens. Word scores are float arrays of shape (N,), gold masks are bool arrays of shape (N,).
This module needs numpy only; evaluate.py runs a model and feeds these functions.
"""

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

# Fractions q of a document's words kept by Token-F1, IoU-F1, sufficiency and comprehensiveness.
FRACTIONS = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50,
             0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95)

RATIONALE_METRIC_NAMES = ("auprc", "token_f1", "d_token_f1", "iou_f1", "d_iou_f1")

# A predicted span matches a gold span in D-IoU-F1 when their IoU exceeds this value.
D_IOU_MATCH_THRESHOLD = 0.5


# ---- Input checks -----------------------------------------------------------------------

def _as_scores(scores, name: str = "scores") -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} contains NaN or infinite values. Check the model output")
    return scores


def _as_mask(mask, length: int, name: str = "gold") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) to match the scores, "
                         f"got shape {mask.shape}")
    if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{name} must be a bool mask or contain only 0 and 1")
    return mask.astype(bool)


def _harmonic_mean(precision: float, recall: float) -> float:
    """Return F1 of a precision and a recall, or 0 when both are 0."""
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _nan_mean(values) -> float:
    """Return the mean of the values that are not NaN, or NaN when none is left."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


# ---- Word selection and spans --------------------------------------------------------------

def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Return a bool mask (N,) that keeps the k words with the highest scores.

    Ties are broken by position: among equal scores the earlier word is kept first, so the
    result is deterministic. k must lie in [0, N].
    """
    scores = _as_scores(scores)
    if not 0 <= k <= len(scores):
        raise ValueError(f"k={k} is outside [0, {len(scores)}] for a document of "
                         f"{len(scores)} words")
    order = np.argsort(-scores, kind="stable")  # descending, ties keep word order
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[:k]] = True
    return mask


def count_for_fraction(fraction: float, n_words: int) -> int:
    """Return the number of words that a fraction keeps: ceil(fraction * n_words).

    The product is rounded to 9 decimals first so that float noise (0.15 * 20 is
    3.0000000000000004) does not add a word. Rounding up means any fraction above 0 keeps
    at least one word of a non-empty document, and never fewer than fraction * n_words.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction={fraction} is outside [0, 1]")
    return math.ceil(round(fraction * n_words, 9))


def top_fraction_mask(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Return a bool mask (N,) that keeps the top ceil(fraction * N) words by score.

    The count is that of `count_for_fraction` and ties are broken as in `top_k_mask`
    (earlier word first).
    """
    scores = _as_scores(scores)
    return top_k_mask(scores, count_for_fraction(fraction, len(scores)))


def spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """Return the maximal runs of True in a mask as (start, end) pairs, end exclusive."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    edges = np.diff(padded)  # +1 where a run starts, -1 one past where it ends
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def span_iou(first: Sequence[tuple[int, int]], second: Sequence[tuple[int, int]]) -> np.ndarray:
    """Return the (len(first), len(second)) matrix of intersection over union of word spans."""
    a = np.asarray(first, dtype=np.int64).reshape(-1, 2)[:, None, :]  # (P, 1, 2)
    b = np.asarray(second, dtype=np.int64).reshape(-1, 2)[None, :, :]  # (1, G, 2)
    overlap = np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0])
    intersection = np.clip(overlap, 0, None)  # (P, G)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - intersection
    return intersection / np.maximum(union, 1)


# ---- Agreement with human rationales (one document, gold class) ---------------------------

def _precision_recall_points(scores: np.ndarray, gold: np.ndarray):
    """Return precision and recall (each (D,)) at the D distinct scores, highest first.

    At threshold t every word with score >= t is predicted relevant, so tied words enter
    together. Requires at least one gold word.
    """
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    true_positives = np.cumsum(gold[order])  # (N,)
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), len(scores) - 1]
    true_positives = true_positives[last_of_tie]  # (D,)
    precision = true_positives / (last_of_tie + 1)
    recall = true_positives / gold.sum()
    return precision, recall


def auprc(scores: np.ndarray, gold: np.ndarray) -> float:
    """Compute the area under the precision-recall curve as average precision.

    AP = sum over distinct thresholds t (highest first) of (R(t) - R(previous t)) * P(t),
    with R before the first threshold = 0, where words with score >= t are predicted
    relevant. Tied scores form one threshold, so the order of tied words does not matter.
    Returns NaN when gold has no True word (recall is undefined), including an empty
    document. A gold mask that is all True gives 1.0 for any scores.
    """
    scores = _as_scores(scores)
    gold = _as_mask(gold, len(scores))
    if not gold.any():
        return math.nan
    precision, recall = _precision_recall_points(scores, gold)
    recall_gain = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_gain * precision))


def token_f1(pred_mask: np.ndarray, gold: np.ndarray) -> float:
    """Compute word-level F1 of a predicted bool mask against a gold bool mask.

    Precision = |pred & gold| / |pred| (0 when nothing is predicted), recall =
    |pred & gold| / |gold| (0 when gold is empty), F1 = 2PR / (P + R) (0 when P + R = 0).
    So an empty gold mask always gives 0, even with an empty prediction.
    """
    pred_mask = np.asarray(pred_mask, dtype=bool)
    gold = _as_mask(gold, len(pred_mask))
    true_positives = np.sum(pred_mask & gold)
    precision = true_positives / pred_mask.sum() if pred_mask.any() else 0.0
    recall = true_positives / gold.sum() if gold.any() else 0.0
    return _harmonic_mean(float(precision), float(recall))


def iou_f1(pred_mask: np.ndarray, gold: np.ndarray, match_threshold: float | None = None) -> float:
    """Compute the span IoU-F1 of a predicted bool mask against a gold bool mask.

    Both masks are cut into maximal runs of True words (`spans`).
    Soft version (match_threshold None): precision = mean over predicted spans of the best
    IoU with any gold span, recall = mean over gold spans of the best IoU with any predicted
    span. Matching version: a predicted span counts for precision when its best IoU exceeds
    match_threshold (strictly), and a gold span counts for recall likewise. Above 0.5 such
    matches are one to one, because disjoint spans cannot each cover over half of one span.
    F1 = 2PR / (P + R). Returns 0 when either mask has no span.
    """
    pred_mask = np.asarray(pred_mask, dtype=bool)
    gold = _as_mask(gold, len(pred_mask))
    pred_spans, gold_spans = spans(pred_mask), spans(gold)
    if not pred_spans or not gold_spans:
        return 0.0
    iou = span_iou(pred_spans, gold_spans)  # (P, G)
    if match_threshold is None:
        precision, recall = iou.max(axis=1).mean(), iou.max(axis=0).mean()
    else:
        matched = iou > match_threshold
        precision, recall = matched.any(axis=1).mean(), matched.any(axis=0).mean()
    return _harmonic_mean(float(precision), float(recall))


def rationale_metrics(scores: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Compute the five agreement metrics of one document's gold-class word scores.

    - auprc: `auprc` of the scores.
    - token_f1: mean over the 19 FRACTIONS q of `token_f1` of `top_fraction_mask(scores, q)`.
    - d_token_f1: `token_f1` of the top-k words, k = number of gold words.
    - iou_f1: mean over the 19 FRACTIONS of the soft `iou_f1` of the top-q words.
    - d_iou_f1: `iou_f1` of the top-k words with spans matching at IoU > 0.5.
    A document without gold words (also an empty document) gets NaN for all five, so that
    averages leave it out. With every word gold, auprc and d_token_f1 are 1.
    """
    scores = _as_scores(scores)
    gold = _as_mask(gold, len(scores))
    if not gold.any():
        return dict.fromkeys(RATIONALE_METRIC_NAMES, math.nan)
    fraction_masks = [top_fraction_mask(scores, q) for q in FRACTIONS]
    top_gold_count = top_k_mask(scores, int(gold.sum()))
    return {
        "auprc": auprc(scores, gold),
        "token_f1": float(np.mean([token_f1(mask, gold) for mask in fraction_masks])),
        "d_token_f1": token_f1(top_gold_count, gold),
        "iou_f1": float(np.mean([iou_f1(mask, gold) for mask in fraction_masks])),
        "d_iou_f1": iou_f1(top_gold_count, gold, match_threshold=D_IOU_MATCH_THRESHOLD),
    }


def average_rationale_metrics(scores_list: Sequence[np.ndarray],
                              gold_list: Sequence[np.ndarray]) -> dict[str, float]:
    """Average `rationale_metrics` over documents, each document weighted equally.

    Documents without gold words are left out of every mean. A metric is NaN when no
    document is left.
    """
    if len(scores_list) != len(gold_list):
        raise ValueError(f"got {len(scores_list)} score arrays but {len(gold_list)} gold masks")
    per_document = [rationale_metrics(s, g) for s, g in zip(scores_list, gold_list)]
    return {name: _nan_mean([metrics[name] for metrics in per_document])
            for name in RATIONALE_METRIC_NAMES}


# ---- Faithfulness ---------------------------------------------------------------------------

def faithfulness(scores: np.ndarray,
                 gold_class_probability: Callable[[np.ndarray], np.ndarray],
                 full_probability: float) -> dict[str, float]:
    """Compute sufficiency and comprehensiveness of one document's gold-class word scores.

    For each q in FRACTIONS, let keep_top = `top_fraction_mask(scores, q)`. Then
    sufficiency = mean over q of (full_probability - p(keep only keep_top)), lower is better,
    and comprehensiveness = mean over q of (full_probability - p(keep all but keep_top)),
    higher is better. gold_class_probability is called once with a (2 * 19, N) bool array of words
    to keep: the 19 top-q masks, then their 19 complements. The caller replaces every word
    that is not kept by the blank token and returns the (2 * 19,) gold-class probabilities.
    full_probability is the gold-class probability of the unmasked document.
    """
    scores = _as_scores(scores)
    if len(scores) == 0:
        raise ValueError("faithfulness needs a document with at least one word, got 0 words")
    keep_top = np.stack([top_fraction_mask(scores, q) for q in FRACTIONS])  # (Q, N)
    keep = np.concatenate([keep_top, ~keep_top])  # (2Q, N)
    probabilities = np.asarray(gold_class_probability(keep), dtype=np.float64)
    if probabilities.shape != (len(keep),):
        raise ValueError(f"gold_class_probability must return shape ({len(keep)},) for a "
                         f"{keep.shape} keep mask, got shape {probabilities.shape}")
    rationale_only, complement = np.split(probabilities, 2)
    return {
        "sufficiency": float(np.mean(full_probability - rationale_only)),
        "comprehensiveness": float(np.mean(full_probability - complement)),
    }


# ---- Classification ---------------------------------------------------------------------

def _as_labels(values, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty array of class indices, "
                         f"got shape {values.shape}")
    return values


def accuracy(predicted, labels) -> float:
    """Return the fraction of examples whose predicted class index equals the label."""
    predicted, labels = _as_labels(predicted, "predicted"), _as_labels(labels, "labels")
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted has shape {predicted.shape} but labels {labels.shape}")
    return float(np.mean(predicted == labels))


def macro_f1(predicted, labels, n_classes: int) -> float:
    """Return the unweighted mean over classes of the per-class F1 = 2TP / (2TP + FP + FN).

    Classes that occur neither in labels nor in predicted are left out of the mean, as
    scikit-learn does by default, because their F1 is undefined.
    """
    predicted, labels = _as_labels(predicted, "predicted"), _as_labels(labels, "labels")
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted has shape {predicted.shape} but labels {labels.shape}")
    for name, values in (("predicted", predicted), ("labels", labels)):
        if values.min() < 0 or values.max() >= n_classes:
            raise ValueError(f"{name} contains class indices outside [0, {n_classes})")
    scores = []
    for c in range(n_classes):
        true_positives = np.sum((predicted == c) & (labels == c))
        errors = np.sum(predicted == c) + np.sum(labels == c) - 2 * true_positives
        if true_positives + errors > 0:
            scores.append(2 * true_positives / (2 * true_positives + errors))
    return float(np.mean(scores))


# ---- ERASER benchmark protocol ------------------------------------------------------------

def eraser_record(doc_id: str, class_names: Sequence[str], probabilities: np.ndarray,
                  word_scores: np.ndarray, threshold: float = 0.5) -> dict:
    """Build one ERASER prediction record (one JSONL line) for a single-document example.

    probabilities (C,) are the class probabilities of the full document, and the predicted
    class is their argmax (the first class on ties). word_scores (N,) must be the mask of
    that predicted class. Hard rationale predictions are the maximal runs of words with
    score >= threshold as {"start_token", "end_token"} word offsets, end exclusive. Soft
    rationale predictions are the N word scores. annotation_id and docid are both doc_id.
    """
    probabilities = _as_scores(probabilities, "probabilities")
    word_scores = _as_scores(word_scores, "word_scores")
    if len(probabilities) != len(class_names):
        raise ValueError(f"got {len(probabilities)} probabilities for {len(class_names)} "
                         f"classes {list(class_names)}")
    if abs(probabilities.sum() - 1.0) > 1e-3:
        raise ValueError(f"probabilities of {doc_id} sum to {probabilities.sum():.6f}, not 1. "
                         "Pass softmax probabilities")
    hard = [{"start_token": start, "end_token": end}
            for start, end in spans(word_scores >= threshold)]
    return {
        "annotation_id": doc_id,
        "classification": class_names[int(np.argmax(probabilities))],
        "classification_scores": {name: float(p) for name, p in zip(class_names, probabilities)},
        "rationales": [{
            "docid": doc_id,
            "hard_rationale_predictions": hard,
            "soft_rationale_predictions": [float(s) for s in word_scores],
        }],
    }


def _is_finite_number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _check_hard_spans(hard, docid: str, length: int | None) -> None:
    """Raise ValueError unless the hard spans are ordered offsets that do not overlap."""
    if not isinstance(hard, list) or not all(isinstance(span, dict) for span in hard):
        raise ValueError(f"hard_rationale_predictions of {docid} is not a list of objects")
    covered_words = set()
    for span in hard:
        start, end = span.get("start_token"), span.get("end_token")
        if type(start) is not int or type(end) is not int or not 0 <= start < end:
            raise ValueError(f"hard rationale span {span} of {docid} needs integer offsets "
                             "0 <= start_token < end_token")
        if length is not None and end > length:
            raise ValueError(f"hard rationale span {span} of {docid} ends after the last "
                             f"word of a document of {length} words")
        if covered_words & set(range(start, end)):
            raise ValueError(f"hard rationale span {span} of {docid} overlaps another span")
        covered_words.update(range(start, end))


def _check_eraser_rationale(rationale, document_lengths: Mapping[str, int] | None) -> None:
    """Raise ValueError naming the problem unless the rationale entry is well formed."""
    if not isinstance(rationale, dict) or not isinstance(rationale.get("docid"), str):
        raise ValueError("a rationale entry has no string field 'docid'")
    docid = rationale["docid"]
    soft = rationale.get("soft_rationale_predictions")
    if soft is not None and (not isinstance(soft, list)
                             or not all(_is_finite_number(x) for x in soft)):
        raise ValueError(f"soft_rationale_predictions of {docid} is not a list of finite "
                         "numbers")

    # The document length bounds the spans: the known one, else that of the soft scores.
    length = None if soft is None else len(soft)
    if document_lengths is not None:
        if docid not in document_lengths:
            raise ValueError(f"document {docid} is not among the {len(document_lengths)} "
                             "known documents")
        length = document_lengths[docid]
    if soft is not None and len(soft) != length:
        raise ValueError(f"soft_rationale_predictions of {docid} has {len(soft)} scores for "
                         f"a document of {length} words")
    _check_hard_spans(rationale.get("hard_rationale_predictions", []), docid, length)


def _check_eraser_record(record, document_lengths: Mapping[str, int] | None) -> None:
    """Raise ValueError naming the problem unless the record is a well-formed ERASER line."""
    if not isinstance(record, dict) or not isinstance(record.get("annotation_id"), str):
        raise ValueError("the record has no string field 'annotation_id'")
    scores, predicted = record.get("classification_scores"), record.get("classification")
    if not isinstance(scores, dict) or not isinstance(predicted, str) or predicted not in scores:
        raise ValueError("'classification' must name a key of 'classification_scores'")
    if not all(_is_finite_number(p) for p in scores.values()):
        raise ValueError("'classification_scores' must map class names to finite numbers")
    if not isinstance(record.get("rationales"), list):
        raise ValueError("the record has no list field 'rationales'")
    for rationale in record["rationales"]:
        _check_eraser_rationale(rationale, document_lengths)


def write_eraser_predictions(path, records: Sequence[dict]) -> None:
    """Check the records and write them as JSONL, one record a line, atomically.

    The file appears complete or not at all: it is written to a temporary file in the
    same folder, which then replaces path.
    """
    for record in records:
        _check_eraser_record(record, None)
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            for record in records:
                file.write(json.dumps(record) + "\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def read_eraser_predictions(path, document_lengths: Mapping[str, int] | None = None) -> list[dict]:
    """Read an ERASER predictions JSONL file, check it, and return its records in file order.

    Blank lines are skipped. Every record needs annotation_id, classification (a key of
    classification_scores) and rationales. Hard spans must be integer offsets with
    0 <= start < end, not overlap, and end within the document. With document_lengths
    (docid -> number of words) every docid must be known and the soft scores must have one
    value per word. Without it, the length of the soft scores bounds the spans.
    Raises ValueError naming the file and the line of the first problem.
    """
    path = Path(path)
    records, seen = [], set()
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                _check_eraser_record(record, document_lengths)
                if record["annotation_id"] in seen:
                    raise ValueError(f"annotation_id {record['annotation_id']} appears twice")
            except ValueError as error:  # json.JSONDecodeError is a ValueError
                raise ValueError(f"{path}, line {number}: {error}. Fix or rewrite the "
                                 "predictions file") from error
            seen.add(record["annotation_id"])
            records.append(record)
    return records


def eraser_auprc(scores: np.ndarray, gold: np.ndarray) -> float:
    """Compute ERASER's AUPRC of one document: the trapezoidal area under its PR curve.

    The curve has one point (recall, precision) per distinct score, where words with
    score >= that score are predicted relevant, plus the point (0, 1). Its area uses the
    trapezoidal rule over recall, as scikit-learn's auc(recall, precision) of
    precision_recall_curve does in the ERASER scorer. Returns NaN when gold has no True
    word, where ERASER's value depends on the scikit-learn version (0.5 with 1.9.1).
    """
    scores = _as_scores(scores)
    gold = _as_mask(gold, len(scores))
    if not gold.any():
        return math.nan
    precision, recall = _precision_recall_points(scores, gold)
    precision, recall = np.r_[1.0, precision], np.r_[0.0, recall]
    return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2))


def _eraser_documents(records: Sequence[dict], gold: Mapping[str, np.ndarray]) -> list[dict]:
    """Pair every (annotation_id, docid) with its predicted spans, soft scores and gold mask.

    Documents with gold words that no record covers get no prediction, as in ERASER.
    """
    documents, covered = [], set()
    for record in records:
        for rationale in record["rationales"]:
            docid = rationale["docid"]
            if docid not in gold:
                raise ValueError(f"no gold mask for document {docid} of record "
                                 f"{record['annotation_id']}")
            mask = np.asarray(gold[docid], dtype=bool)
            hard = {(s["start_token"], s["end_token"])
                    for s in rationale.get("hard_rationale_predictions", [])}
            soft = rationale.get("soft_rationale_predictions")
            if any(end > len(mask) for _, end in hard) or (soft is not None
                                                           and len(soft) != len(mask)):
                raise ValueError(f"the prediction for document {docid} does not fit its "
                                 f"{len(mask)} words; read the file with document_lengths "
                                 "to find the faulty line")
            documents.append({"spans": sorted(hard), "soft": soft, "gold": mask})
            covered.add(docid)
    for docid, mask in gold.items():
        if docid not in covered and np.any(mask):
            documents.append({"spans": [], "soft": None, "gold": np.asarray(mask, dtype=bool)})
    return documents


def _eraser_token_scores(documents: list[dict]) -> dict[str, float]:
    """Compute ERASER's token precision, recall and F1 of hard rationales, macro and micro.

    Macro ("instance_macro" in the scorer) averages each document's precision, recall and
    F1 over the documents with gold or predicted words. A document's F1 is 0 when its
    precision or recall is 0. Micro ("instance_micro") pools the word counts of all
    documents.
    """
    per_document, pooled = [], np.zeros(3)  # pooled: overlap, predicted, gold word counts
    for document in documents:
        predicted = np.zeros(len(document["gold"]), dtype=bool)
        for start, end in document["spans"]:
            predicted[start:end] = True
        counts = np.array([np.sum(predicted & document["gold"]), predicted.sum(),
                           document["gold"].sum()])
        pooled += counts
        if counts[1] == 0 and counts[2] == 0:
            continue
        precision = counts[0] / counts[1] if counts[1] else 0.0
        recall = counts[0] / counts[2] if counts[2] else 0.0
        per_document.append((precision, recall, _harmonic_mean(precision, recall)))
    macro = np.mean(per_document, axis=0) if per_document else np.full(3, math.nan)
    micro_precision = pooled[0] / pooled[1] if pooled[1] else 0.0
    micro_recall = pooled[0] / pooled[2] if pooled[2] else 0.0
    return {"token_precision": float(macro[0]), "token_recall": float(macro[1]),
            "token_f1": float(macro[2]),
            "token_f1_micro": _harmonic_mean(float(micro_precision), float(micro_recall))}


def _eraser_iou_scores(documents: list[dict], threshold: float = 0.5) -> dict[str, float]:
    """Compute ERASER's IOU F1: span matches at IoU >= threshold, macro and micro.

    A predicted span is a true positive when its best IoU with a gold span of the same
    document is >= threshold. Per document, precision = TP / predicted spans and
    recall = TP / gold spans. Macro averages precision over documents with predicted spans
    and recall over documents with gold spans, then takes F1 of the two means. Micro pools
    the counts. Gold spans are the maximal runs of the gold mask, whereas ERASER uses each
    annotated evidence span, so adjacent evidence spans count as one span here.
    """
    precisions, recalls, pooled = [], [], np.zeros(3)  # pooled: TP, predicted, gold spans
    for document in documents:
        gold_spans = spans(document["gold"])
        true_positives = 0
        if document["spans"] and gold_spans:
            best = span_iou(document["spans"], gold_spans).max(axis=1)
            true_positives = int(np.sum(best >= threshold))
        pooled += (true_positives, len(document["spans"]), len(gold_spans))
        if document["spans"]:
            precisions.append(true_positives / len(document["spans"]))
        if gold_spans:
            recalls.append(true_positives / len(gold_spans))
    macro = _harmonic_mean(float(np.mean(precisions)) if precisions else 0.0,
                           float(np.mean(recalls)) if recalls else 0.0)
    micro = _harmonic_mean(pooled[0] / pooled[1] if pooled[1] else 0.0,
                           pooled[0] / pooled[2] if pooled[2] else 0.0)
    return {"iou_precision": float(np.mean(precisions)) if precisions else 0.0,
            "iou_recall": float(np.mean(recalls)) if recalls else 0.0,
            "iou_f1": macro, "iou_f1_micro": float(micro)}


def eraser_scores(records: Sequence[dict], gold: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Score ERASER prediction records against gold word masks as the ERASER scorer does.

    gold maps each docid to its bool word mask (N,). The results follow the scorer's
    fields (rationale_benchmark/metrics.py of github.com/jayded/eraserbenchmark):
    - token_precision, token_recall, token_f1: token_prf "instance_macro", the per-document
      mean. token_f1 is the "Token F1" that ERASER results usually report.
      token_f1_micro is "instance_micro".
    - iou_precision, iou_recall, iou_f1: iou_scores "macro" at IoU >= 0.5, the usual
      "IOU F1". iou_f1_micro is its "micro" value.
    - auprc: token_soft_metrics "auprc", the mean over records of `eraser_auprc` of the
      soft scores. Documents without gold words are left out (ERASER keeps them).
    """
    documents = _eraser_documents(records, gold)
    soft_auprc = []
    for document in documents:
        if document["soft"] is not None:
            soft_auprc.append(eraser_auprc(document["soft"], document["gold"]))
    return {**_eraser_token_scores(documents), **_eraser_iou_scores(documents),
            "auprc": _nan_mean(soft_auprc)}
