"""Benchmark the data pipeline on the ERASER movie reviews.

Measures, as the median of --repeats runs: loading the dataset, training the tokenizer on the
training split, encoding every document of the three splits, and cutting all documents into
windows and merging per-window masks back. Peak memory is the process's maximum resident set
size after each stage (it includes Python, numpy, torch and tokenizers themselves).

    python bench/data.py --data-dir MOVIES --output docs/benchmarks_data.md

where MOVIES is the extracted ERASER movies folder (without --data-dir: the download cache).
"""

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

# This file is itself named data.py, so put the repository root first on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402

import data  # noqa: E402
import subwords  # noqa: E402

TARGET_SECONDS = 10.0  # tokenizer training plus encoding of the whole set


def peak_memory_mib() -> float:
    """Return the maximum resident set size of this process so far, in MiB.

    ru_maxrss is in KiB on Linux; macOS reports bytes, so there the figure is 1024 times too big.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_median(function, repeats: int) -> tuple[float, object]:
    """Run `function` `repeats` times and return the median wall time (s) and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def command_line() -> str:
    """Return this script's command line with the --data-dir value replaced by MOVIES."""
    arguments = list(sys.argv)
    for index, argument in enumerate(arguments):
        if argument.startswith("--data-dir="):
            arguments[index] = "--data-dir=MOVIES"
        elif argument == "--data-dir" and index + 1 < len(arguments):
            arguments[index + 1] = "MOVIES"
    return " ".join(arguments)


def data_source(args: argparse.Namespace) -> str:
    if args.data_dir:
        return "MOVIES, the movies folder extracted from the official ERASER archive"
    return "the movie reviews in the download cache"


def window_and_merge(encodings: list, max_len: int, overlap: int) -> int:
    """Window every document, merge a two-class mask back and return the number of windows."""
    n_windows = 0
    for ids, word_index in encodings:
        windows = subwords.make_windows(ids, max_len, overlap)
        masks = [np.full((len(window.ids), 2), 0.5) for window in windows]
        merged = subwords.merge_window_masks(windows, masks, len(ids))
        subwords.subword_scores_to_words(merged, word_index, int(word_index[-1]) + 1)
        n_windows += len(windows)
    return n_windows


def measure(args: argparse.Namespace) -> dict:
    """Time every stage (median of args.repeats runs) and record sizes and peak memory."""
    figures = {"memory_start": peak_memory_mib()}
    folder = data.find_movies(args.data_dir)
    figures["load"], dataset = time_median(lambda: data.load_eraser(folder), args.repeats)
    figures["memory_loaded"] = peak_memory_mib()

    train_words = [example.words for example in dataset.train]
    figures["train"], tokenizer = time_median(
        lambda: subwords.train_tokenizer(train_words, args.vocab_size), args.repeats
    )
    figures["memory_trained"] = peak_memory_mib()

    documents = [example.words for split in data.SPLITS for example in getattr(dataset, split)]
    figures["encode"], encodings = time_median(
        lambda: subwords.encode_documents(tokenizer, documents), args.repeats
    )
    figures["memory_encoded"] = peak_memory_mib()

    figures["windows"], figures["n_windows"] = time_median(
        lambda: window_and_merge(encodings, args.max_len, args.overlap), args.repeats
    )
    figures["n_train"] = len(train_words)
    figures["n_documents"] = len(documents)
    figures["n_words"] = sum(len(words) for words in documents)
    figures["n_subwords"] = sum(len(ids) for ids, _ in encodings)
    figures["vocab"] = tokenizer.get_vocab_size()
    return figures


def format_report(args: argparse.Namespace, figures: dict) -> list[str]:
    """Return the measurements as a markdown section."""
    total = figures["train"] + figures["encode"]
    verdict = "meets" if total < TARGET_SECONDS else "misses"
    n_words, n_subwords = figures["n_words"], figures["n_subwords"]
    return [
        "## Data pipeline (`bench/data.py`)",
        "",
        f"Command: `python {command_line()}`  ",
        f"Machine: {cpu_model()}, {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"load average {os.getloadavg()[0]:.2f} at the end.  ",
        f"Software: Python {platform.python_version()}, tokenizers {tokenizers.__version__}, "
        f"numpy {np.__version__}, torch {torch.__version__}.  ",
        f"Data: {data_source(args)}: {figures['n_documents']} documents in the three splits, "
        f"{n_words:,} words, {n_subwords:,} subwords from a vocabulary of "
        f"{figures['vocab']:,} tokens ({n_subwords / n_words:.2f} subwords per word).",
        "",
        f"| stage (median of {args.repeats} runs) | seconds | notes |",
        "|---|---|---|",
        f"| load the dataset (`load_eraser`) | {figures['load']:.2f} | "
        f"{figures['n_documents']} documents |",
        f"| train the tokenizer (train split) | {figures['train']:.2f} | "
        f"{figures['n_train']} documents, vocab_size {args.vocab_size} |",
        f"| encode all documents (`encode_documents`) | {figures['encode']:.2f} | "
        f"{n_words / figures['encode'] / 1e6:.2f} M words/s |",
        f"| tokenizer training + encoding | {total:.2f} | "
        f"{verdict} the {TARGET_SECONDS:.0f} s target |",
        f"| windows + merge + word scores, all documents | {figures['windows']:.2f} | "
        f"{figures['n_windows']} windows of max_len {args.max_len}, overlap {args.overlap} |",
        "",
        f"Peak resident memory (MiB): {figures['memory_start']:.0f} after imports, "
        f"{figures['memory_loaded']:.0f} after loading, {figures['memory_trained']:.0f} after "
        f"tokenizer training, {figures['memory_encoded']:.0f} after encoding.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", metavar="DIR",
                        help="ERASER movies folder (default: the cache, downloaded if missing)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per stage (default 5)")
    parser.add_argument("--vocab-size", type=int, default=8000, help="tokenizer vocabulary size")
    parser.add_argument("--max-len", type=int, default=256, help="window length in tokens")
    parser.add_argument("--overlap", type=int, default=64, help="window overlap in subwords")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="also write the markdown section to FILE")
    args = parser.parse_args()

    try:
        lines = format_report(args, measure(args))
    except subwords.DataError as error:
        sys.exit(f"error: {error}")
    report = "\n".join(lines) + "\n"
    print(report, end="")
    if args.output:
        temporary = args.output.with_name(f".{args.output.name}.tmp")
        temporary.write_text(report)
        os.replace(temporary, args.output)


if __name__ == "__main__":
    main()
