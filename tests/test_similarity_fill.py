"""The similarity fills on whole recordings: waveform copy (stereo), Mel guide, inference."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from conftest import ROOT
from models.classical import SimilarityMelFill, linear_interpolation
from processors.core.errors import UserError
from processors.inpaint import inpaint_audio, locate, window_mels
from processors.mel import MelSpectrogram
from processors.similarity_fill import refine_lag, similarity_wave_fill
from models.vocoder_nets import build_vocoder
from training.configure import load_config

RATE = 22050


@pytest.fixture(scope="module")
def cfg():
    return load_config(ROOT / "configs" / "unet_music_sim.yaml", ["vocoder.n_iter=2", "data.test_files=[]"])


def bars(seconds: float, seed: int = 0, sr: int = RATE) -> np.ndarray:
    """A stereo 'song': one 2 s bar of random decaying notes, repeated; the right channel
    holds other notes than the left, so a copy of the wrong channel would show."""
    rng = np.random.default_rng(seed)
    n = sr // 4
    t = np.arange(n) / sr
    bar = np.zeros((2 * sr, 2))
    for k in range(8):
        for c in range(2):
            bar[k * n:(k + 1) * n, c] = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 900) * t) * np.exp(-4 * t)
    song = np.tile(bar, (int(np.ceil(seconds / 2)), 1))[:int(seconds * sr)]
    return (song + 1e-3 * rng.standard_normal(song.shape)).astype(np.float32)


def outside(n: int, gaps) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    for s, e in gaps:
        keep[s:e] = False
    return keep


def test_wave_fill_copies_the_repetition_per_channel_and_keeps_the_rest(cfg):
    clean = bars(30.0)
    gaps = [(int(9.1 * RATE), int(10.3 * RATE)), (int(21.6 * RATE), int(23.9 * RATE))]
    gapped = clean.copy()
    for s, e in gaps:
        gapped[s:e] = 0
    mel_fn = MelSpectrogram(cfg.audio)
    out, details = similarity_wave_fill(gapped, RATE, gaps, cfg, mel_fn)
    assert out.shape == clean.shape and out.dtype == clean.dtype
    keep = outside(len(clean), gaps)
    for c in range(2):                                   # bit-identical outside, per channel
        assert np.array_equal(out[keep, c], gapped[keep, c])
    for (s, e), d in zip(gaps, details):
        assert (d["source"] - s) % (2 * RATE) == 0       # a whole number of bars away: the same music
        assert d["score"] > 0.9
        fade = round(cfg.similarity.crossfade_ms * RATE / 1000)
        middle = slice(s + fade, e - fade)                # away from the seams, the copy is the truth
        assert np.max(np.abs(out[middle] - clean[middle])) < 0.01
    assert not np.array_equal(out[gaps[0][0]:gaps[0][1], 0], out[gaps[0][0]:gaps[0][1], 1])


def test_wave_fill_of_a_mono_recording_keeps_its_shape(cfg):
    clean = bars(12.0)[:, 0]
    gap = (int(5.05 * RATE), int(5.55 * RATE))
    gapped = clean.copy()
    gapped[gap[0]:gap[1]] = 0
    out, _ = similarity_wave_fill(gapped, RATE, [gap], cfg, MelSpectrogram(cfg.audio))
    assert out.shape == clean.shape
    assert np.array_equal(out[outside(len(clean), [gap])], gapped[outside(len(clean), [gap])])


def test_refine_lag_finds_the_sample_offset():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20000)
    x[12000:16000] = x[2037:6037]                        # planted copy, 9963 samples later
    assert refine_lag(x, (13000, 14000), -9963 + 40, radius=64, width=500) == -9963
    assert refine_lag(x, (13000, 14000), -9963 - 50, radius=64, width=500) == -9963


def test_mel_similarity_fill_uses_the_guide_and_falls_back_without_one(cfg):
    clean = bars(20.0)[:, 0]
    gap = (int(11.0 * RATE), int(12.0 * RATE))
    gapped = clean.copy()
    gapped[gap[0]:gap[1]] = 0
    mel_fn = MelSpectrogram(cfg.audio)
    filled, details = inpaint_audio(gapped, RATE, [gap], SimilarityMelFill(), cfg, mel_fn, build_vocoder(cfg))
    keep = outside(len(clean), [gap])
    assert np.array_equal(filled[keep], gapped[keep])
    d = details[0]
    hole = d["mask"][0] > 0.5
    truth = window_mels(clean, RATE, locate(gap, len(clean), RATE, cfg), cfg, mel_fn).numpy()
    line = linear_interpolation(torch.from_numpy(d["masked"])[None, None], torch.from_numpy(d["mask"])[None, None])
    err_sim = np.abs(d["pred"][:, hole] - truth[:, hole]).mean()
    err_line = np.abs(line[0, 0].numpy()[:, hole] - truth[:, hole]).mean()
    assert err_sim < 0.5 * err_line                     # the copied bar, within the half-hop grid shift
    masked, mask = torch.zeros(1, 1, 8, 10), torch.zeros(1, 1, 8, 10)
    mask[..., 4:6] = 1
    masked[..., :4] = 0.5
    masked[..., 6:] = 0.5
    out = SimilarityMelFill()(masked, mask, torch.zeros(1, 2, 8, 10))          # no match: interpolation
    assert torch.allclose(out, torch.full_like(out, 0.5))


def test_guide_detail_keeps_the_copied_bar_that_a_mel_inverse_blurs(cfg):
    # SimilarityMelFill stands in for a guided model whose Mel agrees with the copy: with
    # guide_detail the fill is the copied bar's own samples; without, Griffin-Lim from a Mel
    # inverse, whose phase is not the song's
    clean = bars(20.0)[:, 0]
    gap = (int(11.0 * RATE), int(12.0 * RATE))
    gapped = clean.copy()
    gapped[gap[0]:gap[1]] = 0
    mel_fn, vocoder = MelSpectrogram(cfg.audio), build_vocoder(cfg)
    detail_cfg = dataclasses.replace(cfg, inference=dataclasses.replace(cfg.inference, guide_detail=True))
    plain_cfg = dataclasses.replace(cfg, inference=dataclasses.replace(cfg.inference, guide_detail=False))
    plain, _ = inpaint_audio(gapped, RATE, [gap], SimilarityMelFill(), plain_cfg, mel_fn, vocoder)
    kept, _ = inpaint_audio(gapped, RATE, [gap], SimilarityMelFill(), detail_cfg, mel_fn, vocoder)
    keep = outside(len(clean), [gap])
    assert np.array_equal(kept[keep], gapped[keep])

    def snr(x):
        middle = slice(gap[0] + RATE // 10, gap[1] - RATE // 10)
        return 10 * np.log10(np.sum(clean[middle] ** 2) / np.sum((x[middle] - clean[middle]) ** 2))
    assert snr(kept) > 20 and snr(plain) < 5


def test_guide_detail_needs_a_context_vocoder_and_leaves_the_baselines_alone(cfg):
    from training.evaluation.evaluate import build_systems
    detail_cfg = dataclasses.replace(cfg, inference=dataclasses.replace(cfg.inference, guide_detail=True))
    clean = bars(12.0)[:, 0]
    gap = (int(5.05 * RATE), int(5.55 * RATE))
    gl_cfg = dataclasses.replace(detail_cfg, vocoder=dataclasses.replace(cfg.vocoder, method="griffinlim"))
    with pytest.raises(UserError, match=r"^inference.guide_detail: the griffinlim vocoder cannot"):
        inpaint_audio(clean, RATE, [gap], SimilarityMelFill(), gl_cfg, MelSpectrogram(cfg.audio), build_vocoder(gl_cfg))
    detail_cfg = dataclasses.replace(detail_cfg, inference=dataclasses.replace(detail_cfg.inference, lpc_fade_ms=20.0))
    systems = build_systems([("model", SimilarityMelFill(), detail_cfg)], detail_cfg, ["similarity_mel", "linear"])
    assert [s.cfg.inference.guide_detail for s in systems] == [True, False, False]
    assert [s.cfg.inference.lpc_fade_ms for s in systems] == [20.0, 0.0, 0.0]     # the output stage is the model's
