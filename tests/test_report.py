"""The listening report: excerpts and manifest, the page, the scripts, and the page in a real browser."""
from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import make_tiny_cfg, run_script, synth_clip, write_ljspeech
from headless_chromium import check_page, find_chromium
from processors.core.errors import UserError
from training.evaluation.eval_report import SUMMARY_DATA, markdown
from training.evaluation.evaluate import Example
from training.evaluation.report import build_report, load_manifest, save_examples
from training.evaluation.report_html import SPEC_PX, page_html, summary_html

torch.set_num_threads(1)
SR = 16000


class Links(HTMLParser):
    """Every src/href of a page, and whether it has any <script>."""

    def __init__(self):
        super().__init__()
        self.links, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [(tag, v) for k, v in attrs if k in ("src", "href")]


def parse(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def make_example(name: str = "clip_a", gap_ms: float = 100.0, systems=("zero", "linear", "oracle")) -> Example:
    """An Example as evaluation keeps it: 0.5 s excerpts at 16 kHz, the gap silent in 'gapped'."""
    original = synth_clip(0.5, SR, seed=1)
    s, e = 3000, 3000 + int(gap_ms * SR / 1000)
    gapped = original.copy()
    gapped[s:e] = 0.0
    waves = {"original": original, "gapped": gapped}
    scores = {}
    for i, system in enumerate(systems):
        waves[system] = gapped if system == "zero" else original * (1 - 0.1 * i)
        scores[system] = {"lsd_db": 3.0 + i, "mel_mse": 0.01, "mel_snr_db": 10.0, "pesq_wb": math.nan,
                          "stoi": 0.9, "estoi": 0.8, "skipped": "pesq: no utterance" if i == 0 else ""}
    return Example(name, gap_ms, (s, e), 12_345, waves, scores)


@pytest.fixture
def report_dir(tmp_path) -> Path:
    """A results folder with two examples' excerpts, the summary's data and no plot."""
    cfg = make_tiny_cfg(tmp_path, tmp_path)
    out = tmp_path / "results"
    save_examples([make_example(), make_example("clip <b>", 50.0, ("tiny/best", "oracle"))], cfg.audio,
                  out / "report", context_s=1.5)
    document = [{"title": "Gap-filling evaluation", "blocks": [{"list": ["data: `x`"]}]},
                {"title": "LSD ↓", "blocks": [{"table": {"head": ["system", "50 ms"], "right": [False, True],
                                                        "rows": [["linear", "1.00 ± 0.10"]]}}]}]
    (out / SUMMARY_DATA).write_text(json.dumps(document), encoding="utf-8")
    return out


SUMMARY = [{"title": "Title", "blocks": [{"list": ["data: `a<b`"]}, {"p": "para one para two"}]},
           {"title": "LSD ↓", "blocks": [{"table": {"head": ["system", "50 ms"], "right": [False, True],
                                                   "rows": [["lin & co", "1.0"]]}}, {"p": "n = 3."}]}]


def test_the_summary_renders_from_data_as_markdown_and_as_html():
    """summary.md and the page's summary are two renderings of the same document."""
    assert markdown(SUMMARY) == ("# Title\n\n- data: `a<b`\n\npara one para two\n\n## LSD ↓\n\n"
                                 "| system | 50 ms |\n|---|---:|\n| lin & co | 1.0 |\n\nn = 3.\n")
    html = summary_html(SUMMARY)
    assert "<h2>Title</h2>" in html and "<li>data: <code>a&lt;b</code></li>" in html
    assert "<p>para one para two</p>" in html and "<h3>LSD ↓</h3>" in html
    assert '<th class="r">50 ms</th>' in html and "<td>lin &amp; co</td>" in html and '<td class="r">1.0</td>' in html
    assert html.count("<section>") == 2


def test_excerpts_are_16_bit_wavs_and_zero_fill_shares_the_gapped_card(report_dir):
    manifest = load_manifest(report_dir)
    first, second = manifest["examples"]
    assert [c["name"] for c in first["clips"]] == ["original", "gapped input (zero fill)", "linear", "oracle"]
    assert first["clips"][0]["scores"] is None and first["clips"][1]["scores"]["lsd_db"] == 3.0
    assert first["clips"][1]["scores"]["pesq_wb"] is None              # NaN (skipped) is null in JSON
    assert first["start_s"] == pytest.approx(12_345 / SR) and first["gap_s"] == [3000 / SR, 4600 / SR]
    assert [c["name"] for c in second["clips"]] == ["original", "gapped input", "tiny/best", "oracle"]
    for clip in first["clips"] + second["clips"]:
        info = sf.info(str(report_dir / "report" / clip["wav"]))
        assert (info.samplerate, info.subtype, info.frames) == (SR, "PCM_16", 8000)
    gapped, _ = sf.read(str(report_dir / "report" / first["clips"][1]["wav"]))
    assert np.all(gapped[3000:4600] == 0) and np.any(gapped[:3000] != 0)


def test_page_links_only_files_in_its_folder_and_escapes_names(report_dir):
    page = build_report(report_dir)
    links = parse(page)
    assert "script" not in links.tags and "link" not in links.tags         # no external CSS or JS
    assert sum(t == "audio" for t in links.tags) == 8 and sum(t == "img" for t in links.tags) == 8
    for tag, link in links.links:
        assert "://" not in link and not link.startswith("/"), link
        assert (report_dir / link).is_file(), link
    text = page.read_text(encoding="utf-8")
    assert "clip &lt;b&gt;" in text and "clip <b>" not in text
    assert "<h2>Gap-filling evaluation</h2>" in text and "Metrics against gap length" not in text   # no plot
    png = report_dir / [link for tag, link in links.links if tag == "img"][0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    assert Image.open(png).size == SPEC_PX


def test_page_html_escapes_attribute_values_and_encodes_paths():
    manifest = {"context_s": 1.5, "examples": [{"file": 'a"b', "gap_ms": 50.0, "start_s": 0.0, "gap_s": [0.1, 0.15],
                "clips": [{"name": 'x" onload="y', "role": "system", "wav": "audio/a b.wav", "png": "spec/a b.png",
                           "scores": {"lsd_db": 1.0}}]}]}
    html = page_html("T", manifest, prefix="report/")
    assert 'src="report/audio/a%20b.wav"' in html and 'onload="y' not in html and "a&quot;b" in html


def test_missing_manifest_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no report/examples.json"):
        build_report(tmp_path)
    with pytest.raises(UserError, match="results folder not found"):
        build_report(tmp_path / "nowhere")


# --------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    """scripts/evaluate.py --report with three baselines on two tiny clips: its results folder."""
    from processors.core.config_io import save_config
    tmp = tmp_path_factory.mktemp("report")
    data = write_ljspeech(tmp / "LJSpeech-1.1", n_clips=2)
    save_config(make_tiny_cfg(data, tmp), tmp / "tiny.yaml")
    out = tmp / "results"
    proc = run_script("evaluate.py", "--config", tmp / "tiny.yaml", "--data", data, "--gap-ms", 50, 100,
                      "--gaps-per-file", 1, "--baselines", "zero", "linear", "oracle", "--report",
                      "--out", out, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.slow
def test_evaluate_report_and_report_script(evaluated):
    manifest = load_manifest(evaluated)
    assert [ex["gap_ms"] for ex in manifest["examples"]] == [50.0, 100.0]    # --examples 1 per gap length
    assert [c["name"] for c in manifest["examples"][0]["clips"]] == ["original", "gapped input (zero fill)",
                                                                      "linear", "oracle"]
    page = evaluated / "report.html"
    assert all((evaluated / link).is_file() for _, link in parse(page).links)
    assert "plots/metrics_vs_gap.png" in page.read_text(encoding="utf-8")
    assert "PLCMOS" in page.read_text(encoding="utf-8")                     # per clip and in the tables
    assert manifest["examples"][0]["clips"][2]["scores"]["plcmos"] > 1.0
    page.unlink()
    proc = run_script("report.py", evaluated)
    assert proc.returncode == 0 and page.is_file(), proc.stderr
    proc = run_script("report.py", evaluated / "nowhere")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: results folder not found")


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (Debian: apt-get install chromium)")
def test_report_opens_in_headless_chromium(evaluated, tmp_path):
    shot = tmp_path / "report.png"
    result = check_page(evaluated / "report.html", shot)
    assert result["errors"] == []
    assert len(result["audio"]) == 2 * 4 and len(result["images"]) == 2 * 4 + 1
    for audio in result["audio"]:
        assert audio["error"] is None and isinstance(audio["duration"], (int, float)), audio
        assert audio["duration"] == pytest.approx(sf.info(str(evaluated / audio["src"])).duration, abs=0.01)
    assert all(img["width"] > 0 and img["height"] > 0 for img in result["images"]), result["images"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_demo_report_shows_its_clip_with_the_unet_and_two_baselines(tiny_cfg, tmp_path):
    from training.evaluation.demo import listening_report
    sr = tiny_cfg.audio.sample_rate
    original = synth_clip(2.0, sr, seed=2)
    gap = (12_000, 13_600)
    gapped = original.copy()
    gapped[gap[0]:gap[1]] = 0.0
    page, _ = listening_report(tmp_path / "demo", Path("clip.wav"), original, gapped, gap, 100.0, original.copy(), tiny_cfg)
    (example,) = load_manifest(tmp_path / "demo")["examples"]
    assert [c["name"] for c in example["clips"]] == ["original", "gapped input", "U-Net", "linear", "oracle"]
    assert example["clips"][2]["scores"]["lsd_db"] == pytest.approx(0.0, abs=1e-6)     # the "fill" is the original
    assert all((page.parent / link).is_file() for _, link in parse(page).links)
