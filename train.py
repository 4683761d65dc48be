"""Train the self-explaining classifier and evaluate its rationales against human ones.

    python train.py                                   # movie reviews if available, else synthetic
    python train.py --data-dir ../shared/data/movies  # an ERASER folder already on disk
    python train.py --dataset synthetic               # the offline demo task
    python train.py --resume runs/movies/last.pt      # continue an interrupted run

Each step reads one random window of every document in the batch. The first warm-up epochs
train the classifier alone, then the full single-model three-player objective of rationale.py.
At the end the best checkpoint is evaluated on the test split.
"""
import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import data as D
import evaluate as E
import rationale as R
import subwords

PRESETS = {
    # Sized so that the default run on movie reviews takes about 9 minutes on 2 CPU cores
    # (measured in docs/benchmarks.md).
    "cpu": dict(vocab_size=8000, d_model=128, n_layers=2, n_heads=4, d_mlp=256, max_len=256, overlap=32,
                epochs=12, warmup_epochs=2, batch_size=32, lr=1e-3, selector_grad_scale=0.1),
    # One GPU: a wider and deeper model over longer windows for more epochs.
    "gpu": dict(vocab_size=16000, d_model=256, n_layers=4, n_heads=8, d_mlp=1024, max_len=512, overlap=64,
                epochs=40, warmup_epochs=3, batch_size=32, lr=5e-4, selector_grad_scale=0.1),
}
LOSS_FIELDS = ("classification", "sufficiency", "complement", "regularizer")
CHECKPOINT_VERSION = 1


# ----------------------------------------------------------------------------------------------
# Configuration


def build_parser():
    parser = argparse.ArgumentParser(description="Train the self-explaining transformer classifier.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--dataset", default="auto", choices=["auto", "movies", "synthetic", "eraser"],
        help="auto: ERASER movie reviews if cached or downloadable, else the synthetic task; "
             "eraser: any ERASER-layout folder given by --data-dir")
    add("--data-dir", help="folder with the ERASER movie reviews (docs/, train.jsonl, ...); skips the download")
    add("--cache-dir", default=str(D.DEFAULT_CACHE_DIR),
        help="where the downloaded movie reviews are kept (also set by RATIONALE_CACHE)")
    add("--synthetic-docs", type=int, default=600,
        help="training documents of the synthetic task (validation and test get a quarter each)")
    add("--out", help="output folder for checkpoints, metrics and pictures (default runs/DATASET)")
    add("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    add("--preset", default="cpu", choices=sorted(PRESETS), help="default sizes for a CPU or one GPU")
    add("--vocab-size", type=int, help="BPE vocabulary size, special tokens included")
    add("--d-model", type=int, help="model width")
    add("--n-layers", type=int, help="transformer blocks")
    add("--n-heads", type=int, help="attention heads")
    add("--d-mlp", type=int, help="hidden width of each block's MLP")
    add("--dropout", type=float, default=0.1, help="dropout probability")
    add("--max-len", type=int, help="window length in subword tokens, [CLS] included")
    add("--overlap", type=int, help="subword tokens shared by consecutive windows at evaluation")
    add("--epochs", type=int, help="passes over the training documents")
    add("--warmup-epochs", type=int, help="first epochs that train the classifier alone")
    add("--batch-size", type=int, help="documents per step (one random window each)")
    add("--lr", type=float, help="peak AdamW learning rate (linear warm-up, cosine decay to 10%%)")
    add("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    add("--clip", type=float, default=1.0, help="gradient norm clipping threshold")
    add("--selector-grad-scale", type=float,
        help="share of the rationale losses' gradient that reaches the shared encoder through the "
             "rationale head (1 = the method as published, 0 = the encoder learns from classification only)")
    add("--blank-rate", type=float, default=0.2,
        help="each training text gets a fraction of its tokens, drawn from U(0, blank-rate), replaced by the "
             "blank token, so the classifier learns that blanks carry no evidence")
    for name, value in dataclasses.asdict(R.LossWeights()).items():
        if name != "class_weights":
            add("--w-" + name.replace("_", "-"), type=float, default=value, help=f"loss weight {name}")
    add("--balance-classes", action="store_true", help="weight the classification loss by inverse class frequency")
    add("--select", default="accuracy+faithfulness", choices=["accuracy+faithfulness", "auprc+3f1", "last"],
        help="checkpoint selection on validation: accuracy + p_y(rationale) - p_y(complement) (no "
             "rationale annotations used), the authors' AUPRC + 3 x Token-F1 (uses them), or the last epoch")
    add("--seed", type=int, default=0, help="random seed for initialisation, windows, blanks and dropout")
    add("--log-every", type=int, default=10, help="training steps between progress lines")
    add("--heatmaps", type=int, default=3, help="test documents drawn as pictures at the end")
    add("--no-faithfulness", action="store_true", help="skip sufficiency and comprehensiveness at the end (faster)")
    add("--resume", metavar="CHECKPOINT", help="continue the run saved in this checkpoint (its last.pt)")
    add("--interrupt-after", type=int, help=argparse.SUPPRESS)   # tests: act as if Ctrl-C came after N steps
    return parser


def resolve_config(args):
    """Fill the options left unset from the preset; return a plain dict (saved in checkpoints)."""
    config = vars(args).copy()
    for key, value in PRESETS[args.preset].items():
        if config.get(key) is None:
            config[key] = value
    if config["warmup_epochs"] >= config["epochs"] and config["epochs"] > 0:
        print(f"note: warmup_epochs={config['warmup_epochs']} >= epochs={config['epochs']}, "
              "so the rationale objective never trains", flush=True)
    for key in ("resume", "interrupt_after"):
        config.pop(key)
    return config


def loss_weights(config, dataset):
    fields = {name: config["w_" + name] for name in dataclasses.asdict(R.LossWeights()) if name != "class_weights"}
    if config["balance_classes"]:
        counts = np.bincount([e.label for e in dataset.train], minlength=len(dataset.classes))
        fields["class_weights"] = (counts.sum() / (len(counts) * np.maximum(counts, 1))).tolist()
    return R.LossWeights(**fields)


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {name} requested but CUDA is not available; use --device cpu")
    return device


# ----------------------------------------------------------------------------------------------
# Data


def load_dataset(config):
    """Load the dataset the configuration names; `auto` falls back to the synthetic task."""
    name = config["dataset"]
    if name == "synthetic":
        return synthetic(config)
    if name == "eraser":
        if not config["data_dir"]:
            raise SystemExit("error: --dataset eraser needs --data-dir pointing to an ERASER-layout folder")
        return D.load_eraser(config["data_dir"])
    try:
        return D.load_movies(config["data_dir"], Path(config["cache_dir"]))
    except D.DataError as error:
        if name == "movies" or config["data_dir"]:
            raise SystemExit(f"error: {error}")
        print(f"note: the movie reviews are unavailable ({error}), so this run uses the synthetic "
              "task; pass --data-dir with an extracted ERASER movies folder to train on real reviews",
              flush=True)
        return synthetic(config)


def synthetic(config):
    n = config["synthetic_docs"]
    return D.make_synthetic(seed=config["seed"], n_train=n, n_val=max(1, n // 4), n_test=max(1, n // 4))


def encode_splits(tokenizer, dataset):
    """Return {split: list of (ids, word_index)} for train, val and test."""
    return {split: subwords.encode_documents(tokenizer, [e.words for e in getattr(dataset, split)])
            for split in D.SPLITS}


def training_batches(encoded, config, epoch):
    """Yield (batch, n_batches, document indices, (ids, lengths)) for one epoch, deterministically.

    The order of documents depends on (seed, epoch) and the window offsets on (seed, step), so
    a run resumed at any batch draws exactly the numbers an uninterrupted run would.
    """
    order = np.random.default_rng([config["seed"], epoch]).permutation(len(encoded))
    n_batches = math.ceil(len(order) / config["batch_size"])
    for batch in range(n_batches):
        rng = np.random.default_rng([config["seed"], epoch, batch, 1])
        members = order[batch * config["batch_size"]:(batch + 1) * config["batch_size"]]
        windows = [subwords.random_window(encoded[d][0], config["max_len"], rng) for d in members]
        yield batch, n_batches, members, subwords.collate(windows)


# ----------------------------------------------------------------------------------------------
# Checkpoints


def atomic_torch_save(obj, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_checkpoint(path, state, model, optimizer, tokenizer, config, classes):
    """Write a self-contained checkpoint: weights, optimizer, configuration, tokenizer, progress."""
    atomic_torch_save({
        "version": CHECKPOINT_VERSION,
        "config": config,
        "model_config": dataclasses.asdict(model.config),
        "classes": list(classes),
        "tokenizer": tokenizer.to_str(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "state": state,
    }, path)


def build_model(config, vocab_size, n_classes, device):
    """Build the RationaleTransformer that `config` (a resolved train.py configuration) describes."""
    return R.RationaleTransformer(R.ModelConfig(
        vocab_size=vocab_size, n_classes=n_classes, max_len=config["max_len"], d_model=config["d_model"],
        n_layers=config["n_layers"], n_heads=config["n_heads"], d_mlp=config["d_mlp"],
        dropout=config["dropout"], blank_id=subwords.MASK_ID,
        selector_grad_scale=config["selector_grad_scale"])).to(device)


def load_checkpoint(path, device="cpu"):
    """Load a checkpoint written by train.py; return (model, tokenizer, checkpoint dict).

    Raises ValueError naming the file when it is missing, corrupt or not one of ours.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} not found; pass the best.pt or last.pt of a training run")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:   # torch raises several types for truncated or foreign files
        raise ValueError(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); "
                         "it is corrupt or not a torch file, so train again or pick another file") from error
    missing = [key for key in ("version", "config", "model_config", "classes", "tokenizer", "model")
               if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        raise ValueError(f"checkpoint {path} is not a rationale checkpoint (missing {', '.join(missing)})")
    if checkpoint["version"] != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} has format version {checkpoint['version']}, "
                         f"this code reads version {CHECKPOINT_VERSION}")
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_str(checkpoint["tokenizer"])
    model = R.RationaleTransformer(R.ModelConfig(**checkpoint["model_config"]))
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {path} does not match its model configuration: {error}") from error
    return model.to(device).eval(), tokenizer, checkpoint


# ----------------------------------------------------------------------------------------------
# Training


class InterruptGuard:
    """Turn the first Ctrl-C into a request to stop after the current step; a second one aborts."""

    def __init__(self, after_steps=None):
        self.requested = False
        self.after_steps = after_steps

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: finishing the current step, then saving a resumable checkpoint "
              "(press Ctrl-C again to abort without saving)", flush=True)

    def check(self, steps_done):
        if self.after_steps is not None and steps_done >= self.after_steps:
            self.requested = True
        return self.requested


def learning_rate(config, step, total_steps):
    """Linear warm-up over the first 5% of steps, then cosine decay to 10% of the peak."""
    warmup = max(1, total_steps // 20)
    if step < warmup:
        return config["lr"] * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return config["lr"] * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_step(model, optimizer, ids, lengths, labels, config, weights, warmup):
    """Take one optimizer step; return the loss parts and the per-class mask statistics."""
    ids = R.blank_random_tokens(ids, lengths, config["blank_rate"], model.config.blank_id)
    total, parts, output = R.rationale_loss(model, ids, lengths, labels, weights, warmup)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config["clip"])
    optimizer.step()
    real = R.real_token_mask(lengths, ids.size(1))[..., None]                    # (B, T, 1)
    count = real.sum().clamp(min=1)
    mask = output.mask.detach()
    mean = (mask * real).sum((0, 1)) / count                                     # (C,)
    above = ((mask > 0.5) & real).sum((0, 1)) / count                            # (C,)
    return {name: float(value) for name, value in parts.items()}, mean.cpu(), above.cpu()


def progress_line(epoch, batch, n_batches, sums, count, classes, tokens_per_second, elapsed):
    losses = " ".join(f"{name[:4]} {sums[name] / count:.3f}" for name in LOSS_FIELDS if name in sums)
    means = " ".join(f"{c} {m:.2f}/{a:.2f}" for c, m, a in zip(classes, sums["mask"] / count, sums["above"] / count))
    return (f"epoch {epoch + 1} step {batch + 1}/{n_batches} | {losses} | mask mean/>0.5 {means} | "
            f"{tokens_per_second:,.0f} tok/s | {format_seconds(elapsed)}")


def format_seconds(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


def validate(model, examples, encoded, config, n_classes):
    """Measure accuracy, soft faithfulness and rationale agreement on the validation split."""
    labels = [e.label for e in examples]
    predictions = E.predict_documents(model, encoded, config["max_len"], config["overlap"], labels)
    predicted = [int(np.argmax(p.probabilities)) for p in predictions]
    agreement = E.average_rationale_metrics([p.word_scores[e.label] for p, e in zip(predictions, examples)],
                                            [e.gold for e in examples])
    metrics = {
        "accuracy": E.accuracy(predicted, labels),
        "p_rationale": float(np.mean([p.rationale_probability for p in predictions])),
        "p_complement": float(np.mean([p.complement_probability for p in predictions])),
        "auprc": agreement["auprc"],
        "token_f1": agreement["token_f1"],
    }
    metrics["faithfulness"] = metrics["p_rationale"] - metrics["p_complement"]
    return metrics


def selection_score(metrics, rule):
    if rule == "auprc+3f1":
        return metrics["auprc"] + 3 * metrics["token_f1"]
    if rule == "last":
        return 0.0
    return metrics["accuracy"] + metrics["faithfulness"]


def run_epochs(run, interrupt):
    """Train from run["state"] to the last epoch; return False if interrupted (checkpoint saved)."""
    config, model, optimizer, state = run["config"], run["model"], run["optimizer"], run["state"]
    encoded, examples, classes = run["encoded"], run["dataset"].train, run["dataset"].classes
    weights, device = run["weights"], run["device"]
    steps_per_epoch = math.ceil(len(examples) / config["batch_size"])
    total_steps = steps_per_epoch * config["epochs"]
    steps_this_session, clock = 0, time.perf_counter()
    for epoch in range(state["epoch"], config["epochs"]):
        warmup = epoch < config["warmup_epochs"]
        model.train()
        sums, count, tokens, window_start = {}, 0, 0, time.perf_counter()
        for batch, n_batches, members, (ids, lengths) in training_batches(encoded["train"], config, epoch):
            if batch < state["batch"]:
                continue
            torch.manual_seed(config["seed"] * 1_000_003 + state["step"])      # dropout and blanks of this step
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, state["step"], total_steps)
            labels = torch.tensor([examples[d].label for d in members])
            parts, mean, above = train_step(model, optimizer, ids.to(device), lengths.to(device),
                                            labels.to(device), config, weights, warmup)
            for name, value in [*parts.items(), ("mask", mean), ("above", above)]:
                sums[name] = sums.get(name, 0) + value
            count, tokens = count + 1, tokens + int(lengths.sum())
            state["step"], state["batch"], steps_this_session = state["step"] + 1, batch + 1, steps_this_session + 1
            if (batch + 1) % config["log_every"] == 0 or batch + 1 == n_batches:
                now = time.perf_counter()
                print(progress_line(epoch, batch, n_batches, sums, count, classes, tokens / (now - window_start),
                                    state["elapsed"] + now - clock), flush=True)
                sums, count, tokens, window_start = {}, 0, 0, now
            if interrupt.check(steps_this_session) and batch + 1 < n_batches:
                state["elapsed"] += time.perf_counter() - clock
                save_resumable(run, announce=True)
                return False
        end_of_epoch(run, epoch, warmup)
        state["elapsed"] += time.perf_counter() - clock
        clock = time.perf_counter()
        stopping = interrupt.check(steps_this_session) and epoch + 1 < config["epochs"]
        save_resumable(run, announce=stopping)
        if stopping:
            return False
    return True


def save_resumable(run, announce):
    """Save last.pt with the optimizer state; with `announce`, print how to resume."""
    path = Path(run["config"]["out"]) / "last.pt"
    save_checkpoint(path, run["state"], run["model"], run["optimizer"], run["tokenizer"], run["config"],
                    run["dataset"].classes)
    if announce:
        print(f"saved a resumable checkpoint to {path}; continue with python train.py --resume {path}", flush=True)


def end_of_epoch(run, epoch, warmup):
    """Validate, keep the best checkpoint, and move the state to the next epoch."""
    config, state, model = run["config"], run["state"], run["model"]
    metrics = validate(model, run["dataset"].val, run["encoded"]["val"], config, len(run["dataset"].classes))
    score = selection_score(metrics, config["select"])
    # During warm-up the masks are untrained, so those epochs never count as best.
    eligible = not warmup or config["warmup_epochs"] >= config["epochs"]
    improved = eligible and (state["best_score"] is None or score > state["best_score"] or config["select"] == "last")
    if improved:
        state["best_score"], state["best_epoch"] = score, epoch + 1
    state["history"].append({"epoch": epoch + 1, **metrics, "score": score})
    state["epoch"], state["batch"] = epoch + 1, 0
    print(f"val epoch {epoch + 1} | accuracy {metrics['accuracy']:.3f} | p_y rationale {metrics['p_rationale']:.3f} "
          f"complement {metrics['p_complement']:.3f} | AUPRC {metrics['auprc']:.3f} Token-F1 {metrics['token_f1']:.3f} "
          f"(paper protocol, gold class) | {config['select']} {score:.3f}{' (best)' if improved else ''}", flush=True)
    if improved:
        save_checkpoint(Path(config["out"]) / "best.pt", state, model, None, run["tokenizer"], config,
                        run["dataset"].classes)


# ----------------------------------------------------------------------------------------------
# Final evaluation and the command line


def atomic_write_text(path, text):
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def final_evaluation(config, dataset, device):
    """Evaluate best.pt on the test split; print the table and write metrics, predictions, pictures."""
    out = Path(config["out"])
    model, tokenizer, checkpoint = load_checkpoint(out / "best.pt", device)
    encoded = subwords.encode_documents(tokenizer, [e.words for e in dataset.test])
    start = time.perf_counter()
    classification, table, predictions = E.evaluate_split(
        model, dataset.test, encoded, len(dataset.classes), config["max_len"], config["overlap"],
        with_faithfulness=not config["no_faithfulness"], seed=config["seed"])
    records = E.eraser_predictions(dataset.test, predictions, dataset.classes)
    E.write_eraser_predictions(out / "predictions_test.jsonl", records)
    eraser = E.eraser_scores(records, {e.doc_id: e.gold for e in dataset.test})
    E.print_report(f"\ntest split, best checkpoint (epoch {checkpoint['state']['best_epoch']}), "
                   f"{len(dataset.test)} documents, evaluated in {format_seconds(time.perf_counter() - start)}",
                   classification, table, eraser)
    metrics = {"dataset": dataset.name, "split": "test", "best_epoch": checkpoint["state"]["best_epoch"],
               "classification": classification, "paper_protocol": table, "eraser_protocol": eraser,
               "history": checkpoint["state"]["history"], "config": config}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    draw_examples(out, dataset, predictions, config["heatmaps"])
    print(f"wrote {out / 'metrics.json'}, {out / 'predictions_test.jsonl'} and pictures in {out}")
    return metrics


def draw_examples(out, dataset, predictions, count):
    """Draw the text view (every class) and an HTML page for the first `count` test documents."""
    import viz
    for example, prediction in list(zip(dataset.test, predictions))[:count]:
        predicted = int(np.argmax(prediction.probabilities))
        name = Path(example.doc_id).stem
        common = dict(gold=example.gold if example.class_gold is None else example.class_gold,
                      predicted=predicted, probability=float(prediction.probabilities[predicted]))
        viz.plot_text_view(example.words, prediction.word_scores, dataset.classes, out / f"{name}.png", **common)
        viz.write_html(out / f"{name}.html", example.words, prediction.word_scores, dataset.classes, **common)


def start_run(args, device):
    """Build the run from the command line, or restore it from --resume."""
    if args.resume:
        model, tokenizer, checkpoint = load_checkpoint(args.resume, device)
        if checkpoint.get("optimizer") is None:
            raise SystemExit(f"error: {args.resume} has no optimizer state; resume from the run's last.pt")
        config = checkpoint["config"]
        config["out"] = str(Path(args.resume).parent)
        state = checkpoint["state"]
        print(f"resuming {args.resume} at epoch {state['epoch'] + 1}, batch {state['batch']} "
              "with the saved configuration", flush=True)
    else:
        config = resolve_config(args)
        model = tokenizer = checkpoint = None
        state = {"epoch": 0, "batch": 0, "step": 0, "elapsed": 0.0, "best_score": None, "best_epoch": None,
                 "history": []}
    dataset = load_dataset(config)
    if config["dataset"] == "auto":      # record what auto found, so that --resume loads the same data
        config["dataset"] = "synthetic" if dataset.name == "synthetic" else "movies"
    if config["out"] is None:
        config["out"] = str(Path("runs") / config["dataset"])
    if tokenizer is None:
        tokenizer = subwords.train_tokenizer((e.words for e in dataset.train), config["vocab_size"])
        torch.manual_seed(config["seed"])
        model = build_model(config, tokenizer.get_vocab_size(), len(dataset.classes), device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    return {"config": config, "dataset": dataset, "tokenizer": tokenizer, "model": model, "optimizer": optimizer,
            "state": state, "device": device, "weights": loss_weights(config, dataset),
            "encoded": encode_splits(tokenizer, dataset)}


def main(argv=None):
    args = build_parser().parse_args(argv)
    device = pick_device(args.device)
    try:
        run = start_run(args, device)
    except (subwords.DataError, ValueError) as error:
        raise SystemExit(f"error: {error}")
    config, dataset, model = run["config"], run["dataset"], run["model"]
    Path(config["out"]).mkdir(parents=True, exist_ok=True)
    subwords.save_tokenizer(run["tokenizer"], Path(config["out"]) / "tokenizer.json")
    print("configuration: " + json.dumps({**config, "device": str(device)}), flush=True)
    n_parameters = sum(p.numel() for p in model.parameters())
    print(f"dataset {dataset.name}: {len(dataset.train)} train / {len(dataset.val)} val / {len(dataset.test)} test "
          f"documents, classes {', '.join(dataset.classes)}; model {n_parameters:,} parameters on {device}", flush=True)
    with InterruptGuard(args.interrupt_after) as interrupt:
        if not run_epochs(run, interrupt):
            return 130
    final_evaluation(config, dataset, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
