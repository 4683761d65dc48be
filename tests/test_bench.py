"""Tests of the benchmark scripts' computations, each against an independent computation."""
import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
import evaluate as E  # noqa: E402
import explain_cost  # noqa: E402
import machine  # noqa: E402
import rationale as R  # noqa: E402
import subwords  # noqa: E402
import three_player  # noqa: E402
import train  # noqa: E402

CLS = subwords.CLS_ID


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one CPU thread: tiny models gain nothing from more, and a busy machine
    makes every multi-threaded small op wait for a descheduled thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(**overrides):
    settings = dict(vocab_size=30, n_classes=3, max_len=12, d_model=8, n_layers=2, n_heads=2, d_mlp=12,
                    dropout=0.0, blank_id=subwords.MASK_ID)
    settings.update(overrides)
    return R.ModelConfig(**settings)


def random_batch(lengths, vocab_size=30, seed=0):
    """Return ids (B, T) with [CLS] first and padding after each length, and lengths (B,)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    ids = torch.randint(4, vocab_size, (len(lengths), int(lengths.max())), generator=generator)
    ids[:, 0] = CLS
    ids[torch.arange(ids.size(1)) >= lengths[:, None]] = subwords.PAD_ID
    return ids, lengths


def sharpened(model, std=0.5, seed=0):
    """Re-draw every weight with a larger spread, so that the model is far from linear."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, std)
    return model.eval()


def random_document(n_words, vocab_size=30, seed=0):
    """Return (ids (S,), word_index (S,)) with one to three subwords per word."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, n_words)
    word_index = np.repeat(np.arange(n_words), counts)
    return rng.integers(4, vocab_size, len(word_index)), word_index


# ----------------------------------------------------------------------------------------------
# FLOP count


def test_flop_formula_hand_count():
    # B=1, T=3, D=4, F=8, L=1, C=2. Linear MACs per sequence: 3 * (4*16 + 2*4*8) + 4*2 = 392;
    # attention: 2 * 9 * 4 = 72; rationale head: 3 * 4 * 4 = 48.
    classification = 2 * (392 + 72 + 48) + 2 * (2 * 392 + 2 * 72 + 2 * 48)          # weights trained
    scorer = 2 * 2 * ((392 + 72) + (392 + 2 * 72))                                      # 2B, no dW
    counts = machine.training_step_flops(1, 3, 4, 8, 1, 2)
    assert counts["classification pass"] == classification
    assert counts["scorer pass"] == scorer
    assert counts["total"] == classification + scorer
    warmup = machine.training_step_flops(1, 3, 4, 8, 1, 2, objective="classification")
    assert warmup["total"] == 2 * (392 + 72 + 48) + 2 * (2 * 392 + 2 * 72)          # head forward only


@pytest.mark.parametrize("warmup", [False, True])
def test_flop_formula_matches_flop_counter(warmup):
    torch.manual_seed(0)
    model = R.RationaleTransformer(tiny_config(dropout=0.1)).train()
    ids, lengths = random_batch([12, 7, 2])                                             # padding counts too
    labels = torch.tensor([0, 2, 1])
    counted = machine.counted_flops(model, ids, lengths, labels, warmup=warmup)
    objective = "classification" if warmup else "rationale"
    assert machine.training_step_flops(3, 12, 8, 12, 2, 3, objective)["total"] == counted


def test_flop_formula_rejects_unknown_objective():
    with pytest.raises(ValueError, match="objective"):
        machine.training_step_flops(1, 3, 4, 8, 1, 2, objective="both")


# ----------------------------------------------------------------------------------------------
# Three-model arrangement


def test_bench_model_matches_train():
    # Every field of the model configuration, selector_grad_scale included, must be train.py's.
    config = machine.default_training_config(seed=3) | {"selector_grad_scale": 0.25, "d_mlp": 64}
    benchmarked = machine.build_model(config, 50, 3, torch.device("cpu"), seed=3)
    torch.manual_seed(3)
    trained = train.build_model(config, 50, 3, torch.device("cpu"))
    assert benchmarked.config == trained.config
    assert benchmarked.config.selector_grad_scale == 0.25
    for (name, expected), actual in zip(trained.state_dict().items(), benchmarked.state_dict().values()):
        torch.testing.assert_close(actual, expected, msg=name)
    players = three_player.ThreePlayers(config, 50, 3, torch.device("cpu"), seed=3)
    for player in players.children():
        assert player.config == trained.config


def players_from(model):
    """Build ThreePlayers whose predictor and complement predictor are copies of `model`."""
    players = three_player.ThreePlayers.__new__(three_player.ThreePlayers)
    torch.nn.Module.__init__(players)
    players.selector = model
    players.predictor = copy.deepcopy(model)
    players.complement_predictor = copy.deepcopy(model)
    return players


def test_selector_matches_single_model_objective():
    torch.manual_seed(0)
    single = R.RationaleTransformer(tiny_config())
    players = players_from(copy.deepcopy(single))
    ids, lengths = random_batch([12, 9, 3])
    labels = torch.tensor([2, 0, 1])
    weights = R.LossWeights()

    total, parts, _ = R.rationale_loss(single, ids, lengths, labels, weights)
    total.backward()
    selector_loss, adversary_loss, three_parts, _ = three_player.three_player_losses(
        players, ids, lengths, labels, weights)
    three_player.backpropagate_players(players, selector_loss, adversary_loss)

    torch.testing.assert_close(selector_loss, total)
    for name in ("classification", "sufficiency", "complement", "regularizer"):
        torch.testing.assert_close(three_parts[name], parts[name])
    # With dropout off and predictors equal to the model, the selector gets the frozen scorer's gradients.
    for (name, expected), actual in zip(single.named_parameters(), players.selector.parameters()):
        torch.testing.assert_close(actual.grad, expected.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_predictors_learn_only_their_own_objectives():
    torch.manual_seed(1)
    players = players_from(R.RationaleTransformer(tiny_config()))
    players.predictor = R.RationaleTransformer(tiny_config())
    players.complement_predictor = R.RationaleTransformer(tiny_config())
    ids, lengths = random_batch([12, 5, 8], seed=1)
    labels = torch.tensor([1, 1, 0])
    weights = R.LossWeights()
    selector_loss, adversary_loss, _, output = three_player.three_player_losses(players, ids, lengths, labels, weights)
    three_player.backpropagate_players(players, selector_loss, adversary_loss)

    keep = R.gold_class_mask(output.mask, labels).detach()
    reference = {
        "predictor": weights.sufficiency * F.cross_entropy(
            players.predictor(ids, lengths, keep=keep).logits, labels),
        "complement_predictor": weights.complement * F.cross_entropy(
            players.complement_predictor(ids, lengths, keep=1 - keep).logits, labels),
    }
    for player, loss in reference.items():
        network = getattr(players, player)
        used = [(n, p) for n, p in network.named_parameters() if not n.startswith("rationale_head")]
        expected = torch.autograd.grad(loss, [p for _, p in used])
        for (name, parameter), gradient in zip(used, expected):
            torch.testing.assert_close(parameter.grad, gradient, atol=1e-6, rtol=1e-5, msg=f"{player}.{name}")
        assert network.rationale_head.weight.grad is None


def test_warmup_step_trains_only_selector():
    torch.manual_seed(2)
    config = dict(blank_rate=0.1, clip=1.0)
    players = players_from(R.RationaleTransformer(tiny_config()))
    players.predictor = R.RationaleTransformer(tiny_config())
    players.complement_predictor = R.RationaleTransformer(tiny_config())
    optimizer = torch.optim.AdamW(players.parameters(), lr=1e-2)
    ids, lengths = random_batch([10, 6])
    labels = torch.tensor([0, 2])

    def snapshot():
        return {name: p.detach().clone() for name, p in players.named_parameters()}

    def changed(before, player):
        return any(not torch.equal(before[n], p) for n, p in players.named_parameters() if n.startswith(player))

    before = snapshot()
    _, mean = three_player.three_player_step(players, optimizer, ids, lengths, labels, config,
                                             R.LossWeights(), warmup=True)
    assert mean.shape == (3,)
    assert changed(before, "selector.")
    assert not changed(before, "predictor.")
    assert not changed(before, "complement_predictor.")
    before = snapshot()
    three_player.three_player_step(players, optimizer, ids, lengths, labels, config, R.LossWeights(), warmup=False)
    for player in ("selector.", "predictor.", "complement_predictor."):
        assert changed(before, player), player


def test_start_game_copies_selector():
    config = {**machine.default_training_config(), "vocab_size": 30, "d_model": 8, "n_heads": 2, "d_mlp": 12,
              "max_len": 12}
    players = three_player.ThreePlayers(config, 30, 2, torch.device("cpu"), seed=0)
    assert not torch.equal(players.selector.classifier.weight, players.predictor.classifier.weight)
    players.start_game()
    for copy_ in (players.predictor, players.complement_predictor):
        for (name, a), b in zip(players.selector.state_dict().items(), copy_.state_dict().values()):
            assert torch.equal(a, b), name


# ----------------------------------------------------------------------------------------------
# Explanation methods


@pytest.mark.parametrize("label", [0, 2])
def test_integrated_gradients_completeness(label):
    model = sharpened(R.RationaleTransformer(tiny_config()), std=1.0)
    ids, lengths = random_batch([12, 8, 2], seed=3)                 # padding and a one-token text
    attribution = explain_cost.integrated_gradients_tokens(model, ids, lengths, label, steps=50, batch_size=7)
    inputs, baseline = explain_cost.blank_baseline(model, ids, lengths)
    with torch.no_grad():
        difference = (explain_cost.class_logits(model, inputs, lengths)[:, label]
                      - explain_cost.class_logits(model, baseline, lengths)[:, label])
    assert difference.abs().min() > 0.1, "the test model should react to the blanks"
    torch.testing.assert_close(attribution.sum(1), difference, atol=1e-2, rtol=1e-2)
    assert torch.all(attribution[:, 0] == 0)                          # [CLS] is never varied
    assert torch.all(attribution[1, 8:] == 0)                         # padding
    assert torch.all(attribution[2, 2:] == 0)


def test_integrated_gradients_one_step_is_trapezoid():
    model = sharpened(R.RationaleTransformer(tiny_config()), seed=4)
    ids, lengths = random_batch([9], seed=4)
    inputs, baseline = explain_cost.blank_baseline(model, ids, lengths)
    gradients = []
    for point in (baseline, inputs):
        point = point.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(explain_cost.class_logits(model, point, lengths)[:, 1].sum(), point)
        gradients.append(gradient)
    expected = ((inputs - baseline) * (gradients[0] + gradients[1]) / 2).sum(-1)
    attribution = explain_cost.integrated_gradients_tokens(model, ids, lengths, 1, steps=1)
    torch.testing.assert_close(attribution, expected)


def brute_force_occlusion(model, ids, word_index, label, max_len, overlap):
    n_words = int(word_index.max()) + 1
    keep_all = np.ones((1, n_words), dtype=bool)
    full = E.blanked_probabilities(model, ids, word_index, keep_all, label, max_len, overlap)[0]
    scores = []
    for word in range(n_words):
        keep = keep_all.copy()
        keep[0, word] = False
        scores.append(full - E.blanked_probabilities(model, ids, word_index, keep, label, max_len, overlap)[0])
    return np.array(scores)


@pytest.mark.parametrize("n_words, max_len, overlap", [(1, 12, 3), (9, 40, 3), (30, 12, 3), (30, 12, 0)])
def test_occlusion_matches_brute_force(n_words, max_len, overlap):
    model = sharpened(R.RationaleTransformer(tiny_config(max_len=40)), std=0.3)
    ids, word_index = random_document(n_words, seed=n_words)
    ours = explain_cost.occlusion_scores(model, ids, word_index, 1, max_len, overlap, batch_size=5)
    expected = brute_force_occlusion(model, ids, word_index, 1, max_len, overlap)
    assert ours.shape == (n_words,)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_occlusion_of_empty_document():
    model = R.RationaleTransformer(tiny_config()).eval()
    empty = np.zeros(0, dtype=np.int64)
    assert explain_cost.occlusion_scores(model, empty, empty, 0, 12, 3).shape == (0,)


def test_mask_optimization_lowers_objective():
    model = sharpened(R.RationaleTransformer(tiny_config()), std=0.3)
    ids, word_index = random_document(20, seed=5)
    history = []
    scores = explain_cost.optimize_mask(model, ids, word_index, 2, 12, 3, steps=25, lr=0.1, history=history)
    assert len(history) == 25
    assert history[-1] < history[0]
    assert scores.shape == (20,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert all(not p.requires_grad or p.grad is None for p in model.parameters())   # the model stays frozen


def test_token_scores_to_words_averages_subwords():
    ids = np.arange(4, 11)                                           # 7 subwords
    word_index = np.array([0, 0, 1, 2, 2, 2, 3])
    windows = subwords.make_windows(ids, 5, 1)                       # 4 subwords per window, 1 shared
    scores = np.zeros((len(windows), 5))
    for k, window in enumerate(windows):
        scores[k, 1:len(window.ids)] = ids[window.start:window.start + len(window.ids) - 1]   # score = id
    words = explain_cost.token_scores_to_words(windows, scores, word_index)
    np.testing.assert_allclose(words, [4.5, 6, 8, 10])


# ----------------------------------------------------------------------------------------------
# Profiler labels


def test_breakdown_covers_step_and_restores_functions():
    torch.manual_seed(0)
    model = R.RationaleTransformer(tiny_config(dropout=0.1)).train()
    optimizer = torch.optim.AdamW(model.parameters())
    ids, lengths = random_batch([12, 7])
    labels = torch.tensor([0, 1])
    config = dict(blank_rate=0.1, clip=1.0)
    originals = (R.mask_kernel, R.blend_toward_blank, F.scaled_dot_product_attention, torch.nn.utils.clip_grad_norm_)
    import train
    step, parts = machine.profile_step(
        lambda: train.train_step(model, optimizer, ids, lengths, labels, config, R.LossWeights(), warmup=False),
        [model], torch.device("cpu"))
    assert (R.mask_kernel, R.blend_toward_blank, F.scaled_dot_product_attention,
            torch.nn.utils.clip_grad_norm_) == originals
    assert "forward" not in vars(model.blocks[0].mlp)
    assert sum(parts.values()) == pytest.approx(step)
    for category in machine.CATEGORIES:
        assert parts[category] > 0, category


def test_scripts_print_help(capsys):
    for main in (machine.main, three_player.main, explain_cost.main):
        with pytest.raises(SystemExit) as exit_:
            main(["--help"])
        assert exit_.value.code == 0
    assert "--threads" in capsys.readouterr().out
