"""The two music configs: split by song, guided items, one CPU training step each."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, run_script
from datasets.guided import GuidedMelCrops, build_crops
from datasets.sources import folder_files, split_files
from processors.core.errors import UserError
from models.build import load_inpainter
from training.configure import load_config
from training.trainer import Trainer

RATE = 22050


def write_song(path: Path, seconds: float, seed: int) -> Path:
    """A stereo 'song': a 2 s bar of random notes repeated, with a little noise."""
    rng = np.random.default_rng(seed)
    bar = np.zeros(2 * RATE)
    n = RATE // 4
    t = np.arange(n) / RATE
    for k in range(8):
        f = rng.uniform(150, 900)
        bar[k * n:(k + 1) * n] = 0.3 * np.sin(2 * np.pi * f * t) * np.exp(-4 * t)
    wave = np.tile(bar, int(np.ceil(seconds / 2)))[:int(seconds * RATE)]
    stereo = np.stack([wave, 0.7 * wave], axis=1) + 0.005 * rng.standard_normal((len(wave), 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), stereo.astype(np.float32), RATE)
    return path


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("songs")
    for i, name in enumerate(["a/one__song.ogg", "a/one__guitar.ogg", "b/two.ogg", "b/three.ogg", "four.ogg"]):
        write_song(root / name, 12.0, i)
    return root


def tiny_music(config: str, data: Path, out: Path, *extra: str):
    return load_config(ROOT / "configs" / config, [
        f"data.root={data}", "data.test_files=[one__song.ogg]", "data.num_workers=0", "data.cache_dir=",
        "data.crop_frames=128", "data.val_items=2", "data.mask.max_gap_frames=60", "data.mask.margin_frames=8",
        "model.params.base_channels=4", "model.params.depth=2",
        "train.batch_size=2", "train.max_steps=1", "train.val_every=1", "train.ckpt_every=1",
        "train.warmup_steps=1", "train.num_threads=1", "train.device=cpu",
        f"train.runs_dir={out / 'runs'}", f"train.checkpoints_dir={out / 'checkpoints'}", "vocoder.n_iter=2", *extra])


def test_stems_of_a_song_share_a_split_and_listed_tests_are_the_test_split(songs):
    files = folder_files(songs)
    split = split_files(files, 0.2, 0.0, "__", ["one__song.ogg"])
    assert [f.name for f in split["test"]] == ["one__guitar.ogg", "one__song.ogg"]
    assert not {f.name for f in split["train"] + split["val"]} & {"one__guitar.ogg", "one__song.ogg"}
    hashed = split_files(files, 0.2, 0.2, "__")
    for part in hashed.values():             # either both stems or neither
        assert len({f.name for f in part} & {"one__guitar.ogg", "one__song.ogg"}) in (0, 2)
    with pytest.raises(UserError, match="data.test_files: 'nope.ogg'"):
        split_files(files, 0.2, 0.0, "__", ["nope.ogg"])


def test_guided_items_hold_a_guide_from_the_whole_song(tmp_path):
    cfg = tiny_music("unet_music_sim.yaml", tmp_path, tmp_path)
    rng = np.random.default_rng(0)
    song = rng.random((128, 900)).astype(np.float32)
    song[:, 300:600] = song[:, 600:900] = song[:, 0:300]   # three times the same 300 frames
    data = build_crops([song], cfg, seed=0, length=4, guided=True)
    assert isinstance(data, GuidedMelCrops)
    for i in range(4):
        item = data[i]
        assert {k: tuple(v.shape) for k, v in item.items()} == {
            "masked": (1, 128, 128), "target": (1, 128, 128), "mask": (1, 128, 128), "guide": (2, 128, 128)}
        gap = item["mask"][0, 0] > 0.5
        # a repetition holds the truth: the guide matches it exactly (score 1)
        assert np.allclose(item["guide"][1][:, gap].numpy(), 1.0, atol=1e-5)
        assert np.array_equal(item["guide"][0][:, gap].numpy(), item["target"][0][:, gap].numpy())
        assert not item["guide"][:, :, ~gap].any()
    assert "guide" not in build_crops([song], cfg, seed=0, length=1, guided=False)[0]


@pytest.mark.parametrize("config", ["unet_music_sim.yaml", "unet_music.yaml"])
def test_one_cpu_step_of_each_music_config(songs, tmp_path, config):
    cfg = tiny_music(config, songs, tmp_path)
    summary = Trainer(cfg).fit()
    assert summary["step"] == 1 and np.isfinite(summary["best_val_mse"])
    assert ("val_guide_mse" in summary) == (config == "unet_music_sim.yaml")
    model, _ = load_inpainter(Path(cfg.train.checkpoints_dir) / cfg.run_name / "last.pt")
    assert model.takes_guide == (config == "unet_music_sim.yaml")


def test_a_pix2pix_generator_takes_the_song_guide_as_the_unet_does(songs, tmp_path):
    # Pix2Pix's params are the U-Net's plus the discriminator's: a U-Net option reaches it too
    cfg = tiny_music("unet_music_sim.yaml", songs, tmp_path, "model.name=pix2pix", "model.params.disc_channels=4",
                     "loss.weights.adversarial=0.1")
    summary = Trainer(cfg).fit()
    assert summary["step"] == 1 and "val_guide_mse" in summary
    model, _ = load_inpainter(Path(cfg.train.checkpoints_dir) / cfg.run_name / "last.pt")
    assert model.takes_guide and model.generator.takes_guide


def test_guided_checkpoint_fills_a_stereo_song_in_stereo(songs, tmp_path):
    """scripts/inference.py with a guided music checkpoint: both gaps filled, every sample
    outside them bit-identical in each channel, the channels filled each from its own context;
    and --method similarity_wave likewise."""
    cfg = tiny_music("unet_music_sim.yaml", songs, tmp_path)
    Trainer(cfg).fit()
    ckpt = Path(cfg.train.checkpoints_dir) / cfg.run_name / "last.pt"
    song, sr = sf.read(str(songs / "four.ogg"), dtype="float32")
    gaps = [(round(3.0 * sr), round(3.5 * sr)), (round(7.2 * sr), round(8.2 * sr))]   # as --gaps rounds
    for s, e in gaps:
        song[s:e] = 0
    gapped = tmp_path / "gapped.wav"
    sf.write(str(gapped), song, sr, subtype="FLOAT")
    keep = np.ones(len(song), dtype=bool)
    for s, e in gaps:
        keep[s:e] = False
    for method in ("model", "similarity_wave"):
        out = tmp_path / f"{method}.wav"
        res = run_script("inference.py", "--checkpoint", ckpt, "--input", gapped, "--output", out,
                         "--gaps", "3.0:3.5,7.2:8.2", "--method", method)
        assert res.returncode == 0, res.stderr
        filled, _ = sf.read(str(out), dtype="float32")
        assert filled.shape == song.shape
        for c in range(2):
            assert np.array_equal(filled[keep, c], song[keep, c])
        for s, e in gaps:
            assert np.any(filled[s:e] != 0) and not np.array_equal(filled[s:e, 0], filled[s:e, 1])
