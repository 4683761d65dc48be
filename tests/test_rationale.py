"""Tests of rationale.py, each against an independent computation."""
import copy

import pytest
import torch
import torch.nn.functional as F

import rationale as R

CLS, BLANK = 2, 3


def tiny_config(**overrides):
    settings = dict(vocab_size=40, n_classes=3, max_len=48, d_model=32, n_layers=2, n_heads=4,
                    d_mlp=64, dropout=0.1)
    settings.update(overrides)
    return R.ModelConfig(**settings)


def random_batch(lengths, vocab_size=40, generator=None):
    """Return ids (B, T) starting with [CLS], padded with 0 after each length, and lengths (B,)."""
    lengths = torch.tensor(lengths)
    T = int(lengths.max())
    ids = torch.randint(4, vocab_size, (len(lengths), T), generator=generator)
    ids[:, 0] = CLS
    ids[torch.arange(T) >= lengths[:, None]] = 0
    return ids, lengths


# ----------------------------------------------------------------------------------------------
# Encoder


def test_attention_matches_sdpa_with_padding():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, 7, 8) for _ in range(3))
    valid = R.length_mask(torch.tensor([7, 3, 1]), 7)[:, None, None, :]
    ours = R.attention(q, k, v, valid)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=valid)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_fused_and_explicit_paths_agree():
    torch.manual_seed(0)
    fused = R.RationaleTransformer(tiny_config(fused_attention=True)).eval()
    explicit = R.RationaleTransformer(tiny_config(fused_attention=False)).eval()
    explicit.load_state_dict(fused.state_dict())
    ids, lengths = random_batch([9, 5, 1])
    a, b = fused(ids, lengths), explicit(ids, lengths)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.mask, b.mask, atol=1e-5, rtol=0)


def test_appended_padding_changes_nothing():
    torch.manual_seed(0)
    model = R.RationaleTransformer(tiny_config()).eval()
    ids, lengths = random_batch([10, 6, 1, 2])
    padded = F.pad(ids, (0, 15), value=0)
    short, long = model(ids, lengths), model(padded, lengths)
    torch.testing.assert_close(short.logits, long.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(short.mask, long.mask[:, :10], atol=1e-5, rtol=0)
    assert long.mask[:, 10:].abs().max() == 0


def test_special_and_padding_tokens_get_no_mask():
    model = R.RationaleTransformer(tiny_config()).eval()
    ids, lengths = random_batch([8, 4, 1])
    mask = model(ids, lengths).mask
    assert mask[:, 0].abs().max() == 0                      # [CLS]
    assert mask[1, 4:].abs().max() == 0                     # padding
    assert mask[2].abs().max() == 0                         # a text of [CLS] only
    assert (mask[0, 1:] > 0).all()
    assert (mask[0, 1:] < 1).all()


def test_cls_only_text_gives_finite_losses():
    model = R.RationaleTransformer(tiny_config())
    ids, lengths = random_batch([1, 2])
    total, parts, _ = R.rationale_loss(model, ids, lengths, torch.tensor([0, 2]))
    assert torch.isfinite(total)
    assert all(torch.isfinite(value) for value in parts.values())


def test_too_long_sequence_raises():
    model = R.RationaleTransformer(tiny_config(max_len=8))
    ids, lengths = random_batch([9])
    with pytest.raises(ValueError, match="max_len=8"):
        model(ids, lengths)


def test_invalid_config_raises():
    with pytest.raises(ValueError, match="n_classes=1"):
        tiny_config(n_classes=1)
    with pytest.raises(ValueError, match="d_model=30"):
        tiny_config(d_model=30)


# ----------------------------------------------------------------------------------------------
# Mask kernel and blending


def full_kernel(weight, width, real):
    """m[i,c] = sigmoid(sum over all real j of w[j,c] exp(-(i-j)^2 / sigma[i,c])), by the O(T^2) sum."""
    B, T, C = weight.shape
    i = torch.arange(T, dtype=weight.dtype)
    distance = (i[:, None] - i[None, :]) ** 2                          # (T, T): (i - j)^2
    gauss = torch.exp(-distance[None, :, :, None] / width[:, :, None, :])   # (B, T_i, T_j, C)
    w = weight * real[..., None]
    logits = (gauss * w[:, None, :, :]).sum(2)                         # sum over j
    return torch.sigmoid(logits) * real[..., None]


@pytest.mark.parametrize("weight_scale", [0.1, 1.0, 5.0])
def test_kernel_matches_full_sum(weight_scale):
    torch.manual_seed(0)
    config = tiny_config()
    B, T, C = 3, 40, 3
    weight = torch.randn(B, T, C, dtype=torch.float64) * weight_scale
    width = R.bounded_width(torch.randn(B, T, C, dtype=torch.float64) * 4, config.min_width, config.max_width)
    width[0] = config.max_width                                      # the widest allowed kernel
    width[1, :5] = config.min_width
    real = R.real_token_mask(torch.tensor([40, 23, 1]), T)
    ours = R.mask_kernel(weight, width, real, config.kernel_radius)
    torch.testing.assert_close(ours, full_kernel(weight, width, real), atol=1e-5, rtol=0)


def test_blend_follows_the_equations():
    torch.manual_seed(0)
    embeddings, blank = torch.randn(2, 5, 4), torch.randn(4)
    keep = torch.rand(2, 5)
    real = R.real_token_mask(torch.tensor([5, 3]), 5)
    blended = R.blend_toward_blank(embeddings, blank, keep, real)
    for b in range(2):
        for i in range(5):
            if real[b, i]:
                expected = keep[b, i] * embeddings[b, i] + (1 - keep[b, i]) * blank
            else:
                expected = embeddings[b, i]
            torch.testing.assert_close(blended[b, i], expected)


# ----------------------------------------------------------------------------------------------
# Frozen scorer


def scorer_terms(model, ids, lengths, labels, logits_fn):
    """Return L_suff + L_comp with the masks of `model` and the scorer `logits_fn`."""
    keep = R.gold_class_mask(model(ids, lengths).mask, labels)
    rationale_logits = logits_fn(ids, lengths, keep)
    complement_logits = logits_fn(ids, lengths, 1 - keep)
    return R.sufficiency_loss(rationale_logits, labels) + R.complement_loss(complement_logits, labels)


def test_frozen_scorer_matches_deep_copy():
    torch.manual_seed(0)
    model = R.RationaleTransformer(tiny_config(dropout=0.2)).train()
    ids, lengths = random_batch([12, 7, 3])
    labels = torch.tensor([0, 1, 2])

    torch.manual_seed(1)
    ours = scorer_terms(model, ids, lengths, labels,
                        lambda i, n, k: R.frozen_logits(model, i, n, k))
    ours_grads = torch.autograd.grad(ours, list(model.parameters()), allow_unused=True)

    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    torch.manual_seed(1)
    reference = scorer_terms(model, ids, lengths, labels,
                             lambda i, n, k: frozen(i, n, keep=k).logits)
    reference_grads = torch.autograd.grad(reference, list(model.parameters()), allow_unused=True)

    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)
    assert model.training, "the scorer must restore training mode"
    for (name, _), a, b in zip(model.named_parameters(), ours_grads, reference_grads):
        a = torch.zeros(1) if a is None else a
        b = torch.zeros(1) if b is None else b
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=f"gradient of {name} differs")
    grads = dict(zip([name for name, _ in model.named_parameters()], ours_grads))
    assert grads["classifier.weight"] is None or grads["classifier.weight"].abs().max() == 0
    assert grads["rationale_head.weight"].abs().max() > 0


# ----------------------------------------------------------------------------------------------
# Loss reductions


def test_loss_terms_follow_their_equations():
    torch.manual_seed(0)
    weights = R.LossWeights()
    B, T, C = 3, 6, 3
    mask, width = torch.rand(B, T, C), torch.rand(B, T, C) * 8
    lengths = torch.tensor([6, 4, 2])
    real = R.real_token_mask(lengths, T)
    labels = torch.tensor([2, 0, 1])
    size, wide, smooth = 0.0, [], 0.0
    for b in range(B):
        n = int(lengths[b])
        means = [mask[b, 1:n, c].mean() for c in range(C)]
        size += (weights.size_gold * means[labels[b]] ** 2
                 + weights.size_other * sum(means[c] ** 2 for c in range(C) if c != labels[b])
                 + weights.size_linear * sum(means)) / B
        wide += [(width[b, i, c] - weights.width_target) ** 2 for i in range(1, n) for c in range(C)]
        smooth += weights.smoothness * sum(
            sum((mask[b, i + 1, c] - mask[b, i, c]) ** 2 for i in range(1, n - 1)) for c in range(C)) / C / B
    torch.testing.assert_close(R.size_regularizer(mask, real, labels, weights), size)
    torch.testing.assert_close(R.width_regularizer(width, real, weights),
                               weights.width * torch.stack(wide).mean())
    torch.testing.assert_close(R.smoothness_regularizer(mask, real, weights), smooth)

    logits = torch.randn(B, C)
    probabilities = torch.softmax(logits, 1)
    expected = sum(max(probabilities[b, labels[b]] - 1 / C, 0) for b in range(B)) / B
    torch.testing.assert_close(R.complement_loss(logits, labels), torch.tensor(expected))
    expected = sum(-torch.log(probabilities[b, labels[b]]) for b in range(B)) / B
    torch.testing.assert_close(R.sufficiency_loss(logits, labels), expected)


def test_duplicated_batch_leaves_every_term_unchanged():
    torch.manual_seed(0)
    model = R.RationaleTransformer(tiny_config(dropout=0.0))
    ids, lengths = random_batch([11, 6, 2, 1])
    labels = torch.tensor([0, 1, 2, 1])
    weights = R.LossWeights(class_weights=[1.0, 2.0, 0.5])
    total, parts, _ = R.rationale_loss(model, ids, lengths, labels, weights)
    total2, parts2, _ = R.rationale_loss(model, ids.repeat(2, 1), lengths.repeat(2), labels.repeat(2), weights)
    torch.testing.assert_close(total, total2)
    for name in parts:
        torch.testing.assert_close(parts[name], parts2[name], msg=f"{name} changed when the batch was duplicated")


def test_blank_random_tokens_spares_cls_and_padding():
    generator = torch.Generator().manual_seed(0)
    ids, lengths = random_batch([200, 50, 1])
    ids, lengths = random_batch([200] * 400)
    ids[:, 1:] = 5
    blanked = R.blank_random_tokens(ids, lengths, 0.5, BLANK, generator)
    real = R.real_token_mask(lengths, ids.size(1))
    changed = blanked != ids
    assert (blanked[changed] == BLANK).all()
    assert not changed[:, 0].any()
    rates = changed[:, 1:].float().mean(1)                      # one rate per text, U(0, 0.5)
    assert rates.max() < 0.58
    assert rates.min() < 0.05
    assert abs(rates.mean() - 0.25) < 0.03
    assert abs((rates < 0.25).float().mean() - 0.5) < 0.1

    ids, lengths = random_batch([9, 4, 1])
    blanked = R.blank_random_tokens(ids, lengths, 1.0, BLANK, generator)
    assert (blanked[~R.real_token_mask(lengths, ids.size(1))] == ids[~R.real_token_mask(lengths, ids.size(1))]).all()


def test_warmup_trains_classification_only():
    model = R.RationaleTransformer(tiny_config())
    ids, lengths = random_batch([8, 5])
    total, parts, _ = R.rationale_loss(model, ids, lengths, torch.tensor([0, 1]), warmup=True)
    total.backward()
    assert set(parts) == {"classification"}
    assert model.rationale_head.weight.grad is None or model.rationale_head.weight.grad.abs().max() == 0
    assert model.classifier.weight.grad.abs().max() > 0


# ----------------------------------------------------------------------------------------------
# Training on a task with a known rationale


def planted_task(n, n_classes, generator):
    """Random filler texts in which one planted token (id 4 + class) decides the class."""
    filler_low = 4 + n_classes
    lengths = torch.randint(8, 17, (n,), generator=generator)
    ids, lengths = random_batch(lengths.tolist(), vocab_size=40, generator=generator)
    ids[(ids > 0) & (ids < filler_low) & (torch.arange(ids.size(1)) > 0)] = filler_low
    labels = torch.randint(0, n_classes, (n,), generator=generator)
    positions = (torch.rand(n, generator=generator) * (lengths - 1)).long() + 1
    ids[torch.arange(n), positions] = 4 + labels
    return ids, lengths, labels, positions


def train_planted(n_classes, steps, seed=0):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = R.RationaleTransformer(tiny_config(n_classes=n_classes, dropout=0.0, n_layers=1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        ids, lengths, labels, _ = planted_task(32, n_classes, generator)
        ids = R.blank_random_tokens(ids, lengths, 0.4, BLANK, generator)
        total, parts, _ = R.rationale_loss(model, ids, lengths, labels, warmup=step < steps // 5)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    return model.eval(), generator


def test_planted_token_ranks_first():
    model, generator = train_planted(n_classes=2, steps=300)
    ids, lengths, labels, positions = planted_task(200, 2, generator)
    with torch.no_grad():
        output = model(ids, lengths)
    gold = R.gold_class_mask(output.mask, labels)                    # (B, T)
    other = R.gold_class_mask(output.mask, 1 - labels)
    ranked_first = (gold.argmax(1) == positions).float().mean()
    assert ranked_first >= 0.9, f"planted token ranked first in only {ranked_first:.0%} of texts"
    accuracy = (output.logits.argmax(1) == labels).float().mean()
    assert accuracy >= 0.95
    real = R.real_token_mask(lengths, ids.size(1))
    other_mean = (other * real).sum() / real.sum()
    assert other_mean < 0.1, f"the other class's mean mask is {other_mean:.2f}"


def test_three_classes_train_and_give_three_masks():
    model, generator = train_planted(n_classes=3, steps=60)
    ids, lengths, labels, _ = planted_task(16, 3, generator)
    with torch.no_grad():
        output = model(ids, lengths)
    assert output.mask.shape == (16, ids.size(1), 3)
    assert output.logits.shape == (16, 3)
    total, _, _ = R.rationale_loss(model.train(), ids, lengths, labels)
    assert torch.isfinite(total)


def test_scale_gradient_scales_only_backward():
    x = torch.randn(3, 4, requires_grad=True)
    y = R.scale_gradient(x, 0.25)
    torch.testing.assert_close(y, x)
    (y * 2).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3, 4), 0.5))


def test_selector_grad_scale_shrinks_encoder_gradient():
    torch.manual_seed(0)
    full = R.RationaleTransformer(tiny_config(dropout=0.0)).eval()
    scaled = R.RationaleTransformer(tiny_config(dropout=0.0, selector_grad_scale=0.1)).eval()
    scaled.load_state_dict(full.state_dict())
    ids, lengths = random_batch([10, 7])
    labels = torch.tensor([0, 2])
    grads = []
    for model in (full, scaled):
        mask = model(ids, lengths).mask
        R.size_regularizer(mask, R.real_token_mask(lengths, ids.size(1)), labels, R.LossWeights()).backward()
        grads.append((model.blocks[0].mlp[0].weight.grad.clone(), model.rationale_head.weight.grad.clone()))
    torch.testing.assert_close(grads[1][0], 0.1 * grads[0][0])     # encoder: scaled
    torch.testing.assert_close(grads[1][1], grads[0][1])           # rationale head: unchanged
