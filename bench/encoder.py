"""Time forward plus backward of our encoder against torch.nn.TransformerEncoder of the same sizes.

Both run in training mode (dropout on) on the same batch: d_model 128, 4 layers, 4 heads,
MLP 512, 8 sequences of 512 tokens, a quarter of them padded to half length. The two are
alternated within one run so that both see the same machine load; the script prints the
median time of each and the ratio ours / built-in.

    python bench/encoder.py [--repeats 9] [--device cpu]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rationale as R  # noqa: E402


def build_models(d_model, n_layers, n_heads, d_mlp, max_len, device):
    config = R.ModelConfig(vocab_size=16, n_classes=2, max_len=max_len, d_model=d_model,
                           n_layers=n_layers, n_heads=n_heads, d_mlp=d_mlp, dropout=0.1)
    ours = R.RationaleTransformer(config).to(device).train()
    layer = nn.TransformerEncoderLayer(d_model, n_heads, d_mlp, dropout=0.1, activation="gelu",
                                       batch_first=True, norm_first=True)
    builtin = nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(d_model),
                                    enable_nested_tensor=False).to(device).train()
    return ours, builtin


def time_step(run, inputs, device):
    """Return the seconds of one forward plus backward of `run` on `inputs`."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(inputs).sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs of each encoder (default 9)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--batch", type=int, default=8, help="sequences per batch (default 8)")
    parser.add_argument("--length", type=int, default=512, help="tokens per sequence (default 512)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    ours, builtin = build_models(128, 4, 4, 512, args.length, device)
    lengths = torch.full((args.batch,), args.length, device=device)
    lengths[: max(1, args.batch // 4)] = args.length // 2          # a quarter of the batch is padded
    padding = torch.arange(args.length, device=device) >= lengths[:, None]
    embeddings = torch.randn(args.batch, args.length, 128, device=device, requires_grad=True)

    runs = {
        "ours": lambda x: ours.encode(x, lengths),
        "nn.TransformerEncoder": lambda x: builtin(x, src_key_padding_mask=padding),
    }
    times = {name: [] for name in runs}
    for name, run in runs.items():                                   # warm-up, untimed
        time_step(run, embeddings, device)
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name].append(time_step(run, embeddings, device))

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"batch {args.batch} x {args.length} tokens, {args.repeats} runs each")
    for name, median in medians.items():
        print(f"{name:>22}: median {median * 1000:.1f} ms per forward+backward")
    print(f"ratio ours / nn.TransformerEncoder: {medians['ours'] / medians['nn.TransformerEncoder']:.3f}")


if __name__ == "__main__":
    main()
