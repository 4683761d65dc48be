"""A transformer classifier that explains itself, trained by a one-model three-player game.

One model plays three roles (Brinner & Zarriess, EMNLP 2024):

- classifier: reads the full text and predicts one of C classes;
- selector: its rationale head scores, for every token and every class, how relevant the token
  is to that class, as a soft mask in (0, 1) smoothed by a Gaussian kernel (MaRC);
- predictor and complement predictor: the same network, with its weights detached and dropout
  off, reads the text with the gold class's mask applied (the rationale) and with the opposite
  mask applied (the complement). The rationale should keep the gold class predictable and the
  complement should not.

Masks are applied by blending token embeddings toward a blank token, so the whole objective is
differentiable end to end. This file reads in the order of the method: encoder, heads, mask
kernel, masking, frozen scorer, losses, regularizers.
"""
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call


@dataclass
class ModelConfig:
    vocab_size: int              # number of token ids, special tokens included
    n_classes: int               # C >= 2, single-label
    max_len: int = 256           # positions, [CLS] included: the longest window the model reads
    d_model: int = 128           # width of the residual stream
    n_layers: int = 2            # transformer blocks
    n_heads: int = 4             # attention heads, each of width d_model / n_heads
    d_mlp: int = 512             # hidden width of each block's MLP
    dropout: float = 0.1         # on attention weights, residual branches and embeddings
    fused_attention: bool = True  # use scaled_dot_product_attention (same numbers, faster)
    blank_id: int = 3            # token that masked-out positions are blended toward ([MASK])
    min_width: float = 0.1       # lower bound of the kernel width sigma, in tokens squared
    max_width: float = 10.0      # upper bound of sigma; with kernel_radius it bounds the error
    kernel_radius: int = 12      # K: the mask at i sums weights of tokens j with |i - j| <= K
    init_weight: float = 0.5     # initial kernel weight, so that masks start near 0.78
    init_width: float = 2.0      # initial sigma
    selector_grad_scale: float = 1.0   # share of the rationale head's gradient that reaches the encoder

    def __post_init__(self):
        if self.n_classes < 2:
            raise ValueError(f"n_classes={self.n_classes} is invalid: a classifier needs at least 2 classes")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                             "choose sizes such that d_model % n_heads == 0")
        if not 0 < self.min_width < self.init_width < self.max_width:
            raise ValueError(f"widths must satisfy 0 < min_width < init_width < max_width, got "
                             f"{self.min_width}, {self.init_width}, {self.max_width}")


class ModelOutput(NamedTuple):
    logits: torch.Tensor                # (B, C) class logits from the [CLS] state
    mask: torch.Tensor | None           # (B, T, C) relevance of each token to each class, 0 on [CLS] and padding
    width: torch.Tensor | None          # (B, T, C) kernel width sigma at each token and class


# ----------------------------------------------------------------------------------------------
# Encoder


def attention(q, k, v, valid, dropout_p=0.0):
    """Compute softmax(q k^T / sqrt(d)) v over the keys where `valid` is True.

    q, k, v: (B, H, T, d). valid: (B, 1, 1, T) bool, False at padded keys. Returns (B, H, T, d).
    Every row has at least one valid key ([CLS]), so no softmax row is all -inf.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))        # (B, H, T, T)
    scores = scores.masked_fill(~valid, float("-inf"))
    weights = F.dropout(torch.softmax(scores, dim=-1), p=dropout_p)
    return weights @ v


class SelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.fused = config.fused_attention
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def forward(self, x, valid):
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d)
        dropout_p = self.dropout if self.training else 0.0
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=valid, dropout_p=dropout_p)
        else:
            y = attention(q, k, v, valid, dropout_p)
        y = y.transpose(1, 2).reshape(B, T, D)
        return self.out(y)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attention = SelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(nn.Linear(config.d_model, config.d_mlp), nn.GELU(),
                                 nn.Linear(config.d_mlp, config.d_model))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, valid):
        x = x + self.dropout(self.attention(self.ln1(x), valid))
        return x + self.dropout(self.mlp(self.ln2(x)))


def scale_gradient(x, scale):
    """Return x unchanged in the forward pass; multiply its gradient by `scale` in the backward pass."""
    if scale == 1.0:
        return x
    return x * scale + x.detach() * (1.0 - scale)


def length_mask(lengths, T):
    """Return (B, T) bool, True at the first lengths[b] positions of each sequence."""
    return torch.arange(T, device=lengths.device) < lengths[:, None]


def real_token_mask(lengths, T):
    """Return (B, T) bool, True at tokens that carry text: inside the length and not [CLS] (position 0)."""
    positions = torch.arange(T, device=lengths.device)
    return (positions >= 1) & (positions < lengths[:, None])


# ----------------------------------------------------------------------------------------------
# Mask kernel and masking


def bounded_width(raw, min_width, max_width):
    """Map the head's raw width output to sigma in (min_width, max_width) smoothly."""
    return min_width + (max_width - min_width) * torch.sigmoid(raw)


def mask_kernel(weight, width, real, radius):
    """Gaussian mask kernel: m[i,c] = sigmoid( sum_j w[j,c] * exp(-(i-j)^2 / sigma[i,c]) ).

    weight, width: (B, T, C). real: (B, T) bool; only real tokens j contribute to the sum, and
    only real tokens i get a mask value (0 elsewhere). The sum is truncated to |i - j| <= radius.
    For sigma <= max_width the dropped terms are at most 2 |w|max sum_{d > K} exp(-d^2 / max_width);
    for the defaults (K = 12, max_width = 10) that is below 1e-7 |w|max, so the truncation is exact
    to float32 precision for any weight size met in training. Returns (B, T, C).
    """
    w = weight * real[..., None]                                 # (B, T, C), zero at [CLS] and padding
    padded = F.pad(w, (0, 0, radius, radius))                     # (B, T + 2K, C)
    neighbours = padded.unfold(1, 2 * radius + 1, 1)              # (B, T, C, 2K+1): w[i + d] for d = -K..K
    offsets = torch.arange(-radius, radius + 1, device=w.device, dtype=w.dtype)
    gauss = torch.exp(-offsets ** 2 / width[..., None])           # (B, T, C, 2K+1)
    logits = (neighbours * gauss).sum(-1)                          # (B, T, C)
    return torch.sigmoid(logits) * real[..., None]


def blend_toward_blank(embeddings, blank, keep, real):
    """Apply a soft keep mask: e_i -> keep_i * e_i + (1 - keep_i) * blank at real tokens.

    embeddings: (B, T, D) token embeddings before positions are added. blank: (D,). keep: (B, T)
    in [0, 1]. [CLS] and padding keep their own embedding. The rationale input of class c uses
    keep = m_c and the complement input uses keep = 1 - m_c.
    """
    keep = torch.where(real, keep, torch.ones_like(keep))[..., None]   # (B, T, 1)
    return keep * embeddings + (1 - keep) * blank


class RationaleTransformer(nn.Module):
    """Encoder with a classifier head on [CLS] and a class-wise rationale head on every token."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.max_len, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_final = nn.LayerNorm(config.d_model)
        self.classifier = nn.Linear(config.d_model, config.n_classes)
        self.rationale_head = nn.Linear(config.d_model, 2 * config.n_classes)   # weight and raw width per class
        self.apply(self._init_weights)
        self._init_rationale_head()

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _init_rationale_head(self):
        # Start every mask near 0.78 with sigma = init_width: a flat 0.5 start lets the smoothness
        # term hold the masks still, and starting high lets the size term carve the rationale out.
        c = self.config
        fraction = (c.init_width - c.min_width) / (c.max_width - c.min_width)
        with torch.no_grad():
            self.rationale_head.bias[:c.n_classes] = c.init_weight
            self.rationale_head.bias[c.n_classes:] = math.log(fraction / (1 - fraction))

    def encode(self, token_embeddings, lengths):
        """Run the encoder on token embeddings (B, T, D); return the final states (B, T, D)."""
        B, T, _ = token_embeddings.shape
        if T > self.config.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.config.max_len}; "
                             "cut documents into windows of at most max_len tokens")
        positions = self.position_embedding(torch.arange(T, device=token_embeddings.device))
        x = self.dropout(token_embeddings + positions)
        valid = length_mask(lengths, T)[:, None, None, :]              # (B, 1, 1, T) for the keys
        for block in self.blocks:
            x = block(x, valid)
        return self.ln_final(x)

    def forward(self, ids, lengths, keep=None):
        """Classify ids (B, T) of the given lengths (B,); every sequence starts with [CLS].

        Without `keep`: return logits, masks and widths of the full text. With `keep` (B, T):
        blend the tokens toward the blank token first and return logits only (mask and width None).
        """
        real = real_token_mask(lengths, ids.size(1))
        tokens = self.token_embedding(ids)                              # (B, T, D)
        if keep is not None:
            blank = self.token_embedding.weight[self.config.blank_id]
            tokens = blend_toward_blank(tokens, blank, keep, real)
        states = self.encode(tokens, lengths)
        logits = self.classifier(states[:, 0])                          # (B, C) from [CLS]
        if keep is not None:
            return ModelOutput(logits, None, None)
        # With selector_grad_scale < 1 the mask losses shape the shared encoder less than the
        # classification loss does; a small model trained from scratch otherwise lets them
        # overwrite the features the classifier needs.
        head_input = scale_gradient(states, self.config.selector_grad_scale)
        weight, raw_width = self.rationale_head(head_input).chunk(2, dim=-1)   # (B, T, C) each
        width = bounded_width(raw_width, self.config.min_width, self.config.max_width)
        mask = mask_kernel(weight, width, real, self.config.kernel_radius)
        return ModelOutput(logits, mask, width)


# ----------------------------------------------------------------------------------------------
# The frozen scorer: predictor and complement predictor


def frozen_logits(model, ids, lengths, keep):
    """Classify the blended text with the model's weights detached and dropout off.

    Gradients reach `keep` (and so the masks) through the activations, but never the weights:
    the rationale losses cannot change how the model classifies. This gives the same gradients
    as a deep-copied, frozen, eval-mode copy of the model, without copying. Returns (B, C).
    """
    params = {name: p.detach() for name, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    try:
        return functional_call(model, params, (ids, lengths), {"keep": keep}).logits
    finally:
        model.train(was_training)


def gold_class_mask(mask, labels):
    """Select each example's gold-class mask: (B, T, C), (B,) -> (B, T)."""
    return mask.gather(2, labels[:, None, None].expand(-1, mask.size(1), 1)).squeeze(2)


# ----------------------------------------------------------------------------------------------
# Losses. Each returns a scalar: the mean over the batch of a per-example value.


def classification_loss(logits, labels, class_weights=None):
    """L_clf = CE(z, y), averaged over the batch (weighted mean when class_weights (C,) is given).

    logits: (B, C), labels: (B,). With class weights w, the mean is sum_b w[y_b] CE_b / sum_b w[y_b].
    """
    return F.cross_entropy(logits, labels, weight=class_weights)


def sufficiency_loss(rationale_logits, labels):
    """L_suff = -log p_y(R_y): the gold class should stay likely on the rationale alone.

    rationale_logits: (B, C), the frozen scorer's logits for the rationale inputs. Mean over batch.
    """
    return F.cross_entropy(rationale_logits, labels)


def complement_loss(complement_logits, labels):
    """L_comp = relu(p_y(K_y) - 1/C): the complement should leave the gold class at chance or below.

    complement_logits: (B, C), the frozen scorer's logits for the complement inputs. Mean over batch.
    """
    n_classes = complement_logits.size(1)
    p_gold = torch.softmax(complement_logits, dim=1).gather(1, labels[:, None]).squeeze(1)   # (B,)
    return F.relu(p_gold - 1.0 / n_classes).mean()


@dataclass
class LossWeights:
    classification: float = 2.0
    sufficiency: float = 5.0
    complement: float = 5.0
    regularizer: float = 3.0
    size_gold: float = 0.2        # on the squared mean mask of the gold class
    size_other: float = 0.05      # on the squared mean masks of the other classes
    size_linear: float = 0.001    # on the sum of the mean masks of all classes
    width: float = 0.02           # on the squared distance of sigma from width_target
    width_target: float = 3.0
    smoothness: float = 0.05      # on the summed squared steps between neighbouring tokens
    class_weights: list[float] | None = field(default=None)   # per-class CE weights, or None


def mean_mask(mask, real):
    """Return each example's mean mask per class over its real tokens: (B, T, C) -> (B, C)."""
    count = real.sum(1, keepdim=True).clamp(min=1)                 # (B, 1): an empty text counts as 1
    return (mask * real[..., None]).sum(1) / count


def size_regularizer(mask, real, labels, weights):
    """size = a * m_y^2 + b * sum_{c != y} m_c^2 + e * sum_c m_c, with m_c the mean mask of class c.

    a, b, e = weights.size_gold, size_other, size_linear. mask (B, T, C), real (B, T), labels (B,).
    Mean over the batch.
    """
    means = mean_mask(mask, real)                                   # (B, C)
    gold = F.one_hot(labels, means.size(1)).bool()                 # (B, C)
    squared = means ** 2
    per_example = (weights.size_gold * squared[gold]
                   + weights.size_other * squared.masked_fill(gold, 0).sum(1)
                   + weights.size_linear * means.sum(1))
    return per_example.mean()


def width_regularizer(width, real, weights):
    """width = lambda * mean_{i,c} (sigma[i,c] - target)^2 over the real tokens of the whole batch.

    width: (B, T, C), real: (B, T). Returns 0 for a batch without real tokens.
    """
    squared = (width - weights.width_target) ** 2 * real[..., None]
    count = real.sum() * width.size(2)
    return weights.width * squared.sum() / count.clamp(min=1)


def smoothness_regularizer(mask, real, weights):
    """smooth = lambda * mean_c sum_i (m[i+1,c] - m[i,c])^2, then the mean over the batch.

    The sum runs over neighbouring pairs of real tokens (B, T-1) and is not divided by the
    length: a step costs the same in a short and a long text, so a mask pays per span edge.
    """
    pairs = real[:, 1:] & real[:, :-1]                              # (B, T-1)
    steps = (mask[:, 1:] - mask[:, :-1]) ** 2 * pairs[..., None]    # (B, T-1, C)
    return weights.smoothness * steps.sum(1).mean(1).mean()


def rationale_loss(model, ids, lengths, labels, weights=None, warmup=False):
    """Compute the single-model three-player objective for one batch.

    total = w_clf L_clf + w_suff L_suff + w_comp L_comp + w_reg (size + width + smoothness),
    or w_clf L_clf alone during warm-up. Returns (total, parts, output) where parts maps each
    term's name to its detached value and output is the model's ModelOutput on the full text.
    """
    weights = weights or LossWeights()
    output = model(ids, lengths)
    class_weights = None
    if weights.class_weights is not None:
        class_weights = torch.tensor(weights.class_weights, device=ids.device, dtype=output.logits.dtype)
    clf = classification_loss(output.logits, labels, class_weights)
    if warmup:
        return weights.classification * clf, {"classification": clf.detach()}, output

    # Rationale and complement inputs of the gold class go through one scorer call: (2B, T).
    keep = gold_class_mask(output.mask, labels)                      # (B, T)
    scored = frozen_logits(model, ids.repeat(2, 1), lengths.repeat(2), torch.cat([keep, 1 - keep]))
    rationale_logits, complement_logits = scored.chunk(2)
    suff = sufficiency_loss(rationale_logits, labels)
    comp = complement_loss(complement_logits, labels)

    real = real_token_mask(lengths, ids.size(1))
    size = size_regularizer(output.mask, real, labels, weights)
    width = width_regularizer(output.width, real, weights)
    smooth = smoothness_regularizer(output.mask, real, weights)
    regularizer = size + width + smooth

    total = (weights.classification * clf + weights.sufficiency * suff
             + weights.complement * comp + weights.regularizer * regularizer)
    parts = {"classification": clf, "sufficiency": suff, "complement": comp, "regularizer": regularizer,
             "size": size, "width": width, "smoothness": smooth}
    return total, {name: value.detach() for name, value in parts.items()}, output


def blank_random_tokens(ids, lengths, max_rate, blank_id, generator=None):
    """Replace real tokens by the blank token, each text at its own rate drawn from U(0, max_rate).

    The frozen scorer reads texts that are partly or mostly blank, but a classifier trained on
    full texts only never sees a blank and judges such a text arbitrarily; the masks then learn
    to exploit that (for example the complement of one class becomes "everything blank"). With
    blank rates spread over [0, max_rate], the classifier learns that blanks carry no evidence,
    so a text stripped of its evidence falls to chance. ids: (B, T); returns a new (B, T) tensor.
    """
    real = real_token_mask(lengths, ids.size(1))
    rates = torch.rand(ids.size(0), 1, generator=generator, device=ids.device) * max_rate     # (B, 1)
    draw = torch.rand(ids.shape, generator=generator, device=ids.device) < rates
    return torch.where(real & draw, torch.full_like(ids, blank_id), ids)
