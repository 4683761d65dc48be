"""Compare the training cost of one self-explaining model against the classic three models.

Arrangements, all with the settings of a default `python train.py` run (the sizes of
train.PRESETS["cpu"]) and the loss weights of rationale.LossWeights, trained on the same batches
of real movie-review windows:

(a) classification only: train.train_step with warmup=True, that is 2 CE(z(x), y).
(b) our single-model objective: train.train_step, that is rationale.rationale_loss. The model's
    own weights, detached and with dropout off, score the rationale and complement inputs.
(c) three models: a selector, a predictor and a complement predictor, three separate
    RationaleTransformers of the same sizes. Each player minimizes its own objective:
    - selector S (encoder, classifier and rationale head with the mask kernel of rationale.py):
      2 CE(z_S(x), y) + 5 L_suff + 5 L_comp + 3 (size + width + smoothness), the same terms as
      (b). L_suff and L_comp reach S only through its masks. The classification term keeps S a
      classifier of the full text (an introspective selector), which is also the classifier
      whose accuracy is reported;
    - predictor P (its logits only): 5 L_suff = 5 CE(z_P(R_y), y) on the rationale input. P and
      S cooperate, so one backward pass of S's objective also gives P its gradient;
    - complement predictor Q (its logits only): 5 CE(z_Q(K_y), y) on the complement input. Q is
      the adversary: it learns to find the evidence the selector left in the complement, while
      the selector's L_comp = relu(p_y(K_y) - 1/C) pushes that evidence out. Q's objective is
      backpropagated separately, into Q's weights only.
    P and Q read the same blank-noised ids and the same soft masks (blending toward [MASK]) as
    the scorer of (b), with dropout on because they are trained. During the warm-up epochs only
    S trains, on 2 CE; when the game starts P and Q are set to copies of S, so that they start
    where the frozen scorer of (b) starts. Each network's gradient norm is clipped separately.

Timing mode (default) alternates (a), (b), (c) step by step on the same batches, prints the
median seconds per step, the peak memory of each arrangement in a fresh subprocess, the
parameter counts and the ratios (b)/(a) and (b)/(c):

    python bench/three_player.py [--data-dir ../shared/data/movies] [--repeats 7]

Training mode trains (b) and (c) and reports test accuracy, AUPRC, Token-F1 of the last epoch
and the range of each class's mean mask over the game's steps:

    python bench/three_player.py --train --seeds 0,1,2      # 3 seeds of (b) and (c): about 1.5 h on 2 cores
    python bench/three_player.py --train --epochs 2 --warmup-epochs 1 --train-docs 64 --test-docs 20
"""
import argparse
import itertools
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import evaluate as E  # noqa: E402
import machine as M  # noqa: E402
import rationale as R  # noqa: E402
import subwords  # noqa: E402
import train  # noqa: E402

ARRANGEMENTS = {"a": "classification only", "b": "single model (ours)", "c": "three models"}
TARGET_RATIO = 0.6          # (b) / (c) seconds per step


# ----------------------------------------------------------------------------------------------
# The three-model arrangement


class ThreePlayers(torch.nn.Module):
    """Selector, predictor and complement predictor: three RationaleTransformers of one size."""

    def __init__(self, config, vocab_size, n_classes, device, seed):
        super().__init__()
        self.selector = M.build_model(config, vocab_size, n_classes, device, seed)
        self.predictor = M.build_model(config, vocab_size, n_classes, device, seed + 1)
        self.complement_predictor = M.build_model(config, vocab_size, n_classes, device, seed + 2)

    def start_game(self):
        """Copy the selector's weights into both predictors (called when warm-up ends)."""
        self.predictor.load_state_dict(self.selector.state_dict())
        self.complement_predictor.load_state_dict(self.selector.state_dict())


def three_player_losses(players, ids, lengths, labels, weights):
    """Compute the selector's objective and the complement predictor's objective for one batch.

    Returns (selector_loss, adversary_loss, parts, output): selector_loss also trains the
    predictor (it contains w_suff L_suff), adversary_loss = w_comp CE(z_Q(K_y), y) trains the
    complement predictor, parts contains the detached terms and output is the selector's
    ModelOutput on the full text.
    """
    output = players.selector(ids, lengths)
    class_weights = None
    if weights.class_weights is not None:
        class_weights = torch.tensor(weights.class_weights, device=ids.device, dtype=output.logits.dtype)
    clf = R.classification_loss(output.logits, labels, class_weights)

    keep = R.gold_class_mask(output.mask, labels)                          # (B, T)
    rationale_logits = players.predictor(ids, lengths, keep=keep).logits     # (B, C)
    complement_logits = players.complement_predictor(ids, lengths, keep=1 - keep).logits
    suff = R.sufficiency_loss(rationale_logits, labels)
    comp = R.complement_loss(complement_logits, labels)

    real = R.real_token_mask(lengths, ids.size(1))
    regularizer = (R.size_regularizer(output.mask, real, labels, weights)
                   + R.width_regularizer(output.width, real, weights)
                   + R.smoothness_regularizer(output.mask, real, weights))
    selector_loss = (weights.classification * clf + weights.sufficiency * suff
                     + weights.complement * comp + weights.regularizer * regularizer)
    adversary_loss = weights.complement * F.cross_entropy(complement_logits, labels)
    parts = {"classification": clf, "sufficiency": suff, "complement": comp, "regularizer": regularizer}
    return selector_loss, adversary_loss, {k: v.detach() for k, v in parts.items()}, output


def backpropagate_players(players, selector_loss, adversary_loss):
    """Accumulate each player's gradient of its own objective only.

    The selector and the predictor get the gradient of selector_loss, the complement predictor
    that of adversary_loss. The graph through the complement predictor is used twice: first
    for the selector's gradient through the complement input, then for the adversary's weights.
    """
    cooperating = [*players.selector.parameters(), *players.predictor.parameters()]
    selector_loss.backward(inputs=cooperating, retain_graph=True)
    adversary_loss.backward(inputs=list(players.complement_predictor.parameters()))


def three_player_step(players, optimizer, ids, lengths, labels, config, weights, warmup):
    """Take one optimizer step of the three-model game; return (parts, mean mask per class (C,)).

    During warm-up only the selector trains, on w_clf CE. Otherwise the selector's objective is
    backpropagated into the selector and the predictor, the adversary's into the complement
    predictor alone, and each network's gradient is clipped to config["clip"]. The mean mask is
    the selector's, over the batch's real tokens, as train.train_step reports it.
    """
    ids = R.blank_random_tokens(ids, lengths, config["blank_rate"], players.selector.config.blank_id)
    optimizer.zero_grad(set_to_none=True)
    if warmup:
        total, parts, output = R.rationale_loss(players.selector, ids, lengths, labels, weights, warmup=True)
        total.backward()
    else:
        selector_loss, adversary_loss, parts, output = three_player_losses(players, ids, lengths, labels, weights)
        backpropagate_players(players, selector_loss, adversary_loss)
    for network in (players.selector, players.predictor, players.complement_predictor):
        torch.nn.utils.clip_grad_norm_(network.parameters(), config["clip"])
    optimizer.step()
    real = R.real_token_mask(lengths, ids.size(1))[..., None]                    # (B, T, 1)
    mean = (output.mask.detach() * real).sum((0, 1)) / real.sum().clamp(min=1)   # (C,)
    return {name: float(value) for name, value in parts.items()}, mean.cpu()


# ----------------------------------------------------------------------------------------------
# One training step of each arrangement behind one interface


class Arrangement:
    """One of (a), (b), (c): its networks, its AdamW optimizer and its training step."""

    def __init__(self, name, config, vocab_size, n_classes, device, seed, attention_dropout=None):
        if name not in ARRANGEMENTS:
            raise ValueError(f"arrangement {name!r} is unknown; choose one of {', '.join(ARRANGEMENTS)}")
        self.name, self.config, self.weights = name, config, R.LossWeights()
        if name == "c":
            self.networks = ThreePlayers(config, vocab_size, n_classes, device, seed).train()
        else:
            self.networks = M.build_model(config, vocab_size, n_classes, device, seed).train()
        for model in self.models():
            M.set_attention_dropout(model, attention_dropout)
        self.optimizer = torch.optim.AdamW(self.networks.parameters(), lr=config["lr"],
                                           weight_decay=config["weight_decay"])

    def models(self):
        """Return the RationaleTransformers of this arrangement: one, or the three players."""
        return list(self.networks.children()) if self.name == "c" else [self.networks]

    @property
    def classifier(self):
        """The model that classifies the full text and gives the masks: the selector in (c)."""
        return self.networks.selector if self.name == "c" else self.networks

    def parameter_count(self):
        return sum(p.numel() for p in self.networks.parameters())

    def step(self, ids, lengths, labels, warmup=False):
        """Take one training step; return (loss parts, mean mask per class (C,))."""
        if self.name == "c":
            return three_player_step(self.networks, self.optimizer, ids, lengths, labels, self.config,
                                     self.weights, warmup)
        parts, mean, _ = train.train_step(self.networks, self.optimizer, ids, lengths, labels, self.config,
                                          self.weights, warmup=warmup or self.name == "a")
        return parts, mean


# ----------------------------------------------------------------------------------------------
# Timing and memory


def time_interleaved(arrangements, batches, device):
    """Time every arrangement's step on each batch in turn; the first round is an untimed warm-up.

    Returns {name: list of seconds}.
    """
    seconds = {name: [] for name in arrangements}
    for k, (ids, lengths, labels) in enumerate(batches):
        ids, lengths, labels = ids.to(device), lengths.to(device), labels.to(device)
        for name, arrangement in arrangements.items():
            elapsed, _ = M.time_call(lambda: arrangement.step(ids, lengths, labels), device)
            if k > 0:
                seconds[name].append(elapsed)
    return seconds


def peak_resident_mib():
    """Return this process's peak resident set size in MiB.

    Linux's VmHWM belongs to the current program image. ru_maxrss is not used there because a
    child started by fork and exec inherits the parent's peak in it, which would hide the
    child's own. Elsewhere ru_maxrss is read as KiB (macOS reports bytes).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory_here(name, batches_file, device, steps):
    """Run `steps` training steps of one arrangement in this process; return peak memory in MiB.

    On the CPU the figures are the process's peak resident set size before the first step and
    at the end. On a GPU, torch.cuda.max_memory_allocated over the steps is added.
    """
    saved = torch.load(batches_file, weights_only=True)
    config = M.default_training_config(saved["seed"])
    arrangement = Arrangement(name, config, saved["vocab_size"], saved["n_classes"], device, saved["seed"],
                              saved["attention_dropout"])
    before = peak_resident_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for k in range(steps):
        ids, lengths, labels = (t.to(device) for t in saved["batches"][k % len(saved["batches"])])
        arrangement.step(ids, lengths, labels)
    result = {"rss_before": before, "rss_peak": peak_resident_mib()}
    if device.type == "cuda":
        result["cuda_peak"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    return result


def measure_memory(name, batches_file, device, steps):
    """Run measure_memory_here in a fresh Python process, so that each peak is its own."""
    command = [sys.executable, __file__, "--memory-of", name, "--batches-file", str(batches_file),
               "--device", str(device), "--memory-steps", str(steps), "--threads", str(torch.get_num_threads())]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"memory measurement of arrangement {name} failed:\n{finished.stderr}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def run_timing(args, device):
    config = M.default_training_config(args.seed)
    dataset, tokenizer = M.load_movies(args.data_dir, config)
    batches = M.movie_batches(dataset, tokenizer, config, args.repeats + 1)
    vocab_size, n_classes = tokenizer.get_vocab_size(), len(dataset.classes)
    arrangements = {name: Arrangement(name, config, vocab_size, n_classes, device, args.seed, args.attention_dropout)
                    for name in ARRANGEMENTS}
    print(M.describe_machine(device), flush=True)
    print(f"{len(batches)} batches of {batches[0][0].size(0)} windows of up to {config['max_len']} tokens "
          f"(the first is an untimed warm-up); d_model {config['d_model']}, {config['n_layers']} layers, "
          f"MLP {config['d_mlp']}", flush=True)
    seconds = time_interleaved(arrangements, batches, device)

    with tempfile.TemporaryDirectory() as folder:
        batches_file = Path(folder) / "batches.pt"
        torch.save({"seed": args.seed, "vocab_size": vocab_size, "n_classes": n_classes,
                    "attention_dropout": args.attention_dropout, "batches": batches[:args.memory_steps]}, batches_file)
        memory = {name: measure_memory(name, batches_file, device, args.memory_steps) for name in ARRANGEMENTS}
    print_timing_table(seconds, memory, arrangements, device)
    if args.profile:
        profile_arrangements(arrangements, batches[0], device)
    return 0


def profile_arrangements(arrangements, batch, device):
    """Print machine.py's profiler breakdown of one step of each arrangement."""
    ids, lengths, labels = (t.to(device) for t in batch)
    for name, arrangement in arrangements.items():
        print(f"\n({name}) {ARRANGEMENTS[name]}:")
        M.print_breakdown(*M.profile_step(lambda: arrangement.step(ids, lengths, labels), arrangement.models(),
                                          device))


def print_timing_table(seconds, memory, arrangements, device):
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    repeats = len(next(iter(seconds.values())))
    memory_column = "peak GPU memory MiB" if device.type == "cuda" else "peak RSS MiB | RSS increase during steps MiB"
    print(f"\n| arrangement | s/step, median of {repeats} | min-max | {memory_column} | parameters |")
    print("|---|---|---|---|---|" + ("" if device.type == "cuda" else "---|"))
    for name, label in ARRANGEMENTS.items():
        if device.type == "cuda":
            cells = f"{memory[name]['cuda_peak']:.0f}"
        else:
            cells = f"{memory[name]['rss_peak']:.0f} | {memory[name]['rss_peak'] - memory[name]['rss_before']:.0f}"
        print(f"| ({name}) {label} | {medians[name]:.3f} | {min(seconds[name]):.3f}-{max(seconds[name]):.3f} | "
              f"{cells} | {arrangements[name].parameter_count():,} |")
    ratio = medians["b"] / medians["c"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"\nratio (b)/(a) of seconds per step: {medians['b'] / medians['a']:.2f}")
    print(f"ratio (b)/(c) of seconds per step: {ratio:.2f} ({verdict} the target <= {TARGET_RATIO})")


# ----------------------------------------------------------------------------------------------
# Training mode


def train_arrangement(name, dataset, tokenizer, config, seed, device, log_every, attention_dropout=None):
    """Train arrangement (b) or (c) from `seed`; return its test metrics and mean-mask range.

    The schedule is train.py's: its batches, warm-up epochs, learning rate and per-step seeds.
    The last epoch's model is evaluated on dataset.test, without checkpoint selection. mask_min and mask_max
    (C,) are each class's extremes of the per-step mean mask over the steps after warm-up.
    attention_dropout, when given, replaces the dropout on attention weights in every network.
    """
    config = {**config, "seed": seed}
    encoded = subwords.encode_documents(tokenizer, [example.words for example in dataset.train])
    arrangement = Arrangement(name, config, tokenizer.get_vocab_size(), len(dataset.classes), device, seed,
                              attention_dropout)
    total_steps = config["epochs"] * math.ceil(len(encoded) / config["batch_size"])
    means, step_index = [], 0
    for epoch in range(config["epochs"]):
        warmup = epoch < config["warmup_epochs"]
        if name == "c" and epoch == config["warmup_epochs"]:
            arrangement.networks.start_game()
        for batch, n_batches, members, (ids, lengths) in train.training_batches(encoded, config, epoch):
            torch.manual_seed(seed * 1_000_003 + step_index)
            for group in arrangement.optimizer.param_groups:
                group["lr"] = train.learning_rate(config, step_index, total_steps)
            labels = torch.tensor([dataset.train[d].label for d in members])
            parts, mean = arrangement.step(ids.to(device), lengths.to(device), labels.to(device), warmup)
            if not warmup:
                means.append(mean)
            step_index += 1
            if (batch + 1) % log_every == 0 or batch + 1 == n_batches:
                losses = " ".join(f"{key[:4]} {parts[key]:.3f}" for key in train.LOSS_FIELDS if key in parts)
                masks = " ".join(f"{c} {m:.2f}" for c, m in zip(dataset.classes, mean.tolist()))
                print(f"({name}) seed {seed} epoch {epoch + 1} step {batch + 1}/{n_batches} | {losses} | "
                      f"mean mask {masks}", flush=True)
    result = evaluate_on_test(arrangement.classifier, dataset, tokenizer, config)
    stacked = torch.stack(means) if means else torch.full((1, len(dataset.classes)), float("nan"))
    return result | {"mask_min": stacked.min(0).values.tolist(), "mask_max": stacked.max(0).values.tolist()}


def evaluate_on_test(model, dataset, tokenizer, config):
    """Return accuracy, AUPRC and Token-F1 (gold class, paper protocol) on dataset.test."""
    encoded = subwords.encode_documents(tokenizer, [example.words for example in dataset.test])
    predictions = E.predict_documents(model, encoded, config["max_len"], config["overlap"])
    labels = [example.label for example in dataset.test]
    predicted = [int(np.argmax(p.probabilities)) for p in predictions]
    agreement = E.average_rationale_metrics([p.word_scores[e.label] for p, e in zip(predictions, dataset.test)],
                                            [e.gold for e in dataset.test])
    return {"accuracy": E.accuracy(predicted, labels), "auprc": agreement["auprc"], "token_f1": agreement["token_f1"]}


def balanced_subset(examples, count):
    """Return `count` examples taken from each class in turn, in file order (all when count is None).

    The ERASER files list one class before the other, so a plain prefix would hold one class.
    """
    if count is None or count >= len(examples):
        return examples
    by_class = {}
    for example in examples:
        by_class.setdefault(example.label, []).append(example)
    queues = list(by_class.values())
    chosen = []
    for rank in itertools.count():
        for queue in queues:
            if rank < len(queue) and len(chosen) < count:
                chosen.append(queue[rank])
        if len(chosen) == count:
            return chosen


def run_training(args, device):
    config = M.default_training_config(args.seed)
    for key in ("epochs", "warmup_epochs"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    dataset, tokenizer = M.load_movies(args.data_dir, config)
    dataset.train = balanced_subset(dataset.train, args.train_docs)
    dataset.test = balanced_subset(dataset.test, args.test_docs)
    print(M.describe_machine(device), flush=True)
    print(f"training on {len(dataset.train)} documents for {config['epochs']} epochs "
          f"({config['warmup_epochs']} warm-up), testing on {len(dataset.test)}", flush=True)
    rows = []
    for seed in args.seeds:
        for name in args.arrangements:
            started = time.perf_counter()
            row = train_arrangement(name, dataset, tokenizer, config, seed, device, args.log_every,
                                    args.attention_dropout)
            row["minutes"] = (time.perf_counter() - started) / 60
            rows.append((name, seed, row))
            # Printed now, so that a failure in a later run loses nothing.
            print(f"result ({name}) seed {seed}: {json.dumps(row)}", flush=True)
    ranges = " | ".join(f"mean mask {c} min-max" for c in dataset.classes)
    print(f"\n| arrangement | seed | test accuracy | AUPRC | Token-F1 | {ranges} | minutes |")
    print("|---|---|---|---|---|" + "---|" * len(dataset.classes) + "---|")
    for name, seed, row in rows:
        spans = " | ".join(f"{low:.2f}-{high:.2f}" for low, high in zip(row["mask_min"], row["mask_max"]))
        print(f"| ({name}) {ARRANGEMENTS[name]} | {seed} | {row['accuracy']:.3f} | {row['auprc']:.3f} | "
              f"{row['token_f1']:.3f} | {spans} | {row['minutes']:.1f} |")
    return 0


# ----------------------------------------------------------------------------------------------
# Command line


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="ERASER movies folder (default: ../shared/data/movies, else the cache)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, one per core)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and batch order of the timing run")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps of each arrangement (default 7)")
    parser.add_argument("--memory-steps", type=int, default=2, help="steps run in each memory subprocess")
    parser.add_argument("--attention-dropout", type=float,
                        help="what-if: dropout on attention weights only, in both modes (default: the model's 0.1)")
    parser.add_argument("--profile", action="store_true", help="also print a profiler breakdown of each arrangement")
    parser.add_argument("--train", action="store_true", help="train and evaluate instead of timing")
    parser.add_argument("--arrangements", default="bc", help="training mode: which of b and c to train (default bc)")
    parser.add_argument("--seeds", default="0,1,2", help="training mode: comma-separated seeds")
    parser.add_argument("--epochs", type=int, help="training mode: epochs (default: the cpu preset's 12)")
    parser.add_argument("--warmup-epochs", type=int, help="training mode: classification-only epochs (default 2)")
    parser.add_argument("--train-docs", type=int, help="training mode: use only N training documents, classes alternating")
    parser.add_argument("--test-docs", type=int, help="training mode: evaluate on N test documents, classes alternating")
    parser.add_argument("--log-every", type=int, default=10, help="training mode: steps between progress lines")
    parser.add_argument("--memory-of", choices=list(ARRANGEMENTS), help=argparse.SUPPRESS)
    parser.add_argument("--batches-file", help=argparse.SUPPRESS)
    return parser


def check_arguments(args):
    """Exit with a message naming the first invalid option value."""
    for option in ("repeats", "memory_steps"):
        if getattr(args, option) < 1:
            raise SystemExit(f"error: --{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")
    unknown = set(args.arrangements) - {"b", "c"}
    if unknown or not args.arrangements:
        raise SystemExit(f"error: --arrangements {args.arrangements!r} is invalid; use b, c or bc")
    try:
        args.seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"error: --seeds {args.seeds!r} is invalid; pass integers separated by commas, e.g. 0,1,2")


def main(argv=None):
    args = build_parser().parse_args(argv)
    M.set_threads(args.threads)
    device = torch.device(args.device)
    if args.memory_of:
        print(json.dumps(measure_memory_here(args.memory_of, args.batches_file, device, args.memory_steps)))
        return 0
    check_arguments(args)
    try:
        return run_training(args, device) if args.train else run_timing(args, device)
    except subwords.DataError as error:
        raise SystemExit(f"error: {error}")


if __name__ == "__main__":
    sys.exit(main())
