"""scripts/evaluate.py and training.evaluation.evaluate on a tiny synthetic folder with a tiny checkpoint."""
from __future__ import annotations

import csv
import json
import math
import os
import signal
from pathlib import Path

import numpy as np
from scipy import stats
import pytest
import torch

from conftest import make_tiny_cfg, run_script, write_clip, write_ljspeech
from processors.core.errors import UserError
from processors.gaps import sample_gaps
from processors.inpaint import locate, longest_gap_ms, window_samples
from training.evaluation.eval_report import SUMMARY_DATA, markdown, mean_ci
from datasets.sources import evaluation_files
from training.evaluation.evaluate import BASELINES, DEFAULT_BASELINES, build_systems, check_gap_ms, evaluate, work_span
from training.evaluation.scoring import with_eval
from training.trainer import Trainer

torch.set_num_threads(1)
SYSTEMS = {"tiny/best", *DEFAULT_BASELINES["speech"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data folder, best.pt, its config): a 2-step U-Net on 4 synthetic clips, shared by the module."""
    tmp = tmp_path_factory.mktemp("eval")
    data = write_ljspeech(tmp / "LJSpeech-1.1", n_clips=4)
    cfg = make_tiny_cfg(data, tmp, "train.max_steps=2", "train.val_every=2", "train.ckpt_every=2")
    Trainer(cfg).fit()
    return data, Path(cfg.train.checkpoints_dir) / cfg.run_name / "best.pt", cfg


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_allowed_gap_length_passes_locate_at_any_position(tiny_cfg):
    sr, n = tiny_cfg.audio.sample_rate, 40_000
    longest = int(longest_gap_ms(tiny_cfg, spare_frames=1) * sr / 1000)
    for gap_len in range(longest - 300, longest + 1, 7):
        for s, e in sample_gaps(n, gap_len, window_samples(tiny_cfg), 40, seed=gap_len, key="x"):
            locate((s, e), n, sr, tiny_cfg)          # raises if the model could not fill it


def test_bad_gap_lengths_and_baselines_are_user_errors(tiny_cfg):
    systems = build_systems([], tiny_cfg, ["zero"])
    for bad in (0.0, -5.0, float("nan"), 10_000.0, 0.01):        # 0.01 ms: no sample at 16 kHz
        with pytest.raises(UserError, match="--gap-ms"):
            check_gap_ms([bad], systems)
    with pytest.raises(UserError, match="unknown baseline 'wiener'"):
        build_systems([], tiny_cfg, ["wiener"])
    with pytest.raises(UserError, match="nothing to evaluate"):
        build_systems([], tiny_cfg, [])


def test_checkpoints_with_other_audio_settings_are_refused(tiny_cfg, tmp_path, ljspeech_dir):
    other = make_tiny_cfg(ljspeech_dir, tmp_path, "audio.n_mels=32")
    with pytest.raises(UserError, match="audio settings differ"):
        build_systems([("other", None, other)], tiny_cfg, [])
    # another output stage is the checkpoint's own (the shipped speech model's LPC edges beside a run's)
    edges = make_tiny_cfg(ljspeech_dir, tmp_path, "inference.lpc_hold_ms=5", "inference.lpc_fade_ms=10")
    [system] = build_systems([("edges", None, edges)], tiny_cfg, [])
    assert system.cfg.inference.lpc_fade_ms == 10


def test_oracle_beats_zero_fill_and_rows_share_their_gaps(tiny_cfg, tmp_path):
    write_clip(tmp_path / "clips" / "a.wav", 1.5, sr=16000, seed=3)
    systems = build_systems([], tiny_cfg, list(BASELINES))
    rows, examples = evaluate([tmp_path / "clips" / "a.wav"], systems, tiny_cfg, [50.0], 2, seed=0)
    assert len(rows) == 2 * len(BASELINES) and len(examples) == 1
    by = {(r["gap_index"], r["system"]): r for r in rows}
    for i in range(2):
        assert len({(by[i, s]["start_s"], by[i, s]["end_s"]) for s in BASELINES}) == 1
        assert by[i, "oracle"]["lsd_db"] < by[i, "zero"]["lsd_db"]
        assert by[i, "oracle"]["mel_snr_db"] > by[i, "zero"]["mel_snr_db"]
    assert set(examples[0].waves) == {"original", "gapped", *BASELINES}


@pytest.mark.slow           # 40 fills, each scored by five metrics (PLCMOS and DNSMOS ~0.5 s each)
def test_evaluate_script_end_to_end(trained, tmp_path):
    data, ckpt, cfg = trained
    out = tmp_path / "results"
    proc = run_script("evaluate.py", "--checkpoint", ckpt, "--data", data, "--gap-ms", 50, 100,
                      "--gaps-per-file", 1, "--seed", 3, "--out", out, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out / "metrics.csv")
    assert {r["system"] for r in rows} == SYSTEMS
    assert len(rows) == 4 * 2 * 1 * len(SYSTEMS)                  # files x lengths x gaps x systems
    examples = {}
    for r in rows:                                                # the same gap for every system
        examples.setdefault((r["file"], r["gap_ms"], r["gap_index"]), set()).add((r["start_s"], r["end_s"]))
    assert len(examples) == 4 * 2 * 1 and all(len(v) == 1 for v in examples.values())
    for r in rows:
        assert float(r["lsd_db"]) >= 0 and float(r["mel_mse"]) >= 0
        assert r["skipped"] or (1.0 <= float(r["pesq_wb"]) <= 4.7 and 0 <= float(r["estoi"]) <= 1.0)
    summary = (out / "summary.md").read_text()
    assert all(f"| {s} |" in summary for s in SYSTEMS) and "50 ms" in summary and "±" in summary
    assert "PLCMOS v2 ↑ 50 ms" in summary and "## DNSMOS overall on the excerpt ↑" in summary
    assert "## Paired against linear" in summary and "| linear |" not in summary.split("## Paired")[1].split("##")[0]
    assert markdown(json.loads((out / SUMMARY_DATA).read_text())) == summary     # the report's data is the summary's
    assert all(r["skipped"] or 1.0 <= float(r["plcmos"]) <= 5.0 for r in rows)
    assert (out / "plots" / "metrics_vs_gap.png").stat().st_size > 0
    assert len(list((out / "plots").glob("example_*.png"))) == 2   # one per gap length


def test_silent_clip_is_a_skipped_row_not_a_crash(tiny_cfg, tmp_path):
    import soundfile as sf
    folder = tmp_path / "clips"
    folder.mkdir()
    sf.write(str(folder / "silent.wav"), np.zeros(24_000, dtype=np.float32), 16000)
    rows, _ = evaluate([folder / "silent.wav"], build_systems([], tiny_cfg, ["zero"]), tiny_cfg, [50.0], 1, seed=0)
    assert len(rows) == 1 and math.isnan(rows[0]["pesq_wb"]) and "pesq" in rows[0]["skipped"]


def test_bad_data_is_a_user_error(tiny_cfg, tmp_path):
    with pytest.raises(UserError, match="data folder not found"):
        evaluation_files(str(tmp_path / "nowhere"), "all", tiny_cfg)
    short = write_clip(tmp_path / "short" / "a.wav", 0.1, sr=16000)
    with pytest.raises(UserError, match="no usable file among 1"):
        evaluate([short], build_systems([], tiny_cfg, ["zero"]), tiny_cfg, [50.0], 1, seed=0)


def test_evaluation_files_reads_ljspeech_or_any_folder_and_splits(tiny_cfg, ljspeech_dir, tmp_path):
    assert len(evaluation_files(str(ljspeech_dir), "all", tiny_cfg)) == 8
    assert len(evaluation_files(str(ljspeech_dir), "all", tiny_cfg, limit=3)) == 3
    test = evaluation_files(str(ljspeech_dir), "test", tiny_cfg)
    assert 1 <= len(test) < 8 and not set(test) & set(evaluation_files(str(ljspeech_dir), "train", tiny_cfg))
    write_clip(tmp_path / "music" / "x.wav", 1.0)
    assert [p.name for p in evaluation_files(str(tmp_path / "music"), "all", tiny_cfg)] == ["x.wav"]
    # one folder given twice is read once; two different files of one name would share their rows
    assert len(evaluation_files([str(tmp_path / "music")] * 2, "all", tiny_cfg)) == 1
    write_clip(tmp_path / "other" / "x.wav", 1.0, seed=1)
    with pytest.raises(UserError, match="two files named x.wav"):
        evaluation_files([str(tmp_path / "music"), str(tmp_path / "other")], "all", tiny_cfg)


@pytest.mark.parametrize("args, message", [
    (["--gap-ms", "5000"], "--gap-ms 5000"),
    (["--checkpoint", "{tmp}/missing.pt", "--gap-ms", "50"], "checkpoint not found"),
    (["--gap-ms", "50", "--seed", "-1"], "--seed -1: must be an integer >= 0"),
    (["--gap-ms", "50", "--out", "{data}/results"], "is inside --data"),     # its wavs would be data next time
    (["--gap-ms", "50", "--paired-against", "wiener"], "--paired-against 'wiener': not a system of this run"),
])
def test_script_bad_inputs_are_one_line_errors(tmp_path, ljspeech_dir, args, message):
    from processors.core.config_io import save_config
    config = tmp_path / "tiny.yaml"
    save_config(make_tiny_cfg(ljspeech_dir, tmp_path), config)
    proc = run_script("evaluate.py", "--config", config, "--data", ljspeech_dir, "--out", tmp_path / "out",
                      *[a.format(tmp=tmp_path, data=ljspeech_dir) for a in args])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and lines[-1].startswith("error: ") and message in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr


def test_mean_ci_is_a_t_interval_over_the_scored_values():
    mean, half, n = mean_ci([1.0, 2.0, 3.0, math.nan])           # NaN = a skipped clip
    assert (mean, n) == (2.0, 3) and half == pytest.approx(stats.t.ppf(0.975, 2) / math.sqrt(3))
    assert mean_ci([5.0])[0] == 5.0 and math.isnan(mean_ci([5.0])[1])
    assert mean_ci([math.nan])[2] == 0


# --------------------------------------------------------------------------- excerpts, long files, crashes

def _one_gap_rows(cfg, path, baselines, gap_ms=100.0):
    rows, _ = evaluate([path], build_systems([], cfg, baselines), cfg, [gap_ms], 1, seed=0)
    return rows



def test_the_interval_is_clustered_by_file_gaps_of_one_file_are_not_independent():
    # two files, each scored alike on its three gaps: six values but two measurements
    values, files = [1.0, 1.0, 1.0, 3.0, 3.0, 3.0], ["a", "a", "a", "b", "b", "b"]
    mean, half, n = mean_ci(values, files)
    assert (mean, n) == (2.0, 6)
    assert half == pytest.approx(stats.t.ppf(0.975, 1) * np.std([1.0, 3.0], ddof=1) / math.sqrt(2))
    assert half > 5 * mean_ci(values)[1]                       # as if six independent gaps
    unbalanced = mean_ci([1.0, 2.0, 4.0, 8.0, math.nan], ["a", "a", "b", "c", "c"])
    assert unbalanced[2] == 4 and math.isfinite(unbalanced[1])
    assert math.isnan(mean_ci([1.0, 2.0], ["a", "a"])[1])       # one file: no interval


def test_paired_differences_are_per_gap_and_clustered_by_file():
    from training.evaluation.eval_report import paired
    def row(system, file, i, lsd):
        return {"system": system, "file": file, "gap_ms": 100.0, "gap_index": i, "lsd_db": lsd}
    rows = [row("linear", f, i, 10.0 + 5 * (f == "b") + i) for f in "ab" for i in range(3)]      # hard and easy gaps
    rows += [row("model", f, i, 9.0 + 5 * (f == "b") + i + 0.5 * (f == "b")) for f in "ab" for i in range(3)]
    rows += [row("model", "c", 0, 1.0)]                      # no linear row for this gap: not paired
    mean, half, n = paired(rows, "linear")[("model", 100.0, "lsd_db")]
    assert (mean, n) == (-0.75, 6)
    assert half == pytest.approx(stats.t.ppf(0.975, 1) * np.std([-1.0, -0.5], ddof=1) / math.sqrt(2))
    assert ("linear", 100.0, "lsd_db") not in paired(rows, "linear")

def test_a_four_minute_file_is_scored_on_excerpts(tiny_cfg, tmp_path):
    path = write_clip(tmp_path / "long" / "talk.wav", 240.0, sr=16000, seed=5)
    rows = _one_gap_rows(tiny_cfg, path, ["zero", "linear"])
    assert {r["system"] for r in rows} == {"zero", "linear"}
    for r in rows:
        assert r["excerpt_s"] == pytest.approx(4.1, abs=1e-3) and not r["skipped"]
        assert all(math.isfinite(r[m]) for m in ("lsd_db", "pesq_wb", "stoi", "plcmos", "dnsmos"))


def test_whole_signal_metrics_equal_those_of_the_excerpt_cut_by_hand(tiny_cfg, tmp_path):
    from processors.audio_io import load_mono
    from processors.metrics import pesq_wb, stoi_scores
    from processors.speech_mos import plcmos
    path = write_clip(tmp_path / "clips" / "a.wav", 12.0, sr=16000, seed=2)
    cfg = with_eval(tiny_cfg, seconds=1.5)
    row = _one_gap_rows(cfg, path, ["zero"])[0]
    clean = load_mono(path, 16000)
    s, e = round(row["start_s"] * 16000), round(row["end_s"] * 16000)
    gapped = clean.copy()
    gapped[s:e] = 0.0
    ref, est = clean[s - 24_000:e + 24_000], gapped[s - 24_000:e + 24_000]    # 1.5 s each side, by hand
    assert row["pesq_wb"] == pesq_wb(ref, est, 16000)[0]
    assert row["stoi"] == stoi_scores(ref, est, 16000)[0]["stoi"]
    assert row["plcmos"] == plcmos(est, 16000)[0]
    assert row["pesq_wb"] != pesq_wb(clean, gapped, 16000)[0]                   # not the whole file



def test_gap_metrics_do_not_move_with_the_excerpt_the_whole_signal_metrics_see(tiny_cfg):
    # LSD's frame grid and floor follow the stretch it is given: that stretch is fixed (2 s each
    # side of the gap), so --excerpt-seconds changes PESQ's excerpt and nothing else
    from conftest import synth_clip
    from processors.mel import MelSpectrogram
    from training.evaluation.scoring import score_gap
    clean = synth_clip(12.0, 16000, seed=6)
    gap = (96_000, 97_600)
    gapped = clean.copy()
    gapped[gap[0]:gap[1]] = 0.0
    fills = {b.name: b.fill(gapped, gap, clean) for b in build_systems([], tiny_cfg, ["zero", "linear"])}
    scores = [score_gap(clean, fills, gap, with_eval(tiny_cfg, seconds=seconds, metrics=[]), MelSpectrogram(tiny_cfg.audio))
              for seconds in (0.37, 2.0, 4.5)]
    for name in fills:
        assert len({tuple(s[name][m] for m in ("lsd_db", "mel_mse", "mel_snr_db")) for s in scores}) == 1

def test_filling_the_work_span_equals_filling_the_whole_file(tiny_cfg):
    from conftest import synth_clip
    clean = synth_clip(20.0, 16000, seed=4)
    window = window_samples(tiny_cfg)
    gap = (150_000, 151_600)
    scored = (gap[0] - 32_000, gap[1] + 32_000)
    lo, hi = work_span(gap, len(clean), window, scored, 24_000)
    assert lo <= scored[0] and hi >= scored[1] and hi - lo < 100_000
    fill = build_systems([], tiny_cfg, ["linear"])[0].fill
    gapped = clean.copy()
    gapped[gap[0]:gap[1]] = 0.0
    whole = fill(gapped, gap, clean)
    part = fill(gapped[lo:hi].copy(), (gap[0] - lo, gap[1] - lo), clean[lo:hi])
    assert np.array_equal(whole[lo:hi], part)


def _crash(ref, est, sr):
    os.kill(os.getpid(), signal.SIGSEGV)


@pytest.mark.slow           # every crash costs a fresh worker process (~3 s)
def test_a_metric_library_crash_is_a_nan_with_its_reason(tiny_cfg, tmp_path, monkeypatch):
    from processors import excerpt_metrics as em
    monkeypatch.setitem(em.EXCERPT_METRICS, "crashy", em.ExcerptMetric(("crashy",), 16000, _crash))
    monkeypatch.setitem(em.DOMAIN_METRICS, "speech", ("crashy", "pesq"))
    path = write_clip(tmp_path / "clips" / "a.wav", 6.0, sr=16000, seed=1)
    rows, _ = evaluate([path], build_systems([], tiny_cfg, ["zero", "linear"]), tiny_cfg, [100.0], 2, seed=0)
    assert len(rows) == 4
    for r in rows:
        assert math.isnan(r["crashy"]) and r["skipped"] == "crashy: crashed (killed by SIGSEGV)"
        assert math.isfinite(r["pesq_wb"])                  # the next metric ran in a fresh process


def test_music_domain_scores_visqol_and_no_speech_metric(tiny_cfg, tmp_path):
    path = write_clip(tmp_path / "songs" / "song.wav", 30.0, sr=16000, seed=6)
    rows = _one_gap_rows(with_eval(tiny_cfg, "music"), path, ["zero", "oracle"])
    by = {r["system"]: r for r in rows}
    start, end = by["zero"]["start_s"], by["zero"]["end_s"]
    assert by["zero"]["excerpt_s"] == pytest.approx(min(end + 5.0, 30.0) - max(start - 5.0, 0.0), abs=1e-3)
    assert by["oracle"]["visqol"] > by["zero"]["visqol"]
    assert not {"pesq_wb", "stoi", "plcmos", "dnsmos"} & set(by["zero"])


def test_domain_and_excerpt_come_from_the_config_or_the_command_line(tiny_cfg):
    assert with_eval(tiny_cfg).eval == tiny_cfg.eval
    assert with_eval(tiny_cfg, "music", 3.0).eval.domain == "music"
    with pytest.raises(UserError, match="--excerpt-seconds"):
        with_eval(tiny_cfg, seconds=0.0)


def test_an_earlier_run_is_kept_unless_force_is_given_and_then_replaced_whole(trained, tmp_path):
    data, ckpt, cfg = trained
    out = tmp_path / "results"
    out.mkdir()
    (out / "metrics.csv").write_text("an earlier run\n")
    (out / "report.html").write_text("<p>an earlier run's page</p>")
    (out / "notes.txt").write_text("mine")
    (out / "plots").mkdir()
    (out / "plots" / "my_figure.png").write_bytes(b"mine")
    args = ["--checkpoint", ckpt, "--data", data, "--gap-ms", 50, "--gaps-per-file", 1, "--limit-files", 1,
            "--baselines", "zero", "--metrics", "pesq", "--out", out]
    proc = run_script("evaluate.py", *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "holds results an evaluation writes" in proc.stderr and "--force" in proc.stderr
    assert (out / "metrics.csv").read_text() == "an earlier run\n"
    proc = run_script("evaluate.py", *args, "--force", "--baselines", "zero", "zero")     # a repeat is one row
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["system"] for r in read_rows(out / "metrics.csv")) == ["tiny/best", "zero"]
    assert not (out / "report.html").exists()            # no page left beside numbers it does not show
    assert (out / "notes.txt").read_text() == "mine"      # only the run's own files are replaced
    assert (out / "plots" / "my_figure.png").read_bytes() == b"mine"
    proc = run_script("evaluate.py", *args[:-1], out / "metrics.csv" / "deeper")
    assert proc.returncode == 2 and "metrics.csv is a file" in proc.stderr


def test_files_of_the_users_under_the_names_a_run_writes_need_force(tmp_path):
    from training.evaluation.report import earlier_results
    assert earlier_results(tmp_path) == []
    (tmp_path / "notes.txt").write_text("mine")
    assert earlier_results(tmp_path) == []          # other files are never a run's, nor touched
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "metrics_vs_gap.png").write_bytes(b"a figure of the user's")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "audio").mkdir()
    (tmp_path / "report.html").write_text("a page of the user's")
    assert set(earlier_results(tmp_path)) == {tmp_path / "report.html", tmp_path / "report" / "audio",
                                               tmp_path / "plots" / "metrics_vs_gap.png"}


def test_an_out_folder_the_system_refuses_is_found_before_any_work(tmp_path):
    import os
    from processors.core.cli import check_output_file, check_output_folder
    from processors.core.errors import UserError
    check_output_folder(tmp_path / "a" / "b", "--out")
    assert not (tmp_path / "a").exists()             # tried, then undone
    if os.path.isdir("/proc/self"):                  # a folder no one can create files in
        with pytest.raises(UserError, match=r"^--out: cannot create files in /proc/no_such_folder \("):
            check_output_folder(Path("/proc/no_such_folder"), "--out")
        with pytest.raises(UserError, match=r"^--figure: cannot create files in /proc \("):   # inference's figure
            check_output_file(Path("/proc/x.png"), "--figure", False, (".png",))
