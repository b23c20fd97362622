"""The benchmarks' pieces on the tiny fixture: the speed benchmark's (its timings are printed, never
asserted), and what the speed, vocoder, similarity and reassigned benchmarks refuse."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from conftest import ROOT, run_script
from datasets.mel_dataset import compute_mels
from datasets.sources import list_files
from training.evaluation.benchmark import DecodedCrops, data_rate, format_table, infer_time


def test_decoded_items_are_crops_of_the_files_mel(tiny_cfg):
    [path] = list_files("ljspeech", [tiny_cfg.data.root])[:1]
    d = tiny_cfg.data
    [mel] = compute_mels([path], tiny_cfg.audio, 0.5, 0.0)
    for i in range(3):
        item = DecodedCrops([path], tiny_cfg.audio, d.crop_frames, d.mask, 0, 3)[i]
        target = item["target"][0].numpy()
        assert any(np.array_equal(target, mel[:, s:s + d.crop_frames]) for s in range(mel.shape[1]))
        assert item["mask"].sum() > 0


def test_phases_run_on_the_tiny_config(tiny_cfg, tmp_path):
    tiny_cfg.data.cache_dir = str(tmp_path / "cache")
    rows = [("data path", "cache", data_rate(tiny_cfg, "cache", 2, 1)),
            ("data path", "decode", data_rate(tiny_cfg, "decode", 2, 1)),
            ("inference", "12 s", infer_time(tiny_cfg, 12.0, 1, gap_ms=50.0))]
    assert all(r["peak MiB"] > 0 for _, _, r in rows)
    assert rows[0][2]["examples/s"] > 0 and rows[2][2]["seconds"] > 0
    assert format_table(rows).count("\n") == 4


def test_benchmark_cli_skips_without_data(tmp_path):
    result = run_script("benchmark.py", "--data", tmp_path / "absent")
    assert result.returncode == 0 and "skipped" in result.stdout


def test_run_benchmark_works_on_a_copy_and_reads_the_extra_roots(tiny_cfg, tmp_path, monkeypatch):
    """The caller's config keeps its folders; the cache is filled from every root."""
    from conftest import write_ljspeech
    from training.configure import build_config
    from training.evaluation import benchmark

    extra = write_ljspeech(tmp_path / "more", n_clips=2)
    cfg = build_config({**tiny_cfg.to_dict(), "data": {**tiny_cfg.to_dict()["data"], "extra_roots": [str(extra)]}})
    before = cfg.to_dict()
    seen = []
    monkeypatch.setattr(benchmark, "_in_fresh_process", lambda fn, c, *args: seen.append(c) or {"peak MiB": 1.0})
    lines = []
    rows = benchmark.run_benchmark(cfg, 1, 1, log=lines.append)
    assert cfg.to_dict() == before
    assert len(rows) == len(seen) and all(c is not cfg for c in seen)
    n = len(list_files("ljspeech", [tiny_cfg.data.root])) + 2
    assert lines[0].startswith(f"filled the cache of {n} files")


def test_inference_is_timed_for_a_model_that_searches_a_corpus(tiny_cfg):
    import dataclasses
    cfg = dataclasses.replace(tiny_cfg, model=dataclasses.replace(
        tiny_cfg.model, params={**tiny_cfg.model.params, "corpus": True}))
    assert infer_time(cfg, 12.0, 1, gap_ms=50.0)["seconds"] > 0      # its corpus: the other clips


# --------------------------------------------------------------------------- peak memory

def test_a_phase_reports_its_own_peak_memory_not_its_parents():
    """ru_maxrss survives exec: a spawned phase reported max(its parent's peak, its own)."""
    from training.evaluation import benchmark
    big = np.ones(400 * 2 ** 20 // 8)          # 400 MiB the parent touches, the child never has
    parent = benchmark._peak_mib()
    child = benchmark._in_fresh_process(benchmark.idle, None, 1)["peak MiB"]
    del big
    assert 0 < child < parent - 200, (child, parent)


# --------------------------------------------------------------------------- options

def test_check_option_refuses_what_cannot_be_counted_or_timed():
    from processors.core.errors import UserError
    from processors.core.cli import check_option
    check_option("--iters", [1, 8], 1)
    check_option("--seed", 0, 0)
    check_option("--gap-ms", 0.5, 0, above=True)
    for flag, value, low, above, said in [("--threads", 0, 1, False, "--threads 0: must be an integer >= 1"),
                                          ("--seed", -1, 0, False, "--seed -1: must be an integer >= 0"),
                                          ("--iters", [8, 0], 1, False, "--iters 0: must be an integer >= 1"),
                                          ("--gap-ms", 0.0, 0, True, "--gap-ms 0: must be a finite number > 0"),
                                          ("--gap-ms", float("nan"), 0, True, "--gap-ms nan:"),
                                          ("--gap-s", float("inf"), 0, True, "--gap-s inf:")]:
        with pytest.raises(UserError, match=f"^{re.escape(said)}"):
            check_option(flag, value, low, above)


def _refused(proc, *said: str) -> None:
    """The house's refusal: exit code 2, one line ``error: ...`` naming ``said``, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert all(s in lines[0] for s in said), lines[0]


@pytest.mark.parametrize("option, said", [(["--seed", "-1"], "--seed -1"), (["--gap-ms", "-5"], "--gap-ms -5"),
                                          (["--gap-ms", "nan"], "--gap-ms nan"), (["--gap-ms", "0"], "--gap-ms 0"),
                                          (["--threads", "0"], "--threads 0"),
                                          (["--gap-ms", "100000"], "at most")])
def test_vocoder_benchmark_refuses_bad_numbers_in_one_line(tmp_path, option, said):
    _refused(run_script("benchmark_vocoder.py", "--data", tmp_path, *option), said)


@pytest.mark.parametrize("option, said", [(["--threads", "0"], "--threads 0"), (["--gaps", "0"], "--gaps 0"),
                                          (["--gap-s", "-1"], "--gap-s -1"), (["--gap-s", "nan"], "--gap-s nan"),
                                          (["--gap-s", "0"], "--gap-s 0"),
                                          (["--gap-s", "0.5", "2"], "at most 1.000 s")])
def test_similarity_benchmark_refuses_bad_numbers_and_gaps_the_file_cannot_hold(tmp_path, option, said):
    from conftest import write_clip
    clip = write_clip(tmp_path / "song.wav", 5.0, sr=16000)     # 2 s of context each side: gaps up to 1 s
    said = [said, str(clip)] if said.startswith("at most") else [said]
    _refused(run_script("benchmark_similarity.py", "--input", clip, "--gaps", "1", *option), *said)


# --------------------------------------------------------------------------- the vocoder benchmark

def test_librosa_reference_row_is_the_same_on_every_run(tiny_cfg):
    """librosa's griffinlim draws from np.random.default_rng() unless given random_state."""
    from conftest import synth_clip
    from processors.mel import MelSpectrogram, log_mel
    from training.evaluation.vocoder_benchmark import LibrosaMelToAudio
    mel = torch.from_numpy(log_mel(MelSpectrogram(tiny_cfg.audio), synth_clip(0.3, sr=16000)))
    reference = LibrosaMelToAudio(tiny_cfg.audio, 2)
    first, again = reference(mel), reference(mel)
    assert torch.equal(first, again)
    assert not torch.equal(first, reference(mel, seed=1))      # the seed is what sets it


# --------------------------------------------------------------------------- the reassigned benchmark

def test_reassigned_methods_with_unreadable_iterations_are_a_user_error():
    from processors.core.errors import UserError
    from training.evaluation.reassigned_benchmark import parse_methods
    assert parse_methods(["pghi_reassigned:60", "griffinlim"], 5) == [("pghi_reassigned", 60), ("griffinlim", 5)]
    with pytest.raises(UserError, match="--methods pghi_reassigned:x"):
        parse_methods(["pghi_reassigned:x"], 5)


def test_reassigned_benchmark_skips_silent_clips_and_refuses_a_set_of_them(tmp_path):
    import soundfile as sf
    from conftest import write_clip
    from processors.core.errors import UserError
    from training.configure import load_config
    from training.evaluation.reassigned_benchmark import benchmark_reassigned
    rc = load_config(ROOT / "configs" / "reassigned_ljspeech.yaml").reassigned
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(rc.sample_rate // 4), rc.sample_rate, subtype="PCM_16")
    voiced = write_clip(tmp_path / "voiced.wav", 0.5, sr=rc.sample_rate)
    lines = []
    results = benchmark_reassigned({"training files": [silent, voiced]}, rc, [("pghi_magnitude", 0)], log=lines.append)
    assert "silent.wav (0.2 s) is silent: skipped" in lines[0]
    assert all(np.isfinite(v) for k, v in results["training files"]["pghi_magnitude:0"].items() if k != "pesq")
    with pytest.raises(UserError, match="training files: no clip was usable: all 1 .* are silent"):
        benchmark_reassigned({"training files": [silent]}, rc, [("pghi_magnitude", 0)], log=lines.append)


def test_reassigned_benchmark_without_held_out_files_prints_the_training_table_alone(tmp_path, ljspeech_dir):
    proc = run_script("benchmark_reassigned.py", "--set", f"data.root={ljspeech_dir}", "--set", "data.extra_roots=[]",
                      "--set", "data.test_fraction=0", "--methods", "pghi_magnitude:0", "--files", "1")
    assert proc.returncode == 0, proc.stderr
    assert "### training files (1 clips)" in proc.stdout and "no held-out files in the config's split" in proc.stdout
    assert "### held-out files" not in proc.stdout and "minus" not in proc.stdout
