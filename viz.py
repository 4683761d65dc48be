"""Draw per-class word relevance: a heatmap for short texts, a wrapped text view for
documents of any length, and a standalone HTML page.

Every function takes plain inputs: the document's words, a (C, N) array of scores in [0, 1]
(classes x words), the class names and, optionally, a gold rationale mask. So they work for
any model or attribution method. Pictures are drawn on matplotlib's Agg canvas directly:
they never need a display and never touch the pyplot backend.

    python viz.py runs/movies/best.pt --text "a tedious , overlong mess" --html

explains a new text with a trained checkpoint (see `main`).
"""

from __future__ import annotations

import functools
import html
import operator
import os
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
from matplotlib import colormaps, font_manager, ft2font, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import ListedColormap, Normalize, to_hex
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patheffects import withStroke

# Reversed magma runs from pale cream (score 0) to black. Stopping at 85 % of it keeps the
# top of the scale a deep purple that white text stays readable on, and a slice of a
# perceptually uniform colormap is still perceptually uniform.
CMAP = ListedColormap(colormaps["magma_r"](np.linspace(0.0, 0.85, 256)), name="magma_r_85")
GOLD_COLOR = "#0077b6"  # blue, a hue that the colormap never uses
DARK_TEXT, LIGHT_TEXT = "#111111", "#ffffff"
# DejaVu Sans ships with matplotlib, so every machine draws the same glyphs. Math text and
# LaTeX are off because "$" is common in reviews ("$5 and $10") and must not start a
# formula. The savefig settings keep a user's matplotlibrc from changing the layout.
FONT_FAMILY = "DejaVu Sans"
RC_PARAMS = {"font.family": FONT_FAMILY, "text.parse_math": False, "text.usetex": False,
             "savefig.bbox": "standard", "savefig.transparent": False}
PLACEHOLDER = "\u25a1"  # white square, drawn for each character the font cannot draw
DPI = 100

MAX_HEATMAP_WORDS = 150
MAX_HEATMAP_WIDTH_IN = 22.0  # the grid of cells, labels and colorbar come on top
MAX_LABEL_CHARS = 24  # longer words are cut short in the heatmap's axis labels only
MAX_IMAGE_PIXELS = 65_000  # Agg before matplotlib 3.10 rejects 2**16 pixels in a direction

# Text view geometry, in points (1/72 inch).
TEXT_SIZE = 10.0
LINE_HEIGHT = 19.0
BOX_HEIGHT = 14.0
BOX_PAD = 1.5  # between a word's text and the edge of its box, on each side
WORD_GAP = 2.5  # between neighboring boxes
UNDERLINE_WIDTH = 1.8
MARGIN = 24.0
HEADER_HEIGHT = 26.0
PANEL_GAP = 16.0
LEGEND_SIZE = 9.0
LEGEND_LABEL = "word score for the panel's class"
COLORBAR_WIDTH = 150.0
# Width per character of typical English, used to turn width_chars into a line width.
WIDTH_SAMPLE = "the quick brown fox jumps over the lazy dog, said the review."


# ---- Input checks ------------------------------------------------------------------------

def check_words(words) -> list[str]:
    """Return the words as a list, raising for a non-list, an empty text or a non-string."""
    if isinstance(words, str):
        raise TypeError("words must be a list of strings, not one string; pass text.split()")
    words = list(words)
    if not words:
        raise ValueError("the text is empty (words has no entries); pass at least one word")
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise TypeError(f"words[{i}] is a {type(word).__name__}; every word must be a str")
    return words


def check_scores(scores, n_words: int, n_classes: int | None = None) -> np.ndarray:
    """Return scores as a float (C, N) array, raising unless the shape and range fit.

    A 1-D array of N scores is read as one class. Values may stray from [0, 1] by 1e-6 of
    rounding error and are then clipped.
    """
    array = np.asarray(scores, dtype=float)
    scores_2d = array[None, :] if array.ndim == 1 else array
    classes_ok = n_classes is None or scores_2d.shape[0] == n_classes
    if scores_2d.ndim != 2 or scores_2d.shape[1] != n_words or not classes_ok:
        expected = f"({n_classes if n_classes is not None else 'C'}, {n_words})"
        raise ValueError(f"scores has shape {array.shape} but words has shape ({n_words},); "
                         f"scores must be (classes, words) = {expected}")
    if not np.isfinite(scores_2d).all():
        bad = np.argwhere(~np.isfinite(scores_2d))[0]
        raise ValueError(f"scores contains NaN or infinity, first at (class, word) = "
                         f"{tuple(int(i) for i in bad)}; replace it before plotting")
    low, high = scores_2d.min(), scores_2d.max()
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"scores must lie in [0, 1] but range from {low:.4g} to {high:.4g}; "
                         "apply a sigmoid or rescale with (s - s.min()) / (s.max() - s.min())")
    return np.clip(scores_2d, 0.0, 1.0)


def check_gold(gold, n_classes: int, n_words: int) -> np.ndarray | None:
    """Return gold as a bool (N,) or (C, N) array, or None, raising for other shapes."""
    if gold is None:
        return None
    array = np.asarray(gold)
    if array.shape not in ((n_words,), (n_classes, n_words)):
        raise ValueError(f"gold has shape {array.shape} but must be ({n_words},) for one "
                         f"rationale or ({n_classes}, {n_words}) for one per class")
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError("gold must be a boolean mask (or 0 and 1 only)")
    return array.astype(bool)


def check_classes(classes, n_classes: int) -> list[int]:
    """Return the class indices to show, all classes when classes is None."""
    if classes is None:
        return list(range(n_classes))
    indices = [operator.index(c) for c in classes]
    if not indices:
        raise ValueError("classes is empty; pass at least one class index or None for all")
    for c in indices:
        if not 0 <= c < n_classes:
            raise ValueError(f"class index {c} is out of range for {n_classes} classes")
    return indices


def check_inputs(words, scores, class_names, gold, predicted, probability):
    """Validate the arguments every picture shares; return words, class names, scores, gold."""
    words = check_words(words)
    class_names = [str(name) for name in class_names]
    scores = check_scores(scores, len(words), len(class_names))
    gold = check_gold(gold, len(class_names), len(words))
    if predicted is not None and not 0 <= operator.index(predicted) < len(class_names):
        raise ValueError(f"predicted class {predicted} is out of range for "
                         f"{len(class_names)} classes")
    if probability is not None and predicted is None:
        raise ValueError("probability was given without the predicted class; pass predicted")
    if probability is not None and not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability {probability} of the predicted class must lie in [0, 1]")
    return words, class_names, scores, gold


def gold_rows(gold: np.ndarray | None, n_classes: int) -> np.ndarray | None:
    """Return the gold mask as (C, N): a single (N,) rationale is shown for every class."""
    if gold is None or gold.ndim == 2:
        return gold
    return np.broadcast_to(gold, (n_classes, gold.shape[0]))


def prediction_text(class_names, predicted, probability) -> str:
    """Return 'predicted: POS (p = 0.93)', or '' when no prediction was given."""
    if predicted is None:
        return ""
    text = f"predicted: {class_names[predicted]}"
    return text if probability is None else f"{text} (p = {probability:.2f})"


def summary_text(class_names, predicted, probability, n_words: int) -> str:
    """Return 'predicted: POS (p = 0.93)  ·  2,000 words', without the prediction if none."""
    count = f"{n_words:,} word{'' if n_words == 1 else 's'}"
    prediction = prediction_text(class_names, predicted, probability)
    return f"{prediction}  \u00b7  {count}" if prediction else count


def panel_headers(class_names, predicted, probability) -> list[str]:
    """Return each class's panel header, marking the predicted class."""
    headers = [f"class {name}" for name in class_names]
    if predicted is not None:
        note = "predicted" if probability is None else f"predicted, p = {probability:.2f}"
        headers[predicted] += f" ({note})"
    return headers


# ---- Colors, glyphs and files ------------------------------------------------------------

def text_colors(backgrounds: np.ndarray) -> np.ndarray:
    """Choose dark or light text for each RGBA background, whichever has more contrast.

    Uses the WCAG 2 relative luminance L and the contrast ratio (L1 + 0.05) / (L2 + 0.05).
    """
    rgb = np.asarray(backgrounds, dtype=float)[..., :3]
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722])
    # The dark text color is close enough to black to use black's luminance, 0.
    contrast_dark = (luminance + 0.05) / 0.05
    contrast_light = 1.05 / (luminance + 0.05)
    return np.where(contrast_dark >= contrast_light, DARK_TEXT, LIGHT_TEXT)


@functools.lru_cache(maxsize=None)
def font_code_points() -> frozenset[int]:
    """Return the code points that both the regular and the bold font face can draw."""
    common = None
    for weight in ("normal", "bold"):
        properties = FontProperties(family=FONT_FAMILY, weight=weight)
        path = font_manager.findfont(properties, fallback_to_default=False)
        code_points = set(ft2font.FT2Font(path).get_charmap())
        common = code_points if common is None else common & code_points
    return frozenset(common)


def displayable(text: str) -> str:
    """Replace what the font cannot draw, so matplotlib has no missing glyph to warn about.

    Invisible characters that the font lacks (such as the tag characters inside some flag
    emoji) are dropped. Any other missing character, control characters included, becomes
    PLACEHOLDER. Only the pictures use this, and the HTML keeps the original characters.
    """
    code_points = font_code_points()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if ord(char) in code_points and category != "Cc":
            kept.append(char)
        elif category not in ("Cf", "Mn", "Me"):
            kept.append(PLACEHOLDER)
    return "".join(kept)


def displayable_lines(text: str) -> str:
    """Apply displayable to each line of text, keeping the line breaks."""
    return "\n".join(displayable(line) for line in text.split("\n"))


def shorten(label: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """Cut a label to max_chars characters, ending it with an ellipsis when cut."""
    return label if len(label) <= max_chars else label[: max_chars - 1] + "\u2026"


def write_atomically(path, write) -> Path:
    """Call write(temporary_path), then move the file onto path so readers never see half.

    Creates missing parent folders. The temporary file sits in the same folder, so the
    final os.replace is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(temporary)
        os.chmod(temporary, 0o644)  # mkstemp creates the file readable by its owner only
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def check_png_path(path) -> None:
    """Raise unless path ends in .png, before any drawing work is done."""
    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"picture path {path} must end in .png; pictures are saved as PNG")


def save_png(figure: Figure, path, tight: bool) -> Path:
    """Save the figure as PNG at path, atomically; tight grows the image to fit all labels."""
    extra = {"bbox_inches": "tight", "pad_inches": 0.15} if tight else {}

    def write(temporary):
        figure.savefig(temporary, format="png", dpi=figure.dpi, facecolor="white", **extra)

    return write_atomically(path, write)


# ---- Heatmap: one row per class, one column per word -------------------------------------

def heatmap_figure(words, scores, class_names, gold=None, predicted=None, title=None):
    """Build the class-by-word heatmap figure; return (figure, axes, image)."""
    n_classes, n_words = scores.shape
    column_in = min(0.32, MAX_HEATMAP_WIDTH_IN / n_words)
    grid_size = (max(2.0, n_words * column_in), max(1.0, 0.5 * n_classes))
    label_size = min(9.0, 0.75 * column_in * 72)  # a rotated label must fit in its column
    figure = Figure(figsize=grid_size, dpi=DPI)
    FigureCanvasAgg(figure)

    # The cells fill the whole figure, so they keep their size whatever the labels. The
    # labels, title and colorbar lie outside, and saving with a tight bounding box grows
    # the image to include them.
    axes = figure.add_axes((0, 0, 1, 1))
    image = axes.imshow(scores, cmap=CMAP, vmin=0.0, vmax=1.0, aspect="auto",
                        interpolation="nearest")
    labels = [shorten(displayable(word)) for word in words]
    axes.set_xticks(range(n_words), labels, rotation=60, ha="right",
                    rotation_mode="anchor", fontsize=label_size)
    axes.set_yticks(range(n_classes), [displayable(name) for name in class_names])
    if predicted is not None:
        axes.get_yticklabels()[predicted].set_fontweight("bold")
    axes.tick_params(length=2)
    if gold is not None:
        mark_heatmap_gold(axes, gold)

    colorbar_axes = figure.add_axes((1 + 0.15 / grid_size[0], 0, 0.14 / grid_size[0], 1))
    colorbar = figure.colorbar(image, cax=colorbar_axes)
    colorbar.set_ticks([0.0, 0.5, 1.0], labels=["0", "0.5", "1"])
    colorbar.set_label("score", fontsize=9)
    axes.set_title(title or "", pad=14 if gold is not None else 6, fontsize=11)
    return figure, axes, image


def mark_heatmap_gold(axes, gold: np.ndarray) -> None:
    """Mark gold words: a triangle above the column for (N,), a bar in each cell for (C, N)."""
    halo = [withStroke(linewidth=4.5, foreground="white")]
    if gold.ndim == 1:
        columns = np.flatnonzero(gold)
        axes.plot(columns, np.full(len(columns), 1.0), linestyle="none", marker="v",
                  markersize=6, color=GOLD_COLOR, clip_on=False,
                  transform=axes.get_xaxis_transform(), path_effects=halo)
        for column in columns:
            axes.get_xticklabels()[column].set(color=GOLD_COLOR, fontweight="bold")
        handle = Line2D([], [], linestyle="none", marker="v", color=GOLD_COLOR)
    else:
        rows, columns = np.nonzero(gold)
        bottoms = rows + 0.36  # rows grow downwards in imshow, so + 0.5 is the lower edge
        segments = np.stack([np.stack([columns - 0.38, bottoms], 1),
                             np.stack([columns + 0.38, bottoms], 1)], 1)  # (K, 2, 2)
        axes.add_collection(LineCollection(segments, colors=GOLD_COLOR, linewidths=3,
                                           path_effects=halo))
        handle = Line2D([], [], color=GOLD_COLOR, linewidth=3)
    axes.legend([handle], ["gold rationale"], loc="upper left", frameon=False, fontsize=9,
                bbox_to_anchor=(1.0, -0.08), borderaxespad=0.0)


def plot_class_heatmap(words, scores, class_names, path, gold=None, predicted=None,
                       probability=None, title=None) -> Path:
    """Save a class-by-word heatmap of scores in [0, 1] as a PNG; return its path.

    For short texts (at most MAX_HEATMAP_WORDS words): one row per class, one column per
    word. The title names the predicted class and its probability. A gold (N,) mask is
    marked above the word columns, and a (C, N) mask in each cell.
    """
    words, class_names, scores, gold = check_inputs(words, scores, class_names, gold,
                                                    predicted, probability)
    check_png_path(path)
    if len(words) > MAX_HEATMAP_WORDS:
        raise ValueError(f"the heatmap shows at most {MAX_HEATMAP_WORDS} words but the text "
                         f"has {len(words)}; use plot_text_view or write_html for long texts")
    heading = "\n".join(displayable_lines(part) for part in (title, prediction_text(
        class_names, predicted, probability)) if part)
    with rc_context(RC_PARAMS):
        figure, _, _ = heatmap_figure(words, scores, class_names, gold, predicted, heading)
        return save_png(figure, path, tight=True)


# ---- Text view: the words as wrapped lines, each word shaded by its score ----------------

def measure_widths(labels, renderer, properties) -> dict[str, float]:
    """Return the drawn width in pixels of each distinct label."""
    widths = {}
    for label in set(labels):
        width, _, _ = renderer.get_text_width_height_descent(label, properties, ismath=False)
        widths[label] = width
    return widths


def split_long_label(label, renderer, properties, max_width) -> list[str]:
    """Break a label wider than max_width pixels into pieces that each fit on a line."""
    char_widths = measure_widths(label, renderer, properties)
    pieces, current, width = [], "", 0.0
    for char in label:
        if current and width + char_widths[char] > max_width:
            pieces.append(current)
            current, width = "", 0.0
        current += char
        width += char_widths[char]
    return pieces + [current]


def wrap_boxes(widths: np.ndarray, line_width: float, gap: float):
    """Place boxes greedily on lines line_width pixels wide; return each box's line and left x.

    A box wider than a line gets a line of its own.
    """
    lines, lefts = np.zeros(len(widths), dtype=int), np.zeros(len(widths))
    line, x = 0, 0.0
    for i, width in enumerate(widths):
        if x > 0 and x + width > line_width:
            line, x = line + 1, 0.0
        lines[i], lefts[i] = line, x
        x += width + gap
    return lines, lefts


def layout_text(words, renderer, properties, line_width, px):
    """Lay the words out as wrapped lines of word boxes.

    Returns (labels, owners, lines, lefts, widths) with one entry per drawn piece. A word
    wider than a line is split into several pieces. owners is the word index of each
    piece, and lefts and widths are the box's left edge and width in pixels.
    """
    widths = measure_widths([displayable(word) for word in words], renderer, properties)
    text_width = line_width - 2 * BOX_PAD * px
    labels, owners = [], []
    for i, word in enumerate(words):
        pieces = [displayable(word)]
        if widths[pieces[0]] > text_width:
            pieces = split_long_label(pieces[0], renderer, properties, text_width)
            widths.update(measure_widths(pieces, renderer, properties))
        labels += pieces
        owners += [i] * len(pieces)
    box_widths = np.array([widths[label] for label in labels]) + 2 * BOX_PAD * px
    lines, lefts = wrap_boxes(box_widths, line_width, WORD_GAP * px)
    return labels, np.array(owners), lines, lefts, box_widths


def draw_text_panel(axes, layout, scores, gold, top, header, properties, px) -> None:
    """Draw one class's panel, its header starting top pixels below the figure's top edge."""
    labels, owners, lines, lefts, widths = layout
    axes.text(MARGIN * px, top + 0.7 * HEADER_HEIGHT * px, header, fontsize=12,
              va="baseline")
    x0 = MARGIN * px + lefts
    x1 = x0 + widths
    y0 = top + (HEADER_HEIGHT + lines * LINE_HEIGHT) * px  # (P,) box tops
    y1 = y0 + BOX_HEIGHT * px
    boxes = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1),
                      np.stack([x1, y1], 1), np.stack([x0, y1], 1)], 1)  # (P, 4, 2)
    backgrounds = CMAP(scores[owners])  # (P, 4)
    axes.add_collection(PolyCollection(boxes, facecolors=backgrounds, edgecolors="none"))

    # Center the x-height of lower-case letters in the box.
    baselines = y0 + 0.5 * BOX_HEIGHT * px + 0.27 * TEXT_SIZE * px
    for label, x, y, color in zip(labels, x0 + BOX_PAD * px, baselines,
                                  text_colors(backgrounds)):
        axes.text(x, y, label, color=color, fontproperties=properties, va="baseline")
    if gold is not None and gold[owners].any():
        marked = gold[owners]
        underline = y1[marked] + 1.2 * UNDERLINE_WIDTH * px
        segments = np.stack([np.stack([x0[marked], underline], 1),
                             np.stack([x1[marked], underline], 1)], 1)  # (K, 2, 2)
        axes.add_collection(LineCollection(segments, colors=GOLD_COLOR,
                                           linewidths=UNDERLINE_WIDTH))


def legend_width(renderer, px, show_gold: bool) -> float:
    """Return the width in pixels that draw_legend needs."""
    properties = FontProperties(family=FONT_FAMILY, size=LEGEND_SIZE)
    labels = [LEGEND_LABEL, "gold rationale"] if show_gold else [LEGEND_LABEL]
    widths = measure_widths(labels, renderer, properties)
    return sum(widths.values()) + (COLORBAR_WIDTH + 10 + (60 if show_gold else 0)) * px


def draw_legend(figure, axes, top, px, show_gold: bool) -> None:
    """Draw the colorbar (and a gold underline sample) top pixels below the top edge."""
    left, width, height = MARGIN * px, COLORBAR_WIDTH * px, 8 * px
    figure_width, figure_height = figure.bbox.width, figure.bbox.height
    colorbar_axes = figure.add_axes((left / figure_width, 1 - (top + height) / figure_height,
                                     width / figure_width, height / figure_height))
    colorbar = figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), CMAP), cax=colorbar_axes,
                               orientation="horizontal")
    colorbar.set_ticks([0.0, 0.5, 1.0], labels=["0", "0.5", "1"])
    colorbar.ax.tick_params(labelsize=8, length=2)
    label = axes.text(left + width + 10 * px, top + height, LEGEND_LABEL,
                      fontsize=LEGEND_SIZE, va="baseline")
    if show_gold:
        label_width = measure_widths([LEGEND_LABEL], axes.figure.canvas.get_renderer(),
                                     label.get_fontproperties())[LEGEND_LABEL]
        gold_x = left + width + (10 + 24) * px + label_width
        axes.plot([gold_x, gold_x + 24 * px], [top + height + 3 * px] * 2, color=GOLD_COLOR,
                  linewidth=UNDERLINE_WIDTH)
        axes.text(gold_x + 30 * px, top + height, "gold rationale", fontsize=LEGEND_SIZE,
                  va="baseline")


def text_view_figure(words, scores, headers, gold, classes, heading, width_chars):
    """Build the text view figure, sized so that every line of every panel fits."""
    px = DPI / 72  # pixels per point
    figure = Figure(dpi=DPI)
    renderer = FigureCanvasAgg(figure).get_renderer()
    properties = FontProperties(family=FONT_FAMILY, size=TEXT_SIZE)
    sample_width = measure_widths([WIDTH_SAMPLE], renderer, properties)[WIDTH_SAMPLE]
    line_width = width_chars * sample_width / len(WIDTH_SAMPLE)
    layout = layout_text(words, renderer, properties, line_width, px)

    heading_height = (heading.count("\n") + 1) * 17 * px if heading else 0.0
    top_block = MARGIN * px + heading_height + 44 * px
    panel_height = (HEADER_HEIGHT + (layout[2].max() + 1) * LINE_HEIGHT + PANEL_GAP) * px
    content_width = max(line_width, legend_width(renderer, px, gold is not None))
    size = (content_width + 2 * MARGIN * px, top_block + len(classes) * panel_height)
    if max(size) >= MAX_IMAGE_PIXELS:
        raise ValueError(f"the text view would be {size[0]:.0f} x {size[1]:.0f} pixels, over "
                         f"the limit of {MAX_IMAGE_PIXELS}; show fewer classes, raise "
                         "width_chars or use write_html")
    figure.set_size_inches(size[0] / DPI, size[1] / DPI)

    # One axes covers the figure, in pixels measured from the top-left corner.
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.set_xlim(0, size[0])
    axes.set_ylim(size[1], 0)
    if heading:
        axes.text(MARGIN * px, MARGIN * px, heading, fontsize=12, va="top", linespacing=1.3)
    draw_legend(figure, axes, top_block - 32 * px, px, gold is not None)
    for panel, c in enumerate(classes):
        draw_text_panel(axes, layout, scores[c], None if gold is None else gold[c],
                        top_block + panel * panel_height, headers[c], properties, px)
    return figure


def plot_text_view(words, scores, class_names, path, gold=None, classes=None, predicted=None,
                   probability=None, title=None, width_chars: int = 100) -> Path:
    """Save the words as wrapped text with one panel per class as a PNG; return its path.

    Each word's background is shaded by its score for the panel's class, and gold words are
    underlined: an (N,) mask in every panel, a (C, N) mask per class. classes picks the
    panels (class indices, default all). A line has room for about width_chars characters of
    typical English, and the figure grows taller with the number of lines.
    """
    words, class_names, scores, gold = check_inputs(words, scores, class_names, gold,
                                                    predicted, probability)
    classes = check_classes(classes, len(class_names))
    check_png_path(path)
    if operator.index(width_chars) < 10:
        raise ValueError(f"width_chars is {width_chars}; pass at least 10 characters per line")
    summary = summary_text(class_names, predicted, probability, len(words))
    heading = "\n".join(displayable_lines(part) for part in (title, summary) if part)
    headers = [displayable(header) for header in panel_headers(class_names, predicted,
                                                                 probability)]
    with rc_context(RC_PARAMS):
        figure = text_view_figure(words, scores, headers, gold_rows(gold, len(class_names)),
                                  classes, heading, width_chars)
        return save_png(figure, path, tight=False)


# ---- HTML export of the text view --------------------------------------------------------

HTML_LEVELS = 100  # scores are rounded to hundredths to pick a background color
HTML_STYLE = """
body { font-family: "DejaVu Sans", Verdana, sans-serif; max-width: 60em; margin: 2em auto;
       padding: 0 1em; color: #111; background: #fff; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
.text { line-height: 2.1; overflow-wrap: anywhere; }
.text span { padding: 0.1em 0.15em; border-radius: 0.2em; }
.gold { text-decoration-line: underline; text-decoration-color: GOLD;
        text-decoration-thickness: 0.15em; text-underline-offset: 0.35em; }
.legend { display: flex; align-items: center; gap: 0.6em; font-size: 0.9em; }
.bar { width: 12em; height: 0.8em; background: linear-gradient(to right, STOPS); }
"""


def html_level_styles() -> str:
    """Return one CSS rule per score level, with the level's background and text color."""
    levels = np.linspace(0.0, 1.0, HTML_LEVELS + 1)
    backgrounds = CMAP(levels)
    rules = [f".s{i} {{ background: {to_hex(bg)}; color: {fg}; }}"
             for i, (bg, fg) in enumerate(zip(backgrounds, text_colors(backgrounds)))]
    return "\n".join(rules)


def html_block(words, scores, gold, header) -> str:
    """Return one class's section: a header and every word as a shaded, escaped span."""
    levels = np.rint(scores * HTML_LEVELS).astype(int)
    spans = []
    for i, word in enumerate(words):
        gold_class = " gold" if gold is not None and gold[i] else ""
        spans.append(f'<span class="s{levels[i]}{gold_class}" title="{scores[i]:.2f}">'
                     f"{html.escape(word, quote=True)}</span>")
    return (f"<section>\n<h2>{html.escape(header)}</h2>\n"
            f'<p class="text">{" ".join(spans)}</p>\n</section>')


def render_html(words, scores, class_names, gold=None, classes=None, predicted=None,
                probability=None, title=None) -> str:
    """Return a standalone HTML page of the text view: one shaded block per class.

    Every word is escaped, so a token like <script> shows as text. The page has inline CSS
    only: no scripts, no fonts, images or style sheets from elsewhere.
    """
    words, class_names, scores, gold = check_inputs(words, scores, class_names, gold,
                                                    predicted, probability)
    classes = check_classes(classes, len(class_names))
    gold = gold_rows(gold, len(class_names))
    page_title = title or "word relevance per class"
    stops = ", ".join(to_hex(color) for color in CMAP(np.linspace(0.0, 1.0, 11)))
    style = HTML_STYLE.replace("GOLD", GOLD_COLOR).replace("STOPS", stops)
    legend = ('<div class="legend"><span>0</span><span class="bar"></span><span>1</span>'
              "<span>word score for the block's class</span>"
              + ('<span class="gold">gold rationale</span>' if gold is not None else "")
              + "</div>")
    headers = panel_headers(class_names, predicted, probability)
    blocks = [html_block(words, scores[c], None if gold is None else gold[c], headers[c])
              for c in classes]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(page_title)}</title>",
        f"<style>{style}{html_level_styles()}\n</style>", "</head>", "<body>",
        f"<h1>{html.escape(page_title)}</h1>",
        f"<p>{html.escape(summary_text(class_names, predicted, probability, len(words)))}</p>",
        legend, *blocks, "</body>", "</html>", ""])


def write_html(path, words, scores, class_names, gold=None, classes=None, predicted=None,
               probability=None, title=None) -> Path:
    """Write render_html's page to path as UTF-8, atomically; return the path."""
    page = render_html(words, scores, class_names, gold, classes, predicted, probability, title)
    # Lone surrogates cannot be encoded as UTF-8; they become character references.
    data = page.encode("utf-8", errors="xmlcharrefreplace")
    return write_atomically(path, lambda temporary: Path(temporary).write_bytes(data))


# ---- Spans for printing ------------------------------------------------------------------

def top_spans(words, scores, k: int = 3, threshold: float = 0.5):
    """Return the k best spans of consecutive words scoring at least threshold.

    A span is a maximal run of such words, returned as (mean score, start, end exclusive,
    text). Spans rank by mean score, then by length, then by position.
    """
    words = check_words(words)
    if np.ndim(scores) != 1:
        raise ValueError(f"scores has shape {np.shape(scores)} but words has shape "
                         f"({len(words)},); top_spans takes one class's scores")
    scores = check_scores(scores, len(words))[0]
    if operator.index(k) < 0:
        raise ValueError(f"k is {k}; pass the number of spans to return, 0 or more")
    above = np.concatenate([[False], scores >= threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(int)))  # run starts and ends, alternating
    spans = [(float(scores[start:end].mean()), int(start), int(end), " ".join(words[start:end]))
             for start, end in zip(edges[0::2], edges[1::2])]
    spans.sort(key=lambda span: (-span[0], span[1] - span[2], span[1]))
    return spans[:k]


# ---- Command line: explain a new text with a trained checkpoint --------------------------

SHORT_TEXT_WORDS = 60  # up to this many words the PNG is the class heatmap, beyond it the text view


def read_text(text, file) -> list[str]:
    """Return the words (whitespace tokens) of --text or --file; raise ValueError when empty."""
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise ValueError(f"text file {path} not found; pass an existing file to --file or use --text")
        text = path.read_text(encoding="utf-8", errors="replace")
    words = text.split()
    if not words:
        source = f"file {file}" if file is not None else "--text"
        raise ValueError(f"the text from {source} is empty; pass a text with at least one word")
    return words


def explain_words(model, tokenizer, words, max_len, overlap):
    """Return (probabilities (C,), scores (C, N)) of one document, windows merged."""
    import evaluate
    import subwords
    prediction = evaluate.predict_documents(model, [subwords.encode_words(tokenizer, words)], max_len, overlap)[0]
    return prediction.probabilities, np.clip(prediction.word_scores, 0.0, 1.0)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="Explain a text with a trained checkpoint: print the predicted class and each "
                    "class's highest-scoring spans, and draw the per-class word relevance.")
    parser.add_argument("checkpoint", help="best.pt or last.pt written by train.py")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text to explain")
    source.add_argument("--file", help="a UTF-8 text file to explain")
    parser.add_argument("--out", default="explanation.png", help="PNG to write (default explanation.png)")
    parser.add_argument("--html", nargs="?", const="", metavar="PATH",
                        help="also write the HTML text view (default: the PNG path with .html)")
    parser.add_argument("--spans", type=int, default=3, help="highest-scoring spans printed per class")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    args = parser.parse_args(argv)

    import train
    try:
        words = read_text(args.text, args.file)
        check_png_path(args.out)
        model, tokenizer, checkpoint = train.load_checkpoint(args.checkpoint, train.pick_device(args.device))
    except ValueError as error:
        raise SystemExit(f"error: {error}")
    config, classes = checkpoint["config"], checkpoint["classes"]
    probabilities, scores = explain_words(model, tokenizer, words, config["max_len"], config["overlap"])
    predicted = int(np.argmax(probabilities))
    print(f"predicted {classes[predicted]} ("
          + ", ".join(f"{name} {p:.3f}" for name, p in zip(classes, probabilities)) + f"), {len(words)} words")
    for c, name in enumerate(classes):
        spans = top_spans(words, scores[c], k=args.spans)
        found = "; ".join(f'"{text}" ({mean:.2f})' for mean, _, _, text in spans) or "no span scores 0.5 or more"
        print(f"  {name}: {found}")
    common = dict(predicted=predicted, probability=float(probabilities[predicted]))
    if len(words) <= SHORT_TEXT_WORDS:
        plot_class_heatmap(words, scores, classes, args.out, **common)
    else:
        plot_text_view(words, scores, classes, args.out, **common)
    print(f"wrote {args.out}")
    if args.html is not None:
        html_path = args.html or str(Path(args.out).with_suffix(".html"))
        write_html(html_path, words, scores, classes, **common)
        print(f"wrote {html_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
