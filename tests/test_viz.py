"""Tests for viz.py: the heatmap, the text view, the HTML export and top_spans.

Pictures are read back from the saved PNG files and compared with the colormap; HTML pages
are parsed with the standard library's parser and compared with the input words.
"""

import html
import os
import subprocess
import sys
import time
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.image import imread

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import viz  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES_3 = ["NEG", "NEU", "POS"]
SCOTLAND_FLAG = "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"
ODD_WORDS = ["café", "naïve", "Zoë", "Ångström", "🍕", "pizza🤖!", "👨\u200d👩\u200d👧", "❤️",
             SCOTLAND_FLAG, "中文", "x" * 80, "supercalifragilistic" * 4, "\x07bell", "$5",
             "and", "$10", "$\\frac{1}$"]  # the last one is invalid math text


def read_png(path) -> np.ndarray:
    """Check the PNG signature and return the image as uint8 RGBA, shape (H, W, 4)."""
    assert Path(path).read_bytes()[:8] == PNG_MAGIC
    image = imread(path)
    return np.rint(image * 255).astype(int)


def count_color(image: np.ndarray, rgba, tolerance: int = 2) -> int:
    """Return how many pixels have the given RGBA color (floats in [0, 1])."""
    target = np.rint(np.asarray(rgba)[:3] * 255).astype(int)
    return int((np.abs(image[..., :3] - target).max(axis=-1) <= tolerance).sum())


def long_document(n_words=2000, n_classes=2, seed=0):
    """Return words, smooth (C, N) scores in [0, 1] and an (N,) gold mask."""
    rng = np.random.default_rng(seed)
    vocabulary = ("the film was a plot and its actors but not good bad very it is of to in "
                  "that with this character story acting director however , . excellent "
                  "terrible boring surprisingly").split()
    words = [str(word) for word in rng.choice(vocabulary, n_words)]
    raw = rng.random((n_classes, n_words))
    kernel = np.ones(9) / 9
    smooth = np.stack([np.convolve(row, kernel)[4:4 + n_words] for row in raw])  # (C, N)
    scores = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return words, scores, scores[0] > 0.7


class SpanCollector(HTMLParser):
    """Collect (class attribute, text) of every span inside each <section>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self.current = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.sections.append([])
        elif tag == "span" and self.sections:
            self.current = [dict(attrs).get("class", ""), ""]

    def handle_data(self, data):
        if self.current is not None:
            self.current[1] += data

    def handle_endtag(self, tag):
        if tag == "span" and self.current is not None:
            self.sections[-1].append(tuple(self.current))
            self.current = None


def parse_blocks(page: str):
    """Return, for each class block of the page, its list of (class attribute, word)."""
    parser = SpanCollector()
    parser.feed(page)
    return parser.sections


# ---- One word, three classes -------------------------------------------------------------

def test_heatmap_one_word(tmp_path):
    path = viz.plot_class_heatmap(["great"], np.array([[0.2], [0.9]]), ["NEG", "POS"],
                                  tmp_path / "one.png", predicted=1, probability=0.9)
    image = read_png(path)
    assert 150 <= image.shape[1] <= 1000
    assert 100 <= image.shape[0] <= 800


def test_text_view_one_word(tmp_path):
    path = viz.plot_text_view(["great"], np.array([[0.2], [0.9]]), ["NEG", "POS"],
                              tmp_path / "one.png", gold=np.array([True]))
    image = read_png(path)
    assert 400 <= image.shape[1] <= 1200
    assert 150 <= image.shape[0] <= 600


def test_html_one_word(tmp_path):
    path = viz.write_html(tmp_path / "one.html", ["great"], np.array([[0.2], [0.9]]),
                          ["NEG", "POS"])
    page = path.read_text(encoding="utf-8")
    blocks = parse_blocks(page)
    assert [[word for _, word in block] for block in blocks] == [["great"], ["great"]]
    assert "<p>1 word</p>" in page


def test_heatmap_three_classes(tmp_path):
    words, scores, gold = long_document(12, n_classes=3)
    class_gold = np.random.default_rng(1).random((3, 12)) > 0.6
    for name, mask in [("none", None), ("words", gold), ("cells", class_gold)]:
        path = viz.plot_class_heatmap(words, scores, CLASSES_3, tmp_path / f"{name}.png",
                                      gold=mask, predicted=2, probability=0.71, title="doc 7")
        image = read_png(path)
        assert 500 <= image.shape[1] <= 1500
        assert 200 <= image.shape[0] <= 800


def test_heatmap_marks_gold_words():
    words, scores, gold = long_document(10, n_classes=3)
    gold = np.zeros(10, dtype=bool)
    gold[[2, 3, 7]] = True
    figure, axes, _ = viz.heatmap_figure(words, scores, CLASSES_3, gold=gold, predicted=1)
    colors = [label.get_color() for label in axes.get_xticklabels()]
    assert [color == viz.GOLD_COLOR for color in colors] == list(gold)
    assert axes.get_yticklabels()[1].get_fontweight() == "bold"
    assert axes.get_yticklabels()[0].get_fontweight() != "bold"


def test_heatmap_cells_match_colormap():
    scores = np.array([[0.0, 0.1, 0.35, 0.5], [0.62, 0.8, 0.93, 1.0], [0.25, 0.45, 0.7, 0.05]])
    words = ["a", "b", "c", "d"]
    figure, axes, image = viz.heatmap_figure(words, scores, CLASSES_3)
    np.testing.assert_array_equal(image.get_array(), scores)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba()).astype(int)  # (H, W, 4)
    height = pixels.shape[0]
    for row in range(3):
        for column in range(4):
            x, y = axes.transData.transform((column, row))
            pixel = pixels[int(height - y), int(x), :3]
            expected = np.rint(np.array(viz.CMAP(scores[row, column])[:3]) * 255)
            assert np.abs(pixel - expected).max() <= 1, (row, column)
            # The colormap is the lighter 85 % of reversed magma, up to one lookup step.
            magma = colormaps["magma_r"](0.85 * scores[row, column])
            magma = np.rint(np.array(magma[:3]) * 255)
            assert np.abs(pixel - magma).max() <= 6, (row, column)


def test_heatmap_png_shows_cell_colors(tmp_path):
    scores = np.array([[0.1, 0.5, 0.9]])
    path = viz.plot_class_heatmap(["low", "mid", "high"], scores, ["POS"], tmp_path / "h.png")
    image = read_png(path)
    for score in scores[0]:
        assert count_color(image, viz.CMAP(score)) > 3000, score
    # A score no cell has appears only as a thin band of the colorbar.
    assert count_color(image, viz.CMAP(0.3)) < 300


def test_colormap_lightness_decreases():
    rgb = viz.CMAP(np.linspace(0, 1, 11))[:, :3]
    luminance = rgb @ np.array([0.2126, 0.7152, 0.0722])
    assert (np.diff(luminance) < 0).all()


def test_text_colors_choose_contrast():
    backgrounds = np.array([[0, 0, 0, 1], [1, 1, 1, 1], [1, 1, 0, 1], [0, 0, 1, 1],
                            [0x77 / 255, 0x77 / 255, 0x77 / 255, 1]])
    # #777777 has luminance 0.184: contrast 4.68 with black, 4.48 with white.
    expected = [viz.LIGHT_TEXT, viz.DARK_TEXT, viz.DARK_TEXT, viz.LIGHT_TEXT, viz.DARK_TEXT]
    assert list(viz.text_colors(backgrounds)) == expected


def test_text_view_three_classes(tmp_path):
    words, scores, _ = long_document(40, n_classes=3)
    class_gold = scores > 0.8
    every = read_png(viz.plot_text_view(words, scores, CLASSES_3, tmp_path / "all.png",
                                        gold=class_gold, predicted=0, probability=0.55))
    one = read_png(viz.plot_text_view(words, scores, CLASSES_3, tmp_path / "one.png",
                                      classes=[2], title="only POS"))
    assert one.shape[1] == every.shape[1]
    assert one.shape[0] < every.shape[0]
    with pytest.raises(ValueError, match="class index 5"):
        viz.plot_text_view(words, scores, CLASSES_3, tmp_path / "bad.png", classes=[5])


def test_text_view_shades_and_underlines(tmp_path):
    scores = np.array([[0.0], [1.0]])
    plain = read_png(viz.plot_text_view(["wonderful"], scores, ["NEG", "POS"],
                                        tmp_path / "plain.png"))
    marked = read_png(viz.plot_text_view(["wonderful"], scores, ["NEG", "POS"],
                                         tmp_path / "gold.png", gold=np.array([True])))
    # The word box is about 60 x 19 pixels; the colorbar has only a sliver of each end color.
    for score in (0.0, 1.0):
        assert count_color(plain, viz.CMAP(score)) > 300, score
    gold_rgba = np.array([0x00, 0x77, 0xB6, 255]) / 255
    assert count_color(plain, gold_rgba) == 0
    assert count_color(marked, gold_rgba) > 100  # two underlines and the legend sample


# ---- Long documents ----------------------------------------------------------------------

def test_heatmap_rejects_long_text(tmp_path):
    words, scores, gold = long_document(2000)
    with pytest.raises(ValueError, match="plot_text_view"):
        viz.plot_class_heatmap(words, scores, ["NEG", "POS"], tmp_path / "h.png", gold=gold)
    assert not (tmp_path / "h.png").exists()


def test_heatmap_width_grows_then_caps(tmp_path):
    widths = []
    for n_words in (5, 60, viz.MAX_HEATMAP_WORDS):
        words, scores, _ = long_document(n_words)
        path = viz.plot_class_heatmap(words, scores, ["NEG", "POS"],
                                      tmp_path / f"{n_words}.png")
        widths.append(read_png(path).shape[1])
    assert widths[0] < widths[1] < widths[2]
    assert widths[2] <= (viz.MAX_HEATMAP_WIDTH_IN + 3) * viz.DPI


def test_text_view_long_document(tmp_path):
    words, scores, gold = long_document(2000)
    start = time.perf_counter()
    path = viz.plot_text_view(words, scores, ["NEG", "POS"], tmp_path / "long.png",
                              gold=gold, predicted=0, probability=0.93, title="negR_000.txt")
    seconds = time.perf_counter() - start
    image = read_png(path)
    assert 600 <= image.shape[1] <= 1200
    assert 4000 <= image.shape[0] < viz.MAX_IMAGE_PIXELS  # about 110 lines per panel
    assert path.stat().st_size < 5_000_000
    assert seconds < 20, f"2,000-word text view took {seconds:.1f} s"


def test_text_view_rejects_oversized_image(tmp_path):
    words, scores, _ = long_document(20_000, n_classes=4)
    with pytest.raises(ValueError, match="write_html"):
        viz.plot_text_view(words, scores, ["A", "B", "C", "D"], tmp_path / "huge.png")


def test_html_long_document(tmp_path):
    words, scores, gold = long_document(2000)
    path = viz.write_html(tmp_path / "long.html", words, scores, ["NEG", "POS"], gold=gold)
    blocks = parse_blocks(path.read_text(encoding="utf-8"))
    assert len(blocks) == 2
    for c, block in enumerate(blocks):
        assert [word for _, word in block] == words
        levels = [int(attribute.split()[0][1:]) for attribute, _ in block]
        assert levels == [round(100 * score) for score in scores[c]]
        assert ["gold" in attribute.split() for attribute, _ in block] == list(gold)


def test_layout_splits_words_longer_than_line():
    figure = Figure(dpi=viz.DPI)
    renderer = FigureCanvasAgg(figure).get_renderer()
    properties = FontProperties(family=viz.FONT_FAMILY, size=viz.TEXT_SIZE)
    words = ["short", "y" * 400, "end"]
    line_width = 200.0
    px = viz.DPI / 72
    labels, owners, lines, lefts, widths = viz.layout_text(words, renderer, properties,
                                                           line_width, px)
    assert "".join(label for label, owner in zip(labels, owners) if owner == 1) == words[1]
    assert (lefts + widths <= line_width + 1e-9).all()
    assert labels[0] == "short"
    assert labels[-1] == "end"
    assert (np.diff(lines) >= 0).all()


def test_wrap_boxes_hand_cases():
    lines, lefts = viz.wrap_boxes(np.array([3.0, 3.0, 3.0]), line_width=7.0, gap=1.0)
    assert list(lines) == [0, 0, 1]
    assert list(lefts) == [0.0, 4.0, 0.0]
    lines, lefts = viz.wrap_boxes(np.array([2.0, 10.0, 2.0]), line_width=5.0, gap=1.0)
    assert list(lines) == [0, 1, 2]
    assert list(lefts) == [0.0, 0.0, 0.0]
    lines, _ = viz.wrap_boxes(np.array([10.0, 2.0]), line_width=5.0, gap=1.0)
    assert list(lines) == [0, 1]  # a wide first box does not leave an empty line


# ---- Accents, emoji, long words and missing glyphs ---------------------------------------

def test_raw_emoji_warns_about_missing_glyph():
    # Guards the test below: drawing an emoji that DejaVu Sans lacks does warn.
    figure = Figure()
    FigureCanvasAgg(figure)
    figure.text(0.1, 0.5, "pizza \U0001F355", family=viz.FONT_FAMILY)
    with pytest.warns(UserWarning, match="missing from font"):
        figure.canvas.draw()


def test_displayable_replaces_missing_glyphs():
    assert viz.displayable("café naïve Ångström") == "café naïve Ångström"
    assert viz.displayable("\U0001F355") == viz.PLACEHOLDER
    # DejaVu Sans has the zero-width joiner, so only the three people become squares.
    assert viz.displayable("👨\u200d👩\u200d👧").replace("\u200d", "") == viz.PLACEHOLDER * 3
    assert viz.displayable("a\x07b") == f"a{viz.PLACEHOLDER}b"
    # A black flag, then invisible tag characters that the font lacks.
    assert viz.displayable(SCOTLAND_FLAG) == viz.PLACEHOLDER


def test_odd_characters_draw_without_warnings(tmp_path):
    rng = np.random.default_rng(3)
    scores = rng.random((2, len(ODD_WORDS)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        heatmap = viz.plot_class_heatmap(ODD_WORDS, scores, ["NÉG", "POS 🍕"],
                                         tmp_path / "h.png", predicted=1, probability=0.6,
                                         title="naïve 🍕 review")
        text_view = viz.plot_text_view(ODD_WORDS, scores, ["NÉG", "POS 🍕"],
                                       tmp_path / "t.png", width_chars=40,
                                       title="naïve 🍕 review")
        page = viz.write_html(tmp_path / "p.html", ODD_WORDS, scores, ["NÉG", "POS 🍕"])
    assert read_png(heatmap).shape[1] < 1500
    assert read_png(text_view).shape[1] < 1000
    text = page.read_text(encoding="utf-8")
    for word in ("café", "🍕", "pizza🤖!", "👨\u200d👩\u200d👧", "中文", "x" * 80):
        assert word in text, word


def test_html_encodes_lone_surrogate(tmp_path):
    # A lone surrogate has no UTF-8 form; the file stays valid UTF-8.
    path = viz.write_html(tmp_path / "s.html", ["a\ud800b"], np.ones((1, 1)), ["POS"])
    assert ">a&#55296;b<" in path.read_bytes().decode("utf-8")


# ---- HTML --------------------------------------------------------------------------------

def test_html_escapes_script_amp_quotes():
    words = ['<script>alert("x")</script>', "&", '"', "'", "a&b", "<b>bold</b>"]
    scores = np.full((2, len(words)), 0.5)
    page = viz.render_html(words, scores, ["<i>NEG</i>", "POS"], title="<script>t</script>")
    assert "<script" not in page.lower()
    assert "<b>" not in page
    assert "<i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;script&gt;t&lt;/script&gt;" in page
    assert ">&amp;<" in page
    assert ">a&amp;b<" in page
    assert ">&quot;<" in page
    assert ">&#x27;<" in page
    assert "&lt;i&gt;NEG&lt;/i&gt;" in page
    blocks = parse_blocks(page)
    assert [word for _, word in blocks[0]] == words


def test_html_has_no_external_resources():
    words, scores, gold = long_document(30)
    page = viz.render_html(words, scores, ["NEG", "POS"], gold=gold, predicted=1,
                           probability=0.8)
    for forbidden in ("<script", "<link", "<img", "src=", "url(", "@import", "http:",
                      "https:", "@font-face"):
        assert forbidden not in page.lower(), forbidden
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert "class POS (predicted, p = 0.80)" in page
    assert "gold rationale" in page


def test_html_gold_per_class():
    words = ["a", "b", "c"]
    class_gold = np.array([[True, False, False], [False, False, True]])
    page = viz.render_html(words, np.full((2, 3), 0.4), ["NEG", "POS"], gold=class_gold)
    blocks = parse_blocks(page)
    for c in range(2):
        marked = ["gold" in attribute.split() for attribute, _ in blocks[c]]
        assert marked == list(class_gold[c])


# ---- Input checks ------------------------------------------------------------------------

def draw_all(tmp_path, words, scores, class_names, **options):
    """Call each picture and the HTML export with the same arguments."""
    viz.plot_class_heatmap(words, scores, class_names, tmp_path / "h.png", **options)
    viz.plot_text_view(words, scores, class_names, tmp_path / "t.png", **options)
    viz.render_html(words, scores, class_names, **options)


@pytest.mark.parametrize("function", [viz.plot_class_heatmap, viz.plot_text_view,
                                      viz.render_html])
def test_empty_text_raises(tmp_path, function):
    arguments = ([], np.zeros((2, 0)), ["NEG", "POS"])
    if function is not viz.render_html:
        arguments += (tmp_path / "x.png",)
    with pytest.raises(ValueError, match="text is empty"):
        function(*arguments)


def test_shape_mismatch_names_both_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\(2, 5\).*\(6,\)"):
        viz.plot_class_heatmap(list("abcdef"), np.zeros((2, 5)), ["NEG", "POS"],
                               tmp_path / "h.png")
    with pytest.raises(ValueError, match=r"\(2, 6\).*\(3, 6\)"):
        viz.render_html(list("abcdef"), np.zeros((2, 6)), CLASSES_3)


@pytest.mark.parametrize("bad_scores, message", [
    (np.array([[0.2, 1.5]]), r"\[0, 1\]"),
    (np.array([[-0.1, 0.5]]), r"\[0, 1\]"),
    (np.array([[np.nan, 0.5]]), "NaN"),
])
def test_invalid_scores_raise(tmp_path, bad_scores, message):
    with pytest.raises(ValueError, match=message):
        draw_all(tmp_path, ["a", "b"], bad_scores, ["POS"])


@pytest.mark.parametrize("options, message", [
    ({"gold": np.zeros(3, dtype=bool)}, "gold has shape"),
    ({"gold": np.array([0, 2])}, "boolean"),
    ({"predicted": 4}, "predicted class 4"),
    ({"probability": 0.5}, "without the predicted class"),
    ({"predicted": 0, "probability": 1.5}, "probability 1.5"),
])
def test_invalid_options_raise(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        draw_all(tmp_path, ["a", "b"], np.full((2, 2), 0.5), ["NEG", "POS"], **options)


def test_other_invalid_inputs_raise(tmp_path):
    with pytest.raises(TypeError, match="text.split"):
        viz.render_html("a plain string", np.zeros((1, 14)), ["POS"])
    with pytest.raises(TypeError, match=r"words\[1\]"):
        viz.render_html(["a", 3], np.zeros((1, 2)), ["POS"])
    with pytest.raises(ValueError, match=r"\.png"):
        viz.plot_text_view(["a"], np.zeros((1, 1)), ["POS"], tmp_path / "t.jpg")
    with pytest.raises(ValueError, match="width_chars"):
        viz.plot_text_view(["a"], np.zeros((1, 1)), ["POS"], tmp_path / "t.png", width_chars=3)
    assert list(tmp_path.iterdir()) == []


def test_scores_rounding_error_is_clipped():
    scores = viz.check_scores(np.array([[-1e-9, 1 + 1e-9]]), 2, 1)
    assert scores.min() == 0.0
    assert scores.max() == 1.0


# ---- Files and headless use --------------------------------------------------------------

def test_writes_leave_no_temporary_files(tmp_path):
    viz.plot_text_view(["a", "b"], np.full((1, 2), 0.5), ["POS"], tmp_path / "sub" / "t.png")
    viz.write_html(tmp_path / "sub" / "t.html", ["a", "b"], np.full((1, 2), 0.5), ["POS"])
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["t.html", "t.png"]

    def fail(temporary):
        Path(temporary).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        viz.write_atomically(tmp_path / "sub" / "t.png", fail)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["t.html", "t.png"]
    assert (tmp_path / "sub" / "t.png").read_bytes()[:8] == PNG_MAGIC


def test_runs_without_display(tmp_path):
    target = str(tmp_path / "x.png")
    script = ("import sys, numpy as np, viz\n"
              f"viz.plot_text_view(['ok'], np.ones((1, 1)), ['POS'], {target!r})\n"
              "print('pyplot' if 'matplotlib.pyplot' in sys.modules else 'no pyplot')\n")
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    result = subprocess.run([sys.executable, "-W", "error", "-c", script],
                            cwd=Path(viz.__file__).parent, env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no pyplot"
    assert (tmp_path / "x.png").read_bytes()[:8] == PNG_MAGIC


# ---- top_spans ---------------------------------------------------------------------------

def test_top_spans_hand_case():
    words = list("abcdefgh")
    scores = np.array([0.9, 0.8, 0.1, 0.6, 0.2, 1.0, 0.95, 0.7])
    spans = viz.top_spans(words, scores, k=3)
    assert [span[1:] for span in spans] == [(5, 8, "f g h"), (0, 2, "a b"), (3, 4, "d")]
    np.testing.assert_allclose([span[0] for span in spans], [2.65 / 3, 0.85, 0.6])
    assert viz.top_spans(words, scores, k=0) == []
    assert viz.top_spans(words, scores, k=3, threshold=0.99) == [(1.0, 5, 6, "f")]
    assert viz.top_spans(words, np.zeros(8)) == []


def brute_force_spans(scores, threshold):
    """Return each maximal run of scores >= threshold as (start, end), checking all pairs."""
    n = len(scores)
    runs = []
    for start in range(n):
        for end in range(start + 1, n + 1):
            inside = all(scores[i] >= threshold for i in range(start, end))
            left_closed = start == 0 or scores[start - 1] < threshold
            right_closed = end == n or scores[end] < threshold
            if inside and left_closed and right_closed:
                runs.append((start, end))
    return runs


def test_top_spans_match_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 25))
        scores = rng.random(n)
        words = [f"w{i}" for i in range(n)]
        runs = brute_force_spans(scores, 0.5)
        spans = viz.top_spans(words, scores, k=len(runs) + 2)
        assert sorted(span[1:3] for span in spans) == sorted(runs)
        means = [span[0] for span in spans]
        assert means == sorted(means, reverse=True)
        for mean, start, end, text in spans:
            assert mean == pytest.approx(scores[start:end].mean())
            assert text == " ".join(words[start:end])


def test_top_spans_rejects_class_matrix():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3,\)"):
        viz.top_spans(["a", "b", "c"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="text is empty"):
        viz.top_spans([], np.zeros(0))
