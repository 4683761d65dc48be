"""End-to-end tests of train.py and evaluate.py on the synthetic task (tiny sizes, a few seconds each)."""
import json

import pytest
import torch

import evaluate as E
import subwords
import train

TINY = ["--dataset", "synthetic", "--synthetic-docs", "120", "--vocab-size", "400", "--d-model", "32",
        "--n-layers", "1", "--n-heads", "2", "--d-mlp", "64", "--max-len", "48", "--overlap", "8",
        "--batch-size", "16", "--log-every", "4", "--heatmaps", "0", "--no-faithfulness"]


def run(tmp_path, name, *extra):
    out = tmp_path / name
    code = train.main(TINY + ["--out", str(out), *extra])
    return code, out


def read_metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_end_to_end_beats_random(tmp_path):
    code, out = run(tmp_path, "run", "--synthetic-docs", "400", "--epochs", "6", "--warmup-epochs", "1",
                    "--d-model", "64", "--max-len", "64", "--lr", "3e-3", "--heatmaps", "1")
    assert code == 0
    for name in ("best.pt", "last.pt", "tokenizer.json", "metrics.json", "predictions_test.jsonl"):
        assert (out / name).is_file(), f"{name} was not written"
    assert list(out.glob("*.png"))
    assert list(out.glob("*.html"))
    metrics = read_metrics(out)
    ours = metrics["paper_protocol"]["rationale (ours)"]["auprc"]
    chance = metrics["paper_protocol"]["random"]["auprc"]
    assert metrics["classification"]["accuracy"] > 0.8
    assert ours > chance + 0.1, f"AUPRC {ours:.3f} does not clearly beat random {chance:.3f}"


def test_same_seed_gives_same_numbers(tmp_path):
    _, first = run(tmp_path, "first", "--epochs", "2", "--warmup-epochs", "1")
    _, second = run(tmp_path, "second", "--epochs", "2", "--warmup-epochs", "1")
    assert read_metrics(first)["paper_protocol"] == read_metrics(second)["paper_protocol"]
    assert read_metrics(first)["history"] == read_metrics(second)["history"]


@pytest.mark.parametrize("steps", [3, 8])   # mid-epoch, and exactly at the end of the first epoch
def test_resume_matches_uninterrupted_run(tmp_path, steps):
    _, whole = run(tmp_path, "whole", "--epochs", "2", "--warmup-epochs", "1")
    code, parts = run(tmp_path, "parts", "--epochs", "2", "--warmup-epochs", "1", "--interrupt-after", str(steps))
    assert code == 130
    assert not (parts / "metrics.json").exists()
    assert train.main(["--resume", str(parts / "last.pt")]) == 0

    expected, resumed = read_metrics(whole), read_metrics(parts)
    for method, row in expected["paper_protocol"].items():
        for metric, value in row.items():
            assert resumed["paper_protocol"][method][metric] == pytest.approx(value, abs=1e-4), (method, metric)
    assert resumed["classification"] == pytest.approx(expected["classification"], abs=1e-4)
    a = torch.load(whole / "last.pt", weights_only=True)["model"]
    b = torch.load(parts / "last.pt", weights_only=True)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0, msg=name)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("checkpoint")
    assert train.main(TINY + ["--out", str(out), "--epochs", "2", "--warmup-epochs", "1"]) == 0
    return out / "best.pt"


def test_checkpoint_loads_with_weights_only(checkpoint):
    raw = torch.load(checkpoint, weights_only=True)
    assert raw["classes"] == ["sports", "cooking", "weather"]
    model, tokenizer, loaded = train.load_checkpoint(checkpoint)
    assert tokenizer.token_to_id("[MASK]") == subwords.MASK_ID
    assert not model.training


def test_corrupt_checkpoint_is_rejected(tmp_path, checkpoint):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(ValueError, match="cannot be read"):
        train.load_checkpoint(truncated)
    with pytest.raises(ValueError, match="not found"):
        train.load_checkpoint(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a rationale checkpoint"):
        train.load_checkpoint(foreign)


def test_mismatched_checkpoint_is_rejected(tmp_path, checkpoint):
    raw = torch.load(checkpoint, weights_only=True)
    raw["model_config"]["d_model"] = 64
    mismatched = tmp_path / "mismatched.pt"
    torch.save(raw, mismatched)
    with pytest.raises(ValueError, match="does not match"):
        train.load_checkpoint(mismatched)


def test_evaluate_command_prints_table(checkpoint, capsys):
    assert E.main([str(checkpoint), "--split", "val", "--no-faithfulness"]) == 0
    printed = capsys.readouterr().out
    for expected in ("rationale (ours)", "gradient x input", "ERASER protocol"):
        assert expected in printed


def test_auto_falls_back_to_synthetic_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RATIONALE_MOVIES_URL", (tmp_path / "absent.tar.gz").as_uri())
    code, out = run(tmp_path, "auto", "--dataset", "auto", "--cache-dir", str(tmp_path / "cache"), "--epochs", "1",
                    "--warmup-epochs", "0")
    assert code == 0
    assert "uses the synthetic task" in capsys.readouterr().out
    assert read_metrics(out)["dataset"] == "synthetic"


def test_requested_movies_unavailable_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RATIONALE_MOVIES_URL", (tmp_path / "absent.tar.gz").as_uri())
    with pytest.raises(SystemExit, match="error: could not download"):
        run(tmp_path, "movies", "--dataset", "movies", "--cache-dir", str(tmp_path / "cache"))
    with pytest.raises(SystemExit, match="has no docs"):
        run(tmp_path, "movies", "--dataset", "movies", "--data-dir", str(tmp_path))


def test_gradient_x_input_matches_autograd_on_one_window(checkpoint):
    model, tokenizer, _ = train.load_checkpoint(checkpoint)
    words = "the striker scored a late goal and we went home".split()
    ids, word_index = subwords.encode_words(tokenizer, words)
    scores = E.gradient_x_input(model, ids, word_index, 0, max_len=48, overlap=8)
    window = torch.tensor([[subwords.CLS_ID, *ids.tolist()]])
    embeddings = model.token_embedding(window).detach().requires_grad_(True)
    logit = model.classifier(model.encode(embeddings, torch.tensor([window.size(1)]))[:, 0])[0, 0]
    logit.backward()
    per_token = (embeddings.grad * embeddings).sum(-1)[0, 1:].detach().numpy()
    expected = [per_token[word_index == w].mean() for w in range(len(words))]
    assert scores == pytest.approx(expected, abs=1e-5)


def test_explain_command_writes_pictures(checkpoint, tmp_path, capsys):
    import viz
    out = tmp_path / "explained.png"
    text = "the striker scored a late goal <script> & \"rain\" " * 3
    assert viz.main([str(checkpoint), "--text", text, "--out", str(out), "--html"]) == 0
    printed = capsys.readouterr().out
    for expected in ("predicted", "sports", "weather"):
        assert expected in printed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "&lt;script&gt;" in out.with_suffix(".html").read_text(encoding="utf-8")

    long_file = tmp_path / "review.txt"
    long_file.write_text("the soup needed more salt and pepper . " * 300, encoding="utf-8")
    assert viz.main([str(checkpoint), "--file", str(long_file), "--out", str(tmp_path / "long.png")]) == 0
    assert (tmp_path / "long.png").stat().st_size > 0


def test_explain_command_rejects_bad_input(checkpoint, tmp_path):
    import viz
    with pytest.raises(SystemExit, match="empty"):
        viz.main([str(checkpoint), "--text", "  ", "--out", str(tmp_path / "a.png")])
    with pytest.raises(SystemExit, match="not found"):
        viz.main([str(checkpoint), "--file", str(tmp_path / "absent.txt"), "--out", str(tmp_path / "a.png")])
    raw = torch.load(checkpoint, weights_only=True)
    del raw["tokenizer"]
    without_tokenizer = tmp_path / "no_tokenizer.pt"
    torch.save(raw, without_tokenizer)
    with pytest.raises(SystemExit, match="missing tokenizer"):
        viz.main([str(without_tokenizer), "--text", "hello", "--out", str(tmp_path / "a.png")])
