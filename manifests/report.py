"""`strata audit --html FILE`: the audit as one self-contained page. Inline CSS, charts
drawn here as inline SVG; no script, no font, nothing fetched, so the page opens offline
and can be mailed or archived as it is.
"""

from __future__ import annotations

import math
from html import escape

from strata.manifests.tables import count, evenly, percent, size

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
WIDTH = 760
RIGHT = 40  # right margin: room for the last axis label
LABEL_WIDTH = 180  # left margin of horizontal bar charts, for category names
MAX_LINE_POINTS = 400

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 2em auto;
       max-width: 1000px; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; }
figcaption { color: #555; font-size: 0.9em; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", sans-serif; fill: #333; }
svg .axis { stroke: #999; stroke-width: 1; }
svg .grid { stroke: #eee; stroke-width: 1; }
"""


# --------------------------------------------------------------------------- pages


def build_page(audit: dict) -> str:
    categories = audit["categories"]
    names = list(categories)
    mixture_rows = [
        [name, percent(c["target_share"]), percent(c["realized_share"]), count(c["docs"]), f"{c['bytes'] / 1e6:,.2f}",
         count(c["tokens"]), count(c["val_tokens"]), f"{c['tokens_per_byte']:.3f}", count(c["shards"])]
        for name, c in categories.items()
    ]
    source_keys = ("records", "kept", "quarantined", "dropped", "exact_duplicates", "near_duplicates")
    stages = audit["stages"]
    body = [
        f"<h1>strata audit: build {escape(audit['build'])}</h1>",
        f"<p class=meta>manifest schema {audit['schema_version']}, strata {escape(str(audit['strata_version']))}, "
        f"config {escape(str(audit['config_hash'])[:12])}</p>",
        "<p>" + f"{count(audit['records'])} input records: "
        + ", ".join(f"{escape(fate)} {count(n)}" for fate, n in audit["fates"].items()) + "</p>",
        "<h2>Mixture</h2>",
        figure(
            hbars(names, {"target share": [categories[n]["target_share"] for n in names],
                          "realized share of train tokens": [categories[n]["realized_share"] for n in names]}, percent),
            "Each category's target share of training tokens (the manifest's mixture) and its share of the train "
            "tokens in the shards.",
        ),
        table(["category", "target", "realized", "docs", "MB", "train tokens", "val tokens", "tokens/byte", "shards"],
              mixture_rows),
        "<h2>Sources</h2>",
        table(["source", "records", "kept", "quarantined", "dropped", "exact duplicates", "near duplicates"],
              [[name, *(count(s[k]) for k in source_keys)] for name, s in audit["sources"].items()]),
        "<h2>Removed records by stage</h2>",
        figure(hbars(list(stages), {"records removed": [s["removed"] for s in stages.values()]}, count),
               "Records each stage removed, over all sources, in pipeline order."),
        table(["stage", "reason", "records"],
              [[stage, reason, count(n)] for stage, s in stages.items() for reason, n in s["reasons"].items()], left=2),
        "<h2>Languages</h2>",
        table(["language", "records identified", "kept"],
              [[lang, count(v["docs"]), count(v["kept"])] for lang, v in audit["languages"].items()]),
        "<h2>Decontamination</h2>",
        table(["eval set", "category", "documents touched", "removed", "characters removed"],
              [[name, category, count(c["documents"]), count(c["removed"]), count(c["chars_removed"])]
               for name, by_category in audit["decontamination"].items() for category, c in by_category.items()],
              left=2),
        "<h2>PII redacted</h2>",
        table(["kind", "kept documents", "matches replaced"],
              [[kind, count(v["documents"]), count(v["matches"])] for kind, v in audit["pii"].items()]),
        "<h2>Document lengths</h2>",
        figure(histogram_svg(audit["lengths"]["bytes"], size),
               "Kept documents by UTF-8 bytes of text, log-spaced bins, stacked by category."),
        figure(histogram_svg(audit["lengths"]["tokens"], _plain),
               "Kept documents by tokens (EOS excluded), log-spaced bins, stacked by category."),
        "<h2>Tokenizer fertility</h2>",
        figure(hbars(names, {"tokens per byte": [categories[n]["tokens_per_byte"] for n in names]}, "{:.3f}".format),
               "Text tokens per UTF-8 byte of each category's kept documents (train and val, EOS excluded)."),
    ]
    return page(f"strata audit: {audit['build']}", body)


def run_page(audit: dict) -> str:
    categories = audit["categories"]
    names = list(categories)
    rows = [
        [name, percent(c["share"]), percent(c["realized_share"]), count(c["tokens"]), count(c["train_tokens"]),
         f"{c['epochs']:.3f}", "-" if c["val_loss"] is None else f"{c['val_loss']:.4f}"]
        for name, c in categories.items()
    ]
    body = [
        f"<h1>strata audit: run {escape(audit['run'])}</h1>",
        f"<p class=meta>{escape(str(audit['objective']))}, seq_len {audit['seq_len']}, global batch "
        f"{audit['global_batch']}, seed {audit['seed']}; build {escape(audit['build'])}</p>",
        f"<p>{count(audit['steps'])} steps ({audit['first_step']} to {audit['last_step']}), "
        f"{count(audit['windows'])} windows, {count(audit['tokens'])} tokens consumed.</p>",
        "<h2>Mixture consumed</h2>",
        figure(hbars(names, {"share": [categories[n]["share"] for n in names],
                             "consumed": [categories[n]["realized_share"] for n in names]}, percent),
               "The run's share of each category beside its share of the tokens the run consumed."),
        table(["category", "share", "consumed", "tokens", "build train tokens", "epochs", "last val loss"], rows),
        "<h2>Effective epochs</h2>",
        figure(hbars(names, {"epochs": [categories[n]["epochs"] for n in names]}, "{:.3f}".format),
               "Tokens consumed over the category's train tokens in the build: passes over its data."),
    ]
    if audit["val_loss"]:
        body += ["<h2>Validation loss</h2>",
                 figure(lines(audit["val_loss"], "step", "loss"), "Validation loss per category over training steps.")]
    if audit["train_loss"]:
        body += ["<h2>Training loss</h2>",
                 figure(lines({"train": audit["train_loss"]}, "step", "loss"), "Training loss over steps.")]
    return page(f"strata audit: {audit['run']}", body)


def page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no favicon request
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        *body,
        "</body></html>",
        "",
    ])


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def table(headers: list[str], rows: list[list], left: int = 1) -> str:
    def cells(tag: str, row: list) -> str:
        return "".join(f"<{tag}{'' if i < left else ' class=n'}>{escape(str(c))}</{tag}>" for i, c in enumerate(row))

    return "\n".join(
        ["<table>", f"<thead><tr>{cells('th', headers)}</tr></thead><tbody>",
         *(f"<tr>{cells('td', row)}</tr>" for row in rows), "</tbody></table>"]
    )


# --------------------------------------------------------------------------- charts


def svg(width: float, height: float, label: str, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}">'
        + "".join(parts) + "</svg>"
    )


def text(x: float, y: float, content: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(content)}</text>'


def legend(names: list[str], x: float, y: float) -> list[str]:
    """Colour keys in a row from (x, y)."""
    parts = []
    for i, name in enumerate(names):
        parts += [f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>',
                  text(x + 14, y, name)]
        x += 30 + 7 * len(name)
    return parts


def ticks(low: float, high: float, most: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 x 10^k) from at most `low` to at least `high`."""
    if high <= low:
        return [low, low + 1.0]
    raw = (high - low) / most
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [i * step for i in range(first, last + 1)]


def hbars(labels: list[str], series: dict[str, list[float]], fmt) -> str:
    """Horizontal bars: one group of bars per label, one bar per series, values printed."""
    bar, gap = 14, 10
    top, plot_width = 34, WIDTH - LABEL_WIDTH - 70
    group = bar * len(series) + gap
    height = top + group * max(len(labels), 1) + 26
    scale = ticks(0, max([v for values in series.values() for v in values] + [0]))

    def x_of(v: float) -> float:
        return LABEL_WIDTH + plot_width * v / scale[-1]

    parts = legend(list(series), LABEL_WIDTH, 16)
    for t in scale:
        parts += [f'<line class="grid" x1="{x_of(t):.1f}" x2="{x_of(t):.1f}" y1="{top - 4}" y2="{height - 22}"/>',
                  text(x_of(t), height - 8, fmt(t), "middle")]
    for i, label in enumerate(labels):
        y = top + i * group
        parts.append(text(LABEL_WIDTH - 8, y + bar * len(series) / 2 + 4, label, "end"))
        for j, values in enumerate(series.values()):
            width = x_of(values[i]) - LABEL_WIDTH
            tip = f"{label}: {fmt(values[i])}"
            parts += [f'<rect x="{LABEL_WIDTH}" y="{y + j * bar}" width="{max(width, 0.5):.1f}" height="{bar - 2}" '
                      f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(tip)}</title></rect>',
                      text(LABEL_WIDTH + width + 4, y + j * bar + bar - 4, fmt(values[i]))]
    parts.append(f'<line class="axis" x1="{LABEL_WIDTH}" x2="{LABEL_WIDTH}" y1="{top - 4}" y2="{height - 22}"/>')
    return svg(WIDTH, height, ", ".join(series), parts)


def histogram_svg(hist: dict, fmt) -> str:
    """Stacked columns per log-spaced bin, one colour per category."""
    edges, counts = hist["edges"], hist["counts"]
    left, top, bottom, height = 60, 34, 44, 300
    if not edges:
        return svg(WIDTH, 60, "no documents", [text(left, 30, "no documents")])
    bins = len(edges) - 1
    totals = [sum(c[i] for c in counts.values()) for i in range(bins)]
    scale = ticks(0, max(totals))
    plot_width, plot_height = WIDTH - left - RIGHT, height - top - bottom
    column = plot_width / bins

    def y_of(v: float) -> float:
        return top + plot_height * (1 - v / scale[-1])

    parts = legend(list(counts), left, 16)
    for t in scale:
        parts += [f'<line class="grid" x1="{left}" x2="{WIDTH - RIGHT}" y1="{y_of(t):.1f}" y2="{y_of(t):.1f}"/>',
                  text(left - 6, y_of(t) + 4, count(int(t)) if t == int(t) else f"{t:g}", "end")]
    base = [0] * bins
    for j, (name, values) in enumerate(counts.items()):
        for i, n in enumerate(values):
            if n:
                y0, y1 = y_of(base[i]), y_of(base[i] + n)
                tip = f"{name}: {n} in [{fmt(edges[i])}, {fmt(edges[i + 1])})"
                parts.append(
                    f'<rect x="{left + i * column + 1:.1f}" y="{y1:.1f}" width="{max(column - 2, 1):.1f}" '
                    f'height="{y0 - y1:.1f}" fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(tip)}</title></rect>'
                )
                base[i] += n
    label_every = max(1, math.ceil(bins / 12))
    for i in range(0, bins + 1, label_every):
        parts.append(text(left + i * column, height - bottom + 16, fmt(edges[i]), "middle"))
    parts += [f'<line class="axis" x1="{left}" x2="{WIDTH - RIGHT}" y1="{y_of(0):.1f}" y2="{y_of(0):.1f}"/>',
              f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{y_of(0):.1f}"/>']
    return svg(WIDTH, height, "histogram of " + ", ".join(counts), parts)


def lines(series: dict[str, list[list[float]]], x_label: str, y_label: str) -> str:
    """One polyline per series of [x, y] points (thinned for display), shared axes."""
    left, top, bottom, height = 60, 34, 40, 300
    shown = {name: evenly(points, MAX_LINE_POINTS) for name, points in series.items() if points}
    xs = [p[0] for points in shown.values() for p in points]
    ys = [p[1] for points in shown.values() for p in points]
    x_scale, y_scale = ticks(0, max(xs)), ticks(min(ys), max(ys))
    plot_width, plot_height = WIDTH - left - RIGHT, height - top - bottom

    def x_of(v: float) -> float:
        return left + plot_width * v / x_scale[-1]

    def y_of(v: float) -> float:
        return top + plot_height * (y_scale[-1] - v) / (y_scale[-1] - y_scale[0])

    parts = legend(list(shown), left, 16)
    for t in y_scale:
        parts += [f'<line class="grid" x1="{left}" x2="{WIDTH - RIGHT}" y1="{y_of(t):.1f}" y2="{y_of(t):.1f}"/>',
                  text(left - 6, y_of(t) + 4, f"{t:.3g}", "end")]
    for t in x_scale:
        parts.append(text(x_of(t), height - bottom + 16, f"{t:g}", "middle"))
    for j, points in enumerate(shown.values()):
        colour = PALETTE[j % len(PALETTE)]
        coordinates = " ".join(f"{x_of(x):.1f},{y_of(y):.1f}" for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coordinates}"/>')
        if len(points) == 1:
            parts.append(f'<circle cx="{x_of(points[0][0]):.1f}" cy="{y_of(points[0][1]):.1f}" r="3" fill="{colour}"/>')
    bottom_y = top + plot_height
    parts += [f'<line class="axis" x1="{left}" x2="{WIDTH - RIGHT}" y1="{bottom_y}" y2="{bottom_y}"/>',
              f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{bottom_y}"/>',
              text(WIDTH - RIGHT, height - 6, x_label, "end"), text(left - 6, top - 10, y_label, "end")]
    return svg(WIDTH, height, f"{y_label} over {x_label}", parts)


def _plain(n: float) -> str:
    return f"{n:,.0f}" if n >= 100 else f"{n:.3g}"
