"""Evaluate a trained model: classification, rationale agreement with humans, faithfulness.

    python evaluate.py runs/movies/best.pt --split test

Runs the model over whole documents (windows merged, never truncated), scores its own masks
beside two baselines on the same model (random scores, gradient x input), and prints one table
per protocol. The metric definitions live in metrics.py.
"""
import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import data as D
import rationale as R
import subwords
from metrics import (accuracy, average_rationale_metrics, eraser_record, eraser_scores, faithfulness,
                     macro_f1, write_eraser_predictions)


# ----------------------------------------------------------------------------------------------
# Running a model over whole documents. Documents longer than one window are cut into
# overlapping windows; logits are averaged over windows and masks blended across overlaps, so
# every word of every document gets a score.


@dataclass
class DocumentPrediction:
    probabilities: np.ndarray            # (C,) softmax of the logits averaged over windows
    word_scores: np.ndarray              # (C, N) each class's mask, merged over windows, per word
    rationale_probability: float = float("nan")    # p_y of the gold class's soft rationale input
    complement_probability: float = float("nan")   # p_y of the gold class's soft complement input


def _softmax(logits):
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def _word_count(word_index):
    return int(word_index.max()) + 1 if len(word_index) else 0


def _batches(items, batch_size):
    for start in range(0, len(items), batch_size):
        yield items[start:start + batch_size]


def _device_batch(windows, device):
    ids, lengths = subwords.collate([window.ids for window in windows])
    return ids.to(device), lengths.to(device)


@torch.no_grad()
def predict_documents(model, encoded, max_len, overlap, labels=None, batch_size=64):
    """Classify and score whole documents.

    encoded: list of (ids (S,), word_index (S,)) per document, as from subwords.encode_documents.
    With gold `labels`, also run the frozen scorer on each window's soft rationale and
    complement of the gold class and average p_y over the windows. Returns one
    DocumentPrediction per document.
    """
    model.eval()
    device = next(model.parameters()).device
    per_document = [subwords.make_windows(ids, max_len, overlap) for ids, _ in encoded]
    flat = [(d, window) for d, windows in enumerate(per_document) for window in windows]
    logits, masks, scored = [], [], []
    for chunk in _batches(flat, batch_size):
        ids, lengths = _device_batch([window for _, window in chunk], device)
        output = model(ids, lengths)
        logits += list(output.logits.float().cpu().numpy())
        masks += [mask[:n].cpu().numpy() for mask, n in zip(output.mask.float(), lengths.tolist())]
        if labels is not None:
            gold = torch.tensor([labels[d] for d, _ in chunk], device=device)
            scored += list(_soft_rationale_probabilities(model, ids, lengths, output.mask, gold))

    predictions, k = [], 0
    for d, windows in enumerate(per_document):
        ids, word_index = encoded[d]
        merged = subwords.merge_window_masks(windows, masks[k:k + len(windows)], len(ids))          # (S, C)
        scores = subwords.subword_scores_to_words(merged, word_index, _word_count(word_index)).T    # (C, N)
        window_logits = np.stack(logits[k:k + len(windows)])                                  # (W, C)
        prediction = DocumentPrediction(_softmax(subwords.merge_window_logits(window_logits)), scores)
        if labels is not None:
            rationale, complement = np.mean(scored[k:k + len(windows)], axis=0)
            prediction.rationale_probability, prediction.complement_probability = rationale, complement
        predictions.append(prediction)
        k += len(windows)
    return predictions


def _soft_rationale_probabilities(model, ids, lengths, mask, labels):
    """Return (B, 2): p_y of the gold class's soft rationale and soft complement inputs."""
    keep = R.gold_class_mask(mask, labels)                                  # (B, T)
    logits = R.frozen_logits(model, ids.repeat(2, 1), lengths.repeat(2), torch.cat([keep, 1 - keep]))
    gold = torch.softmax(logits.float(), 1).gather(1, labels.repeat(2)[:, None]).squeeze(1)   # (2B,)
    return torch.stack(gold.chunk(2), dim=1).cpu().numpy()


@torch.no_grad()
def blanked_probabilities(model, ids, word_index, keep_words, label, max_len, overlap, batch_size=64):
    """Return the gold-class probability of a document with words blanked out, per keep mask.

    keep_words: (Q, N) bool; every subword of a word that is not kept becomes the blank token.
    Each variant is windowed like the full document and its logits averaged over windows.
    Returns (Q,).
    """
    model.eval()
    device = next(model.parameters()).device
    keep_subwords = np.asarray(keep_words)[:, word_index]                  # (Q, S)
    variants = [np.where(keep, ids, subwords.MASK_ID) for keep in keep_subwords]
    per_variant = [subwords.make_windows(variant, max_len, overlap) for variant in variants]
    flat = [window for windows in per_variant for window in windows]
    logits = []
    for chunk in _batches(flat, batch_size):
        logits.append(model(*_device_batch(chunk, device)).logits.float().cpu().numpy())
    logits = np.concatenate(logits)                                        # (sum of W, C)
    probabilities, k = [], 0
    for windows in per_variant:
        probabilities.append(_softmax(subwords.merge_window_logits(logits[k:k + len(windows)]))[label])
        k += len(windows)
    return np.array(probabilities)


# ----------------------------------------------------------------------------------------------
# Baselines on the same model


def random_word_scores(n_words, rng):
    """Score every word uniformly at random in [0, 1): the chance level of every metric."""
    return rng.random(n_words)


def gradient_x_input(model, ids, word_index, label, max_len, overlap):
    """Gradient x input on the token embeddings for class `label`, averaged per word.

    Each token's score is the dot product of its embedding with the gradient of the window's
    logit of `label` with respect to that embedding (signed: positive supports the class).
    Windows are merged like masks. Returns (N,).
    """
    model.eval()
    device = next(model.parameters()).device
    windows = subwords.make_windows(ids, max_len, overlap)
    batch, lengths = _device_batch(windows, device)
    embeddings = model.token_embedding(batch).detach().requires_grad_(True)   # (W, T, D)
    states = model.encode(embeddings, lengths)
    logits = model.classifier(states[:, 0])                                    # (W, C)
    (gradient,) = torch.autograd.grad(logits[:, label].sum(), embeddings)
    token_scores = (gradient * embeddings).sum(-1).detach().cpu().numpy()      # (W, T)
    per_window = [token_scores[k, :len(window.ids)] for k, window in enumerate(windows)]
    merged = subwords.merge_window_masks(windows, per_window, len(ids))                # (S,)
    return subwords.subword_scores_to_words(merged, word_index, _word_count(word_index))


# ----------------------------------------------------------------------------------------------
# One split, every method, one table


def model_faithfulness(model, encoded, examples, predictions, scores_list, max_len, overlap, batch_size=64):
    """Average sufficiency and comprehensiveness over documents for one scoring method.

    Words are ranked by scores_list[d] (N,), the gold class's scores. Empty documents are left out.
    """
    rows = []
    for (ids, word_index), example, prediction, scores in zip(encoded, examples, predictions, scores_list):
        if len(example.words) == 0:
            continue
        probability = lambda keep: blanked_probabilities(   # noqa: E731
            model, ids, word_index, keep, example.label, max_len, overlap, batch_size)
        rows.append(faithfulness(scores, probability, prediction.probabilities[example.label]))
    return {name: float(np.mean([row[name] for row in rows])) for name in ("sufficiency", "comprehensiveness")}


def evaluate_split(model, examples, encoded, n_classes, max_len, overlap, with_faithfulness=True,
                   seed=0, batch_size=64):
    """Evaluate a model on one split: classification, and rationale metrics for our masks and
    the two baselines (random scores, gradient x input), each for the gold class.

    Returns (classification dict, {method: metrics dict}, predictions).
    """
    labels = [example.label for example in examples]
    predictions = predict_documents(model, encoded, max_len, overlap, labels, batch_size)
    predicted = [int(np.argmax(p.probabilities)) for p in predictions]
    classification = {"accuracy": accuracy(predicted, labels), "macro_f1": macro_f1(predicted, labels, n_classes)}

    rng = np.random.default_rng(seed)
    methods = {
        "rationale (ours)": [p.word_scores[e.label] for p, e in zip(predictions, examples)],
        "random": [random_word_scores(len(e.words), rng) for e in examples],
        "gradient x input": [gradient_x_input(model, ids, word_index, e.label, max_len, overlap)
                             for (ids, word_index), e in zip(encoded, examples)],
    }
    gold = [example.gold for example in examples]
    table = {}
    for name, scores_list in methods.items():
        table[name] = average_rationale_metrics(scores_list, gold)
        if with_faithfulness:
            table[name].update(model_faithfulness(model, encoded, examples, predictions, scores_list,
                                                  max_len, overlap, batch_size))
    return classification, table, predictions


COLUMNS = (("auprc", "AUPRC"), ("token_f1", "Token-F1"), ("d_token_f1", "D-Token-F1"), ("iou_f1", "IoU-F1"),
           ("d_iou_f1", "D-IoU-F1"), ("sufficiency", "Suff (lower)"), ("comprehensiveness", "Comp (higher)"))


def format_table(table):
    """Render {method: metrics} as a fixed-width text table, one method per row."""
    present = [(key, title) for key, title in COLUMNS if any(key in row for row in table.values())]
    width = max(len(name) for name in table)
    lines = [f"{'method':<{width}}  " + "  ".join(f"{title:>{max(len(title), 6)}}" for _, title in present)]
    for name, row in table.items():
        cells = [f"{row.get(key, float('nan')):>{max(len(title), 6)}.3f}" for key, title in present]
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def print_report(heading, classification, table, eraser):
    """Print classification quality, then the paper-protocol table, then the ERASER protocol."""
    print(f"{heading}: accuracy {classification['accuracy']:.3f} macro F1 {classification['macro_f1']:.3f}")
    print("rationale metrics, paper protocol (word level, gold class, mean over documents):")
    print(format_table(table))
    print("ERASER protocol (hard rationale = predicted class's mask >= 0.5, soft = its mask): "
          + " ".join(f"{name} {value:.3f}" for name, value in eraser.items()), flush=True)


def eraser_predictions(examples, predictions, class_names):
    """Build the ERASER JSONL records: hard rationale of the predicted class's mask at 0.5."""
    records = []
    for example, prediction in zip(examples, predictions):
        predicted = int(np.argmax(prediction.probabilities))
        records.append(eraser_record(example.doc_id, class_names, prediction.probabilities,
                                     prediction.word_scores[predicted]))
    return records


# ----------------------------------------------------------------------------------------------
# Command line


def load_split(checkpoint, split, data_dir=None):
    """Load the dataset a checkpoint was trained on and return (dataset, examples of `split`)."""
    import train
    config = dict(checkpoint["config"])
    if data_dir is not None:
        config["data_dir"] = data_dir
        config["dataset"] = "movies" if config["dataset"] == "auto" else config["dataset"]
    dataset = train.load_dataset(config)
    if list(dataset.classes) != list(checkpoint["classes"]):
        raise SystemExit(f"error: the dataset's classes {dataset.classes} differ from the checkpoint's "
                         f"{checkpoint['classes']}; pass the --data-dir the model was trained on")
    return dataset, getattr(dataset, split)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint written by train.py.")
    parser.add_argument("checkpoint", help="best.pt or last.pt of a training run")
    parser.add_argument("--split", default="test", choices=list(D.SPLITS), help="split to evaluate")
    parser.add_argument("--data-dir", help="dataset folder, when it moved since training")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--no-faithfulness", action="store_true", help="skip sufficiency and comprehensiveness")
    parser.add_argument("--predictions", help="also write the ERASER-format predictions to this JSONL file")
    args = parser.parse_args(argv)

    import train
    device = train.pick_device(args.device)
    try:
        model, tokenizer, checkpoint = train.load_checkpoint(args.checkpoint, device)
        dataset, examples = load_split(checkpoint, args.split, args.data_dir)
    except (ValueError, subwords.DataError) as error:
        raise SystemExit(f"error: {error}")
    config = checkpoint["config"]
    encoded = subwords.encode_documents(tokenizer, [e.words for e in examples])
    start = time.perf_counter()
    classification, table, predictions = evaluate_split(
        model, examples, encoded, len(dataset.classes), config["max_len"], config["overlap"],
        with_faithfulness=not args.no_faithfulness, seed=config["seed"])
    records = eraser_predictions(examples, predictions, dataset.classes)
    eraser = eraser_scores(records, {e.doc_id: e.gold for e in examples})
    print_report(f"{args.split} split of {dataset.name}, {len(examples)} documents, {args.checkpoint}, "
                 f"evaluated in {time.perf_counter() - start:.0f} s", classification, table, eraser)
    if args.predictions:
        write_eraser_predictions(args.predictions, records)
        print(f"wrote {args.predictions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
