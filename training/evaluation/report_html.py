"""The listening report's HTML: pure functions from the examples manifest and the summary's data to one page.

The page needs nothing but the files beside it: inline CSS, no script, no font or
network fetch, every link relative, so the folder opens from disk in any browser.
Every piece of text goes through :func:`html.escape`, every link through
:func:`urllib.parse.quote` (file and system names come from the user's data).
"""
from __future__ import annotations

import html
import math
import re
from urllib.parse import quote

from training.evaluation.eval_report import METRICS

# metric -> (short label, unit) for the compact per-clip tables
SHORT = {"lsd_db": ("LSD", "dB"), "mel_mse": ("Mel MSE", ""), "mel_snr_db": ("Mel SNR", "dB"),
         "pesq_wb": ("PESQ-WB", ""), "stoi": ("STOI", ""), "estoi": ("ESTOI", ""), "plcmos": ("PLCMOS", ""),
         "dnsmos": ("DNSMOS", ""), "visqol": ("ViSQOL", "")}

# Spectrogram images, in pixels: five cards (original, gapped input and three systems) fit one
# row of a 1400-px window, and a page of dozens of PNGs stays small.
SPEC_PX = (240, 112)

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 1.6em; } h3 { font-size: 1.05em; }
code { background: #f3f3f3; padding: 0 .2em; }
.md { display: flex; flex-wrap: wrap; gap: 0 2em; }
.md > section { flex: 0 1 auto; } .md > section:first-child { flex-basis: 100%; }
table { border-collapse: collapse; margin: .3em 0; }
th, td { border-bottom: 1px solid #ddd; padding: .15em .5em; text-align: left; }
td.r, th.r { text-align: right; } td { font-variant-numeric: tabular-nums; }
.plot { max-width: 100%; height: auto; }
.example { border-top: 2px solid #ccc; margin-top: 1.2em; }
.row { display: flex; flex-wrap: wrap; gap: .8em; }
.card { margin: 0; padding: .3em; border: 1px solid #ddd; border-radius: 4px; width: 242px; }
.card.ref { background: #f7f9fc; }
.card figcaption { font-weight: 600; margin-bottom: .2em; }
.card img { display: block; width: 240px; height: auto; }
.card audio { width: 240px; height: 32px; margin: .3em 0; }
.card table { font-size: 12px; width: 100%; margin: 0; } .card th { font-weight: normal; color: #555; }
.card th, .card td { padding: 0 .3em; }
.note { color: #555; }
"""


def esc(text) -> str:
    """Text for HTML content or a quoted attribute."""
    return html.escape(str(text), quote=True)


def href(path: str) -> str:
    """A relative POSIX path as an attribute value: percent-encoded, then escaped."""
    return esc(quote(path, safe="/"))


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code> (the only inline markup the summary's text holds)."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", esc(text))


def _table(table: dict) -> str:
    cls = lambda i: ' class="r"' if table["right"][i] else ""  # noqa: E731
    out = ["<table><thead><tr>" + "".join(f"<th{cls(i)}>{_inline(c)}</th>" for i, c in enumerate(table["head"]))
           + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td{cls(i)}>{_inline(c)}</td>" for i, c in enumerate(row)) + "</tr>"
            for row in table["rows"]]
    return "\n".join(out + ["</tbody></table>"])


def _block(block: dict) -> str:
    if "table" in block:
        return _table(block["table"])
    if "list" in block:
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block["list"]) + "</ul>"
    return f"<p>{_inline(block['p'])}</p>"


def summary_html(document: list[dict]) -> str:
    """The evaluation's summary (training.evaluation.eval_report.summary_document) as HTML, one <section>
    per section so the tables can sit side by side; the page's own title is its only <h1>."""
    sections = []
    for i, section in enumerate(document):
        level = 2 if i == 0 else 3
        sections.append([f"<h{level}>{_inline(section['title'])}</h{level}>"] + [_block(b) for b in section["blocks"]])
    return '<div class="md">\n' + "\n".join("<section>\n" + "\n".join(s) + "\n</section>" for s in sections) + "\n</div>"


def format_metric(key: str, value) -> str:
    """One score as the summary prints it ('–' for a skipped metric)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    unit = SHORT[key][1]
    return f"{value:.{METRICS[key][2]}f}" + (f" {unit}" if unit else "")


def scores_table(scores: dict | None) -> str:
    """A clip's metrics on this gap, with ↑/↓ for the better direction ('' without scores)."""
    if not scores:
        return ""
    rows = [f"<tr><th>{esc(SHORT[k][0])} {'↑' if METRICS[k][1] else '↓'}</th><td class=\"r\">{esc(format_metric(k, scores.get(k)))}</td></tr>"
            for k in METRICS if k in scores]
    skipped = f'<p class="note">skipped: {esc(scores["skipped"])}</p>' if scores.get("skipped") else ""
    return "<table>" + "".join(rows) + "</table>" + skipped


def card_html(clip: dict, prefix: str) -> str:
    """One clip: its name, Mel spectrogram (gap marked), audio player and metrics."""
    name, (width, height) = esc(clip["name"]), SPEC_PX
    ref = " ref" if clip["role"] != "system" else ""
    note = '<p class="note">the reference</p>' if clip["role"] == "original" else ""
    return (f'<figure class="card{ref}"><figcaption>{name}</figcaption>'
            f'<img src="{href(prefix + clip["png"])}" width="{width}" height="{height}" alt="Mel spectrogram: {name}">'
            f'<audio controls preload="metadata" src="{href(prefix + clip["wav"])}"></audio>'
            f'{note}{scores_table(clip.get("scores"))}</figure>')


def example_html(ex: dict, prefix: str) -> str:
    """One example: a heading naming the clip and the gap, then one card per clip in a row."""
    g0, g1 = ex["gap_s"]
    where = f"{ex['start_s'] + g0:.2f}–{ex['start_s'] + g1:.2f} s"
    title = f"{ex['file']}: {ex['gap_ms']:g} ms gap at {where}"
    cards = "\n".join(card_html(c, prefix) for c in ex["clips"])
    return f'<section class="example"><h3>{esc(title)}</h3>\n<div class="row">\n{cards}\n</div></section>'


def page_html(title: str, manifest: dict, summary: list[dict] | None = None, plot: str | None = None,
              prefix: str = "") -> str:
    """The whole report page. ``manifest`` is examples.json (each clip with a 'png' added),
    ``summary`` the evaluation's summary document (summary.json), ``plot`` the relative path of metrics_vs_gap.png;
    clip paths are relative to ``prefix`` (the report folder, seen from the page)."""
    context = manifest.get("context_s")
    parts = [f"<h1>{esc(title)}</h1>",
             '<p class="note">Each example: the original, the gapped input and every system\'s fill, '
             "as heard (excerpts" + (f" of {context:g} s each side of the gap" if context else "") +
             ") and as Mel spectrograms; the dashed cyan lines mark the gap. Beside each fill, its "
             "scores on this gap (↑ higher is better, ↓ lower). All files are in this folder: the page "
             "works offline.</p>"]
    if summary:         # its first section's title heads it
        parts.append(summary_html(summary))
    if plot:
        parts += ["<h2>Metrics against gap length</h2>",
                  f'<img class="plot" src="{href(plot)}" alt="every metric against gap length, one line per system">']
    parts += [f"<h2>Examples ({len(manifest['examples'])})</h2>"]
    parts += [example_html(ex, prefix) for ex in manifest["examples"]] or ['<p class="note">No examples were kept.</p>']
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
