"""Measure how close a training step of the default model runs to the machine's peak.

Three measurements in one run:

1. Peak float32 matrix-multiply rate: the median rate of torch.mm on square matrices of several
   sizes, and the rate at the shapes of the default model's linear layers.
2. Achieved rate of one training step of the single-model objective (train.train_step with the
   default CPU sizes of train.PRESETS["cpu"], batches of real movie-review windows), from the
   FLOP count of `training_step_flops`, and achieved / peak.
3. A torch.profiler breakdown of one step, forward and backward together. Attention is split
   into its q, k, v and output projections, its core softmax(q k^T / sqrt(d)) v, and the head
   reshapes around them. The other parts are the MLP, the mask kernel, the embedding blends,
   the optimizer with gradient clipping, and other (embeddings, LayerNorms, heads, losses,
   autograd bookkeeping).

    python bench/machine.py [--data-dir ../shared/data/movies] [--repeats 7] [--device cpu]

The other benchmarks in this folder import the helpers here: the machine description, timing,
the default model and the movie-review batches.
"""
import argparse
import contextlib
import functools
import itertools
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import data as D  # noqa: E402
import rationale as R  # noqa: E402
import subwords  # noqa: E402
import train  # noqa: E402

CATEGORIES = ("attention projections", "attention core", "attention reshapes", "mlp", "mask kernel",
              "embedding blends", "optimizer")
TARGET_FRACTION_OF_PEAK = 0.4


# ----------------------------------------------------------------------------------------------
# The machine, timing, the default model and its data


def describe_machine(device):
    """Return one line naming the processor, core count, torch version, threads and load."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    line = (f"{cpu}, nproc {len(os.sched_getaffinity(0))}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    if device.type == "cuda":
        line += f", GPU {torch.cuda.get_device_name(device)}"
    return line


def set_threads(count):
    """Set torch's CPU thread count, or leave torch's default when count is None."""
    if count is None:
        return
    if count < 1:
        raise SystemExit(f"error: --threads {count} is invalid; pass a positive number of threads")
    torch.set_num_threads(count)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(function, device):
    """Run function() once and return (seconds, its result), waiting for the GPU if there is one."""
    synchronize(device)
    start = time.perf_counter()
    result = function()
    synchronize(device)
    return time.perf_counter() - start, result


def default_data_dir():
    """Return the movie-review folder beside the repository, or None to use the data cache."""
    sibling = ROOT.parent / "shared" / "data" / "movies"
    return sibling if sibling.is_dir() else None


def default_training_config(seed=0):
    """Return the settings of `python train.py --seed SEED` (cpu preset) as a plain dict."""
    return train.resolve_config(train.build_parser().parse_args(["--seed", str(seed)]))


def build_model(config, vocab_size, n_classes, device, seed):
    """Build the model train.py builds for `config`, initialised from `seed`."""
    torch.manual_seed(seed)
    return train.build_model(config, vocab_size, n_classes, device)


def set_attention_dropout(model, probability):
    """Set the dropout on attention weights of every block (None keeps the model's own).

    A what-if for measurements. With torch 2.13 on the CPU, scaled_dot_product_attention runs
    its fused kernel only without dropout (the profiler shows the unfused bmm, softmax and
    bernoulli ops otherwise), so attention dropout decides which kernel training uses.
    """
    if probability is not None:
        for block in model.blocks:
            block.attention.dropout = probability


def load_movies(data_dir, config):
    """Load the movie reviews and train the tokenizer as train.py does; return (dataset, tokenizer)."""
    dataset = D.load_movies(data_dir or default_data_dir())
    tokenizer = subwords.train_tokenizer((example.words for example in dataset.train), config["vocab_size"])
    return dataset, tokenizer


def movie_batches(dataset, tokenizer, config, n_batches):
    """Return the first n_batches training batches of train.py's order as (ids, lengths, labels).

    Batches come from train.training_batches, epoch 0 first, so they contain real windows of
    up to config["max_len"] tokens from config["batch_size"] documents each.
    """
    if n_batches < 1:
        raise ValueError(f"n_batches must be at least 1, got {n_batches}")
    encoded = subwords.encode_documents(tokenizer, [example.words for example in dataset.train])
    batches = []
    for epoch in itertools.count():
        for _, _, members, (ids, lengths) in train.training_batches(encoded, config, epoch):
            labels = torch.tensor([dataset.train[d].label for d in members])
            batches.append((ids, lengths, labels))
            if len(batches) == n_batches:
                return batches


# ----------------------------------------------------------------------------------------------
# FLOP count


def encoder_macs(length, d_model, d_mlp, n_layers):
    """Return (linear, attention) multiply-accumulates of one sequence's forward pass.

    Per layer and token, the linear layers do 3D^2 (q, k, v) + D^2 (output) + 2 D F (MLP). Per
    layer and sequence, attention does T^2 D for q k^T and T^2 D for the weighted sum of v.
    """
    linear = n_layers * length * (4 * d_model ** 2 + 2 * d_model * d_mlp)
    attention = n_layers * 2 * length ** 2 * d_model
    return linear, attention


def pass_flops(sequences, length, d_model, d_mlp, n_layers, n_classes, weight_gradients, rationale_head):
    """Count the matmul FLOPs of forward plus backward of one pass over `sequences` sequences.

    Forward FLOPs are 2 x MACs. A linear layer's backward costs 2 x its forward with weight
    gradients (dX and dW) and 1 x without (dX only). Attention's two matmuls multiply
    activations, so their backward costs 2 x forward either way. rationale_head is "trained"
    (forward and backward), "forward" (computed, but no loss reaches it) or "none".
    """
    linear, attention = encoder_macs(length, d_model, d_mlp, n_layers)
    linear += d_model * n_classes                                  # classifier on [CLS]
    head = length * d_model * 2 * n_classes                        # weight and width per class
    forward = linear + attention + (head if rationale_head != "none" else 0)
    backward = (2 if weight_gradients else 1) * linear + 2 * attention
    backward += 2 * head if rationale_head == "trained" else 0
    return 2 * sequences * (forward + backward)


def training_step_flops(batch, length, d_model, d_mlp, n_layers, n_classes, objective="rationale"):
    """Count the matmul FLOPs of one training step of rationale.rationale_loss.

    With L layers, width D, MLP width F, C classes, B sequences of T tokens (padding included,
    because the padded positions are computed), and per sequence
        lin = L T (4 D^2 + 2 D F) + D C,    att = 2 L T^2 D,    head = 2 T D C,
    the step costs
        classification pass:  2 B (3 lin + 3 att + 3 head)       (weights trained)
        scorer pass on 2B:    2 (2B) (2 lin + 3 att)              (no weight gradients)
    so that, without the small head terms, FLOPs = 2 L B [7 T (4 D^2 + 2 D F) + 18 T^2 D].
    objective "classification" (warm-up) counts the classification pass alone, with the
    rationale head computed forward only. Elementwise work (LayerNorm, GELU, softmax, dropout,
    the mask kernel, the blends, the optimizer) is left out. Returns a dict of FLOPs per pass
    and their total.
    """
    sizes = (length, d_model, d_mlp, n_layers, n_classes)
    if objective == "classification":
        counts = {"classification pass": pass_flops(batch, *sizes, True, "forward")}
    elif objective == "rationale":
        counts = {"classification pass": pass_flops(batch, *sizes, True, "trained"),
                  "scorer pass": pass_flops(2 * batch, *sizes, False, "none")}
    else:
        raise ValueError(f"objective must be 'classification' or 'rationale', got {objective!r}")
    counts["total"] = sum(counts.values())
    return counts


def counted_flops(model, ids, lengths, labels, warmup=False):
    """Count the FLOPs of forward plus backward of rationale_loss with torch's FlopCounterMode.

    FlopCounterMode does not count the fused CPU attention kernel, so the count runs on a copy
    of the model that computes attention with explicit matmuls (the same numbers).
    """
    from torch.utils.flop_counter import FlopCounterMode
    explicit = R.RationaleTransformer(R.ModelConfig(**{**vars(model.config), "fused_attention": False}))
    explicit.load_state_dict(model.state_dict())
    explicit.to(ids.device).train(model.training)
    with FlopCounterMode(display=False) as counter:
        total, _, _ = R.rationale_loss(explicit, ids, lengths, labels, warmup=warmup)
        total.backward()
    return counter.get_total_flops()


# ----------------------------------------------------------------------------------------------
# Rates


def matmul_rate(rows, inner, columns, repeats, device):
    """Return the median FLOP/s of torch.mm of a (rows, inner) by (inner, columns) float32 product."""
    a = torch.randn(rows, inner, device=device)
    b = torch.randn(inner, columns, device=device)
    time_call(lambda: torch.mm(a, b), device)                      # warm-up, untimed
    seconds = [time_call(lambda: torch.mm(a, b), device)[0] for _ in range(repeats)]
    return 2 * rows * inner * columns / statistics.median(seconds)


def model_matmul_shapes(config, rows):
    """Return the (rows, inner, columns) of the model's linear layers for `rows` tokens."""
    D, F = config["d_model"], config["d_mlp"]
    return {"q, k, v": (rows, D, 3 * D), "attention output": (rows, D, D),
            "MLP in": (rows, D, F), "MLP out": (rows, F, D)}


def interleaved_rates(model, optimizer, batches, config, sizes, repeats, device):
    """Alternate torch.mm of each square size with train.train_step, so that both see the same load.

    Returns ({size: median FLOP/s}, median step seconds, median step FLOP/s). The first round
    is an untimed warm-up; the steps use the batches in turn.
    """
    weights = R.LossWeights()
    matrices = {n: (torch.randn(n, n, device=device), torch.randn(n, n, device=device)) for n in sizes}
    mm_rates = {n: [] for n in sizes}
    seconds, rates = [], []
    for k in range(repeats + 1):
        for n, (a, b) in matrices.items():
            elapsed, _ = time_call(lambda: torch.mm(a, b), device)
            if k > 0:
                mm_rates[n].append(2 * n ** 3 / elapsed)
        ids, lengths, labels = (t.to(device) for t in batches[k % len(batches)])
        flops = training_step_flops(ids.size(0), ids.size(1), config["d_model"], config["d_mlp"],
                                    config["n_layers"], model.config.n_classes)["total"]
        elapsed, _ = time_call(lambda: train.train_step(model, optimizer, ids, lengths, labels, config,
                                                        weights, warmup=False), device)
        if k > 0:
            seconds.append(elapsed)
            rates.append(flops / elapsed)
    medians = {n: statistics.median(values) for n, values in mm_rates.items()}
    return medians, statistics.median(seconds), statistics.median(rates)


# ----------------------------------------------------------------------------------------------
# Profile


def labelled(function, label):
    """Wrap `function` so that the profiler records each call inside a range named `label`."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with torch.profiler.record_function(label):
            return function(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def category_labels(models):
    """Label the parts of attention, the MLP, mask kernel, blends and gradient clipping for the profiler.

    The modules of each model get labelled instance forwards, and the module-level functions
    that the model and train.train_step look up at call time are replaced while the context
    lasts. Optimizer.step and zero_grad carry torch's own labels.
    """
    functional = torch.nn.functional
    patched = [(R, "mask_kernel", "mask kernel"), (R, "blend_toward_blank", "embedding blends"),
               (R, "attention", "attention core"), (functional, "scaled_dot_product_attention", "attention core"),
               (torch.nn.utils, "clip_grad_norm_", "optimizer")]
    originals = [getattr(owner, name) for owner, name, _ in patched]
    for owner, name, label in patched:
        setattr(owner, name, labelled(getattr(owner, name), label))
    modules = [(block.attention, "attention reshapes") for model in models for block in model.blocks]
    modules += [(layer, "attention projections") for model in models for block in model.blocks
                for layer in (block.attention.qkv, block.attention.out)]
    modules += [(block.mlp, "mlp") for model in models for block in model.blocks]
    for module, label in modules:
        module.forward = labelled(module.forward, label)
    try:
        yield
    finally:
        for (owner, name, _), original in zip(patched, originals):
            setattr(owner, name, original)
        for module, _ in modules:
            del module.forward


def category_of(event):
    """Return the category of a profiler event: its own label or that of its innermost labelled range."""
    while event is not None:
        if event.name in CATEGORIES:
            return event.name
        if event.name.startswith("Optimizer."):
            return "optimizer"
        event = event.cpu_parent
    return None


def breakdown(events, step_label="train step"):
    """Split the profiled step's time into CATEGORIES and "other", in seconds.

    Forward time is the time spent inside each labelled range, less the labelled ranges of
    other categories nested in it (attention projections inside attention, for example).
    Backward work is matched to the forward op that recorded it through the autograd sequence
    number that both carry, and goes to that op's innermost category.
    """
    forward_category, seconds = {}, dict.fromkeys(CATEGORIES, 0.0)
    step = sum(e.time_range.elapsed_us() for e in events if e.name == step_label) / 1e6
    for event in events:
        category = category_of(event)
        if category is None or event.name.startswith("autograd::"):
            continue
        if event.sequence_nr >= 0:
            forward_category[event.sequence_nr] = category
        enclosing = category_of(event.cpu_parent)
        if enclosing != category:                     # the outermost event of a labelled range
            duration = event.time_range.elapsed_us() / 1e6
            seconds[category] += duration
            if enclosing is not None:
                seconds[enclosing] -= duration
    for event in events:
        if event.name.startswith("autograd::engine::evaluate_function") and event.sequence_nr in forward_category:
            seconds[forward_category[event.sequence_nr]] += event.time_range.elapsed_us() / 1e6
    seconds["other"] = step - sum(seconds.values())
    return step, seconds


def profile_step(run, models, device):
    """Profile one call of run() (after one unprofiled call); return (seconds, {category: seconds}).

    models: the RationaleTransformers whose modules run() uses, so that they can be labelled.
    """
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with category_labels(models):
        run()
        with torch.profiler.profile(activities=activities) as profiler:
            with torch.profiler.record_function("train step"):
                run()
                synchronize(device)
    return breakdown(profiler.events())


def print_breakdown(step, parts):
    print(f"profile of one step ({step:.3f} s under the profiler), forward and backward together:")
    for name, part in parts.items():
        print(f"  {name:>21}: {part:7.3f} s  {part / step:6.1%}")


# ----------------------------------------------------------------------------------------------
# Command line


def print_matmul_rates(square, config, rows, repeats, device):
    """Print the square torch.mm rates and those at the model's linear-layer shapes; return the peak."""
    print(f"torch.mm float32, median of {repeats}:")
    for n, rate in square.items():
        print(f"  {f'{n} x {n} x {n}':>36}: {rate / 1e9:8.1f} GFLOP/s")
    for name, shape in model_matmul_shapes(config, rows).items():
        rate = matmul_rate(*shape, repeats, device)
        print(f"  {f'{name} {shape[0]} x {shape[1]} x {shape[2]}':>36}: {rate / 1e9:8.1f} GFLOP/s")
    peak = max(square.values())
    print(f"peak (best square size): {peak / 1e9:.1f} GFLOP/s")
    return peak


def measure(args, config, dataset, tokenizer, device):
    """Print the matmul rates, the step's FLOP count and achieved rate, and its profile."""
    batches = movie_batches(dataset, tokenizer, config, args.repeats + 1)
    ids, lengths, labels = batches[0]
    model = build_model(config, tokenizer.get_vocab_size(), len(dataset.classes), device, args.seed).train()
    set_attention_dropout(model, args.attention_dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    sizes = [int(n) for n in args.sizes.split(",")]
    square, seconds, rate = interleaved_rates(model, optimizer, batches, config, sizes, args.repeats, device)
    peak = print_matmul_rates(square, config, ids.numel(), args.repeats, device)

    flops = training_step_flops(ids.size(0), ids.size(1), config["d_model"], config["d_mlp"],
                                config["n_layers"], len(dataset.classes))
    counted = counted_flops(model, ids.to(device), lengths.to(device), labels.to(device))
    print(f"training step, batch {ids.size(0)} x {ids.size(1)} tokens: formula "
          f"{flops['total'] / 1e9:.2f} GFLOP (classification pass {flops['classification pass'] / 1e9:.2f}, "
          f"scorer pass {flops['scorer pass'] / 1e9:.2f}); FlopCounterMode {counted / 1e9:.2f} GFLOP")
    verdict = "meets" if rate / peak >= TARGET_FRACTION_OF_PEAK else "misses"
    print(f"step: median {seconds:.3f} s, achieved {rate / 1e9:.1f} GFLOP/s = {rate / peak:.1%} of peak "
          f"({verdict} the {TARGET_FRACTION_OF_PEAK:.0%} target)")

    ids, lengths, labels = (t.to(device) for t in batches[0])
    print_breakdown(*profile_step(lambda: train.train_step(model, optimizer, ids, lengths, labels, config,
                                                           R.LossWeights(), warmup=False), [model], device))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="ERASER movies folder (default: ../shared/data/movies, else the cache)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, one per core)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each measurement (default 7)")
    parser.add_argument("--sizes", default="512,1024,2048", help="square torch.mm sizes, comma-separated")
    parser.add_argument("--seed", type=int, default=0, help="model initialisation and batch order")
    parser.add_argument("--attention-dropout", type=float,
                        help="what-if: dropout on attention weights only (default: the model's 0.1)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    set_threads(args.threads)
    device = torch.device(args.device)
    config = default_training_config(args.seed)
    print(describe_machine(device), flush=True)

    try:
        dataset, tokenizer = load_movies(args.data_dir, config)
    except subwords.DataError as error:
        raise SystemExit(f"error: {error}")
    measure(args, config, dataset, tokenizer, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
