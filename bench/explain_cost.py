"""Compare the cost and quality of our rationales with post-hoc explanations of the same model.

On a checkpoint written by train.py and the test reviews, each method scores every word of a
document for the gold class:

- rationale (ours): the model's own mask, one forward pass over the document's windows
  (evaluate.predict_documents);
- gradient x input: evaluate.gradient_x_input, one forward and backward pass per document;
- Integrated Gradients: the straight path in token-embedding space from the baseline (every
  real token replaced by the blank token's embedding, [CLS] kept) to the input, integrated
  with the trapezoid rule over --ig-steps intervals, the path points batched;
- occlusion: blank one word at a time (all its subwords become [MASK]); the score is the drop
  in the gold-class probability. Only the windows that contain the word are recomputed;
- mask optimization in the style of MaRC: a free mask per document, parameterized by a weight
  and a width per token through rationale.mask_kernel. Adam optimizes it for --marc-steps
  steps against the frozen model, with the sufficiency, complement, size, width and
  smoothness terms of the rationale objective (rationale.LossWeights).

The script prints seconds per document and the rationale metrics (word level, gold class,
metrics.average_rationale_metrics) of each method in one table:

    python bench/explain_cost.py runs/movies/best.pt --data-dir ../shared/data/movies
    python bench/explain_cost.py runs/movies/best.pt --slow-docs 199     # all five methods: about 40 min on 2 cores

Integrated Gradients, occlusion and mask optimization take seconds per document on a CPU, so by
default they run on the first --slow-docs documents only. The table lists how many documents
each row covers, and a second table compares all methods on those documents.
"""
import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import evaluate as E  # noqa: E402
import machine as M  # noqa: E402
import rationale as R  # noqa: E402
import subwords  # noqa: E402
import train  # noqa: E402

SLOW_METHODS = ("integrated gradients", "occlusion", "mask optimization")
TARGET_SPEEDUP = 20.0       # ours against Integrated Gradients, seconds per document


# ----------------------------------------------------------------------------------------------
# Shared pieces


def window_batch(ids, max_len, overlap, device):
    """Cut a document into windows; return (windows, ids (W, T), lengths (W,)) on `device`."""
    windows = subwords.make_windows(ids, max_len, overlap)
    batch, lengths = subwords.collate([window.ids for window in windows])
    return windows, batch.to(device), lengths.to(device)


def token_scores_to_words(windows, token_scores, word_index):
    """Merge per-window token scores (W, T) over the overlaps and average them per word: (N,)."""
    per_window = [token_scores[k, :len(window.ids)] for k, window in enumerate(windows)]
    merged = subwords.merge_window_masks(windows, per_window, len(word_index))                 # (S,)
    n_words = int(word_index.max()) + 1 if len(word_index) else 0
    return subwords.subword_scores_to_words(merged, word_index, n_words)


def softmax(logits):
    """Softmax over the last axis of a numpy array."""
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def class_logits(model, embeddings, lengths):
    """Classify token embeddings (B, T, D) without the mask head; return logits (B, C)."""
    return model.classifier(model.encode(embeddings, lengths)[:, 0])


# ----------------------------------------------------------------------------------------------
# Integrated Gradients


def blank_baseline(model, ids, lengths):
    """Return (input, baseline) token embeddings (W, T, D): the baseline has the blank token's
    embedding at every real token and the input's own embedding at [CLS] and padding."""
    with torch.no_grad():
        inputs = model.token_embedding(ids)
        real = R.real_token_mask(lengths, ids.size(1))[..., None]                      # (W, T, 1)
        blank = model.token_embedding.weight[model.config.blank_id]
        return inputs, torch.where(real, blank, inputs)


def integrated_gradients_tokens(model, ids, lengths, label, steps=50, batch_size=64):
    """Attribute the logit of `label` to every token by Integrated Gradients: (W, T).

    attribution[w, t] = sum_d (x - x')[w, t, d] * sum_k c_k dF/de(x' + a_k (x - x'))[w, t, d],
    with a_k = k / steps for k = 0..steps and trapezoid weights c_0 = c_steps = 1 / (2 steps),
    c_k = 1 / steps otherwise. By completeness, sum_t attribution[w, t] approaches
    F(x_w) - F(x'_w) as steps grows. The (steps + 1) x W path points run in batches of
    batch_size sequences. Dropout is off.
    """
    model.eval()
    inputs, baseline = blank_baseline(model, ids, lengths)
    delta = inputs - baseline                                                            # (W, T, D)
    alphas = torch.linspace(0, 1, steps + 1, device=ids.device)
    coefficients = torch.full((steps + 1,), 1.0 / steps, device=ids.device)
    coefficients[[0, -1]] /= 2
    summed = torch.zeros_like(inputs)                                                    # sum_k c_k grad_k
    points = torch.arange((steps + 1) * len(ids), device=ids.device)
    for chunk in points.split(batch_size):
        k, w = chunk // len(ids), chunk % len(ids)
        path = (baseline[w] + alphas[k, None, None] * delta[w]).requires_grad_(True)   # (n, T, D)
        logit = class_logits(model, path, lengths[w])[:, label]
        (gradient,) = torch.autograd.grad(logit.sum(), path)
        summed.index_add_(0, w, gradient * coefficients[k, None, None])
    return (delta * summed).sum(-1).detach()                                             # (W, T)


def integrated_gradients(model, ids, word_index, label, max_len, overlap, steps=50, batch_size=64):
    """Integrated Gradients word scores of one document for class `label`: (N,)."""
    device = next(model.parameters()).device
    windows, batch, lengths = window_batch(ids, max_len, overlap, device)
    attribution = integrated_gradients_tokens(model, batch, lengths, label, steps, batch_size)
    return token_scores_to_words(windows, attribution.cpu().numpy(), word_index)


# ----------------------------------------------------------------------------------------------
# Occlusion


@torch.no_grad()
def window_logits(model, sequences, batch_size=64):
    """Classify id sequences ([CLS] first) in batches; return logits (len(sequences), C) as numpy."""
    device = next(model.parameters()).device
    logits = []
    for start in range(0, len(sequences), batch_size):
        ids, lengths = subwords.collate(sequences[start:start + batch_size])
        logits.append(model(ids.to(device), lengths.to(device)).logits.float().cpu().numpy())
    return np.concatenate(logits)


def occluded_windows(windows, word_index):
    """List (word, window number, ids with the word's subwords blanked) for each word in each window."""
    variants = []
    for k, window in enumerate(windows):
        covered = word_index[window.start:window.start + len(window.ids) - 1]          # (L-1,)
        for word in np.unique(covered):
            ids = window.ids.copy()
            ids[1:][covered == word] = subwords.MASK_ID
            variants.append((int(word), k, ids))
    return variants


def occlusion_scores(model, ids, word_index, label, max_len, overlap, batch_size=64):
    """Score each word by the drop in p(label) when all its subwords are blanked: (N,).

    A document's probability is the softmax of its window logits averaged over windows, as in
    evaluate.blanked_probabilities. Blanking a word changes only the windows that contain it,
    so only those are recomputed and the others keep their unblanked logits.
    """
    model.eval()
    n_words = int(word_index.max()) + 1 if len(word_index) else 0
    windows = subwords.make_windows(ids, max_len, overlap)
    full = window_logits(model, [window.ids for window in windows], batch_size)      # (W, C)
    variants = occluded_windows(windows, word_index)
    if not variants:
        return np.zeros(n_words)
    changed = window_logits(model, [v[2] for v in variants], batch_size)              # (V, C)
    per_word = np.repeat(full[None], n_words, axis=0)                                  # (N, W, C)
    words, numbers = zip(*[(word, k) for word, k, _ in variants])
    per_word[list(words), list(numbers)] = changed
    probabilities = softmax(per_word.mean(axis=1))[:, label]                            # (N,)
    return softmax(full.mean(axis=0))[label] - probabilities


# ----------------------------------------------------------------------------------------------
# Per-example mask optimization (MaRC style)


def mask_objective(model, ids, lengths, label, weight, raw_width, weights):
    """Return the frozen model's rationale objective of a free mask for one document.

    total = w_suff L_suff + w_comp L_comp + w_reg (size + width + smoothness), with the terms of
    rationale.py averaged over the document's windows (every window has the document's label),
    and the mask m = mask_kernel(weight, bounded_width(raw_width)) of shape (W, T, 1).
    Returns (total, mask).
    """
    config = model.config
    real = R.real_token_mask(lengths, ids.size(1))
    width = R.bounded_width(raw_width, config.min_width, config.max_width)
    mask = R.mask_kernel(weight, width, real, config.kernel_radius)                   # (W, T, 1)
    keep = mask[..., 0]
    labels = torch.full((len(ids),), label, device=ids.device)
    logits = R.frozen_logits(model, ids.repeat(2, 1), lengths.repeat(2), torch.cat([keep, 1 - keep]))
    rationale_logits, complement_logits = logits.chunk(2)
    one_class = torch.zeros_like(labels)                 # the mask has one column: the gold class
    regularizer = (R.size_regularizer(mask, real, one_class, weights)
                   + R.width_regularizer(width, real, weights)
                   + R.smoothness_regularizer(mask, real, weights))
    total = (weights.sufficiency * R.sufficiency_loss(rationale_logits, labels)
             + weights.complement * R.complement_loss(complement_logits, labels)
             + weights.regularizer * regularizer)
    return total, mask


def optimize_mask(model, ids, word_index, label, max_len, overlap, steps=300, lr=0.1, history=None):
    """Optimize a free gold-class mask for one document by Adam; return its word scores (N,).

    The mask starts where the model's rationale head starts (weight init_weight, width
    init_width at every token). `history`, when a list, receives the objective of every step.
    """
    model.eval()
    device = next(model.parameters()).device
    windows, batch, lengths = window_batch(ids, max_len, overlap, device)
    config = model.config
    fraction = (config.init_width - config.min_width) / (config.max_width - config.min_width)
    weight = torch.full((*batch.shape, 1), config.init_weight, device=device, requires_grad=True)
    raw_width = torch.full_like(weight, float(np.log(fraction / (1 - fraction))), requires_grad=True)
    optimizer = torch.optim.Adam([weight, raw_width], lr=lr)
    weights = R.LossWeights()
    for _ in range(steps):
        total, _ = mask_objective(model, batch, lengths, label, weight, raw_width, weights)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if history is not None:
            history.append(float(total.detach()))
    with torch.no_grad():
        _, mask = mask_objective(model, batch, lengths, label, weight, raw_width, weights)
    return token_scores_to_words(windows, mask[..., 0].cpu().numpy(), word_index)


# ----------------------------------------------------------------------------------------------
# Measurement


def per_document(method, model, encoded, examples, args, device):
    """Run a method on each document in turn; return (seconds of each document, scores of each)."""
    seconds, scores = [], []
    for (ids, word_index), example in zip(encoded, examples):
        elapsed, result = M.time_call(lambda: method(model, ids, word_index, example.label, args), device)
        seconds.append(elapsed)
        scores.append(np.asarray(result, dtype=np.float64))
    return seconds, scores


METHOD_FUNCTIONS = {
    "rationale (ours)": lambda model, ids, word_index, label, args: E.predict_documents(
        model, [(ids, word_index)], args.max_len, args.overlap, batch_size=args.batch_size)[0].word_scores[label],
    "gradient x input": lambda model, ids, word_index, label, args: E.gradient_x_input(
        model, ids, word_index, label, args.max_len, args.overlap),
    "integrated gradients": lambda model, ids, word_index, label, args: integrated_gradients(
        model, ids, word_index, label, args.max_len, args.overlap, args.ig_steps, args.batch_size),
    "occlusion": lambda model, ids, word_index, label, args: occlusion_scores(
        model, ids, word_index, label, args.max_len, args.overlap, args.batch_size),
    "mask optimization": lambda model, ids, word_index, label, args: optimize_mask(
        model, ids, word_index, label, args.max_len, args.overlap, args.marc_steps, args.marc_lr),
}


def run_methods(model, encoded, examples, args, device):
    """Return {method: (seconds list, scores list)}, one entry per document, for args.methods.

    Each method is called once per document, so that all are timed alike. Slow methods see only
    the first args.slow_docs documents. The first document is run once untimed beforehand.
    """
    results = {}
    for name in args.methods:
        count = min(args.slow_docs, len(examples)) if name in SLOW_METHODS else len(examples)
        print(f"running {name} on {count} documents", flush=True)
        per_document(METHOD_FUNCTIONS[name], model, encoded[:1], examples[:1], args, device)     # warm-up
        results[name] = per_document(METHOD_FUNCTIONS[name], model, encoded[:count], examples[:count], args, device)
    return results


def print_table(results, examples, title, count=None):
    """Print one markdown row per method: documents, mean seconds per document, the five metrics."""
    print(f"\n{title}\n")
    keys = [key for key, _ in E.COLUMNS[:5]]
    print("| method | documents | s/document | " + " | ".join(name for _, name in E.COLUMNS[:5]) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for method, (seconds, scores) in results.items():
        n = len(scores) if count is None else min(count, len(scores))
        metrics = E.average_rationale_metrics(scores[:n], [e.gold for e in examples[:n]])
        print(f"| {method} | {n} | {statistics.mean(seconds[:n]):.4f} | "
              + " | ".join(f"{metrics[key]:.3f}" for key in keys) + " |")


def print_target(results, examples):
    """Compare ours with Integrated Gradients on the documents both ran: speed-up and AUPRC."""
    ig_seconds, ig_scores = results["integrated gradients"]
    count = len(ig_scores)
    our_seconds, our_scores = results["rationale (ours)"]
    gold = [example.gold for example in examples[:count]]
    speedup = statistics.mean(ig_seconds) / statistics.mean(our_seconds[:count])
    ours_auprc = E.average_rationale_metrics(our_scores[:count], gold)["auprc"]
    ig_auprc = E.average_rationale_metrics(ig_scores, gold)["auprc"]
    verdict = "meets" if speedup >= TARGET_SPEEDUP and ours_auprc >= ig_auprc else "misses"
    print(f"\non {count} documents, ours is {speedup:.0f}x faster per document than Integrated Gradients, "
          f"AUPRC {ours_auprc:.3f} against {ig_auprc:.3f} ({verdict} the target: at least "
          f"{TARGET_SPEEDUP:.0f}x faster with at least its AUPRC)")


def parse_methods(text):
    names = {"ours": "rationale (ours)", "gxi": "gradient x input", "ig": "integrated gradients",
             "occlusion": "occlusion", "marc": "mask optimization"}
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in names]
    if unknown:
        raise SystemExit(f"error: --methods names unknown methods {', '.join(unknown)}; "
                         f"choose from {', '.join(names)}")
    return [names[part] for part in chosen]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="best.pt or last.pt of a training run")
    parser.add_argument("--data-dir", help="dataset folder, when it moved since training")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, one per core)")
    parser.add_argument("--docs", type=int, default=199, help="test documents for every method (default 199)")
    parser.add_argument("--slow-docs", type=int, default=4,
                        help="first N of those documents for Integrated Gradients, occlusion and mask "
                             "optimization (default 4; pass 199 for the full measurement)")
    parser.add_argument("--methods", default="ours,gxi,ig,occlusion,marc",
                        help="comma-separated subset of ours, gxi, ig, occlusion, marc")
    parser.add_argument("--ig-steps", type=int, default=50, help="Integrated Gradients trapezoid intervals")
    parser.add_argument("--marc-steps", type=int, default=300, help="Adam steps of mask optimization")
    parser.add_argument("--marc-lr", type=float, default=0.1, help="Adam learning rate of mask optimization")
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per forward pass")
    args = parser.parse_args(argv)
    M.set_threads(args.threads)
    for option in ("docs", "slow_docs", "ig_steps", "batch_size"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")
    args.methods = parse_methods(args.methods)
    device = torch.device(args.device)
    try:
        model, tokenizer, checkpoint = train.load_checkpoint(args.checkpoint, device)
        _, examples = E.load_split(checkpoint, "test", args.data_dir)
    except (ValueError, subwords.DataError) as error:
        raise SystemExit(f"error: {error}")
    examples = examples[:args.docs]
    args.max_len, args.overlap = checkpoint["config"]["max_len"], checkpoint["config"]["overlap"]
    encoded = subwords.encode_documents(tokenizer, [e.words for e in examples])
    print(M.describe_machine(device), flush=True)

    results = run_methods(model, encoded, examples, args, device)
    print_table(results, examples, f"Every method on its documents ({args.checkpoint}):")
    count = min(args.slow_docs, len(examples))
    if any(name in SLOW_METHODS for name in results) and count < len(examples):
        print_table(results, examples, f"Every method on the first {count} documents:", count)
    if "rationale (ours)" in results and "integrated gradients" in results:
        print_target(results, examples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
