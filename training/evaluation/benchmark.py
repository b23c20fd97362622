"""Speed benchmark: the data path, training steps and inference, each with its peak memory.

Every measurement runs in a fresh (spawned) process, so no phase warms another's caches and
its peak resident memory is its own: the high-water mark of the process's address space
(``VmHWM``), which exec starts anew, not ``ru_maxrss``, which Linux carries across exec (a
spawned phase would report at least its parent's peak). The one-off start-up (imports,
building the model, the first call) is excluded from every timing.

- data: training examples/s of the data path alone, from the Mel cache (memory-mapped)
  vs decoding, resampling and analysing the file of every item on the fly (the seeds' way)
- train: training examples/s of the whole step (forward, loss, backward, AdamW) with the
  real data path vs one synthetic batch kept in memory
- infer: wall time to fill one 200 ms gap in a 10-second and a 10-minute file (a real clip
  tiled), with an untrained model of the config (the cost does not depend on the weights)
"""
from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datasets.mel_cache import MelCache, fill_cache
from datasets.mel_dataset import MaskedMelCrops, compute_mels, crop_item
from datasets.sources import data_files
from processors.audio_io import load_mono, read_audio, to_mono
from processors.mel import MelSpectrogram, log_mel


class DecodedCrops(Dataset):
    """The seeds' data path: every item decodes, resamples and analyses a whole file.

    Item ``i`` -> the same dict of (1, n_mels, crop_frames) tensors as MaskedMelCrops.
    """

    def __init__(self, files: list[Path], audio, crop_frames: int, mask_cfg, seed: int, length: int):
        self.files, self.audio, self.crop, self.mask_cfg = files, audio, crop_frames, mask_cfg
        self.seed, self.length = seed, length
        self.mel = MelSpectrogram(audio)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        wave = load_mono(self.files[int(rng.integers(len(self.files)))], self.audio.sample_rate)
        mel = log_mel(self.mel, wave)
        return crop_item(mel, self.crop, self.mask_cfg, rng)


def _peak_mib() -> float:
    """This process's peak resident memory (MiB) since its last exec."""
    # VmHWM belongs to the address space, which exec replaces; ru_maxrss is kept across exec
    # (a spawned phase would report max(parent's peak, its own)), so it is only the fallback
    # where /proc is absent (macOS), and there its units are bytes, not Linux's KiB.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024   # kB
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024


def _rate(batches, steps: int, batch_size: int, step=lambda b: None) -> float:
    """Examples/s over ``steps`` batches after one warm-up batch."""
    it = iter(batches)
    step(next(it))
    start = time.perf_counter()
    for _ in range(steps):
        step(next(it))
    return steps * batch_size / (time.perf_counter() - start)


def _setup(cfg, threads: int):
    torch.set_num_threads(threads)
    return data_files(cfg.data), cfg.train.batch_size


def data_rate(cfg, source: str, steps: int, threads: int) -> dict:
    """Examples/s of the data path alone: ``source`` 'cache' or 'decode'."""
    files, b = _setup(cfg, threads)
    d = cfg.data
    if source == "cache":
        cache = MelCache(d.cache_dir, cfg.audio, d.dataset)
        mels = compute_mels(files, cfg.audio, d.min_file_seconds, 1.0, cache=cache)
        data = MaskedMelCrops(mels, d.crop_frames, d.mask, cfg.seed, (steps + 1) * b)
    else:
        data = DecodedCrops(files, cfg.audio, d.crop_frames, d.mask, cfg.seed, (steps + 1) * b)
    rate = _rate(DataLoader(data, batch_size=b, num_workers=d.num_workers), steps, b)
    return {"examples/s": rate, "peak MiB": _peak_mib()}


def train_rate(cfg, source: str, steps: int, threads: int) -> dict:
    """Examples/s of whole training steps: ``source`` 'cache' (the real loader) or 'synthetic'."""
    from training.trainer import Trainer
    _setup(cfg, threads)
    trainer = Trainer(cfg)
    loader = trainer.task.train_batches(trainer.step)
    if source == "synthetic":
        batch = next(iter(loader))
        loader = (batch for _ in range(steps + 1))
    rate = _rate(loader, steps, cfg.train.batch_size, trainer.train_step)
    return {"examples/s": rate, "peak MiB": _peak_mib()}


def infer_time(cfg, seconds: float, threads: int, gap_ms: float = 200.0) -> dict:
    """Seconds to fill one ``gap_ms`` gap in the middle of a real clip tiled to ``seconds``."""
    from models import build_model
    from processors.inpaint import inpaint_audio
    from models.vocoder_nets import build_vocoder
    files, _ = _setup(cfg, threads)
    samples, sr = read_audio(files[0])
    clip = to_mono(samples)
    wave = np.tile(clip, int(np.ceil(seconds * sr / len(clip))))[:int(seconds * sr)]
    model, mel_fn, vocoder = build_model(cfg).eval(), MelSpectrogram(cfg.audio), build_vocoder(cfg)
    # a model that searches a corpus needs one: the benchmark's other clips (the search's cost
    # grows with the corpus: about 20 ms a gap over the shipped model's 37 minutes)
    if model.searches_corpus:
        model.index_corpus([log_mel(mel_fn, load_mono(f, cfg.audio.sample_rate))
                            for f in (files[1:] or files)])
    mid, n = len(wave) // 2, int(gap_ms * sr / 1000)
    gap = [(mid - n // 2, mid - n // 2 + n)]
    # Warm-up on the same file (another gap): the first call also pays one-off costs
    # (lazy kernels, first touch of the output buffer's pages) that are not per-gap work.
    inpaint_audio(wave, sr, [(5 * sr, 5 * sr + n)], model, cfg, mel_fn, vocoder)
    start = time.perf_counter()
    inpaint_audio(wave, sr, gap, model, cfg, mel_fn, vocoder)
    return {"seconds": time.perf_counter() - start, "peak MiB": _peak_mib()}


def idle(cfg, threads: int) -> dict:
    """The floor every phase starts from: the interpreter with torch and this package imported."""
    return {"peak MiB": _peak_mib()}


def _in_fresh_process(fn, *args) -> dict:
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def run_benchmark(cfg, steps: int, threads: int, log=print) -> list[tuple[str, str, dict]]:
    """Every phase, each in its own process: rows of (group, variant, results). Works on a copy
    of ``cfg`` whose cache, runs and checkpoints go to a temporary folder; ``cfg`` is left as it is."""
    rows = []
    cfg = copy.deepcopy(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        cfg.data.cache_dir = str(Path(tmp) / "cache")
        cfg.train.runs_dir, cfg.train.checkpoints_dir = str(Path(tmp) / "runs"), str(Path(tmp) / "ckpt")
        files = data_files(cfg.data)
        start = time.perf_counter()
        fill_cache(files, MelCache(cfg.data.cache_dir, cfg.audio, cfg.data.dataset), desc="cache")
        log(f"filled the cache of {len(files)} files in {time.perf_counter() - start:.1f} s (once)")
        phases = [("start-up", "python + torch", idle, ()),
                  ("data path", "from the cache", data_rate, ("cache", steps)),
                  ("data path", "decoding per item", data_rate, ("decode", steps)),
                  ("training", "real data path (cache)", train_rate, ("cache", steps)),
                  ("training", "synthetic batch in memory", train_rate, ("synthetic", steps)),
                  ("inference", "200 ms gap in a 10 s file", infer_time, (10.0,)),
                  ("inference", "200 ms gap in a 10 min file", infer_time, (600.0,))]
        for group, variant, fn, args in phases:
            for name in ("runs_dir", "checkpoints_dir"):      # each Trainer a run of its own
                setattr(cfg.train, name, str(Path(tmp) / f"{name}_{len(rows)}"))
            result = _in_fresh_process(fn, cfg, *args, threads)
            log(f"{group}: {variant}: " + ", ".join(f"{k} {v:.4g}" for k, v in result.items()))
            rows.append((group, variant, result))
    return rows


def format_table(rows: list[tuple[str, str, dict]]) -> str:
    """A markdown table of :func:`run_benchmark`'s rows."""
    lines = ["| measure | variant | result | peak memory |", "|---|---|---|---|"]
    for group, variant, r in rows:
        value = (f"{r['examples/s']:.1f} examples/s" if "examples/s" in r
                 else f"{r['seconds']:.3f} s" if "seconds" in r else "-")
        lines.append(f"| {group} | {variant} | {value} | {r['peak MiB']:.0f} MiB |")
    return "\n".join(lines)
