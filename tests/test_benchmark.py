"""The speed benchmark's pieces on the tiny fixture (numbers are printed, never asserted)."""
from __future__ import annotations

import numpy as np

from conftest import run_script
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
