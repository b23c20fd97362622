"""On-disk cache of log-Mels: each file is decoded, resampled and analysed once.

Layout: ``<cache_dir>/<key>/<entry>.npy``, a float32 normalised log-Mel (n_mels, T), and
``<entry>.json`` beside it (sample count and peak after resampling: what the short and
silent checks of ``compute_mels`` need, so they follow ``data.min_file_seconds`` even for
Mels cached under another value).

- ``key`` hashes every audio parameter and the dataset kind: changing any of them starts a
  new cache, never a stale read.
- ``entry`` hashes the file's resolved path, size and mtime: an edited file is analysed again.
- The .npy is written last and atomically (temp file + rename), so its presence means the
  entry is complete; a kill mid-write leaves only a temp file that nothing reads.
- A file that cannot be decoded is never cached: it is re-tried, and counted, every run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from processors.core.atomic import atomic_path, write_text_atomic
from processors.audio_io import load_mono
from processors.core.errors import UserError
from processors.mel import MelSpectrogram, log_mel

log = logging.getLogger(__name__)
CACHE_VERSION = 1      # bump when what an entry holds changes


def cache_key(audio, dataset: str) -> str:
    """16 hex digits naming the cache of one set of audio parameters and one dataset kind."""
    params = {"version": CACHE_VERSION, "dataset": dataset, "audio": dataclasses.asdict(audio)}
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def entry_name(path: Path) -> str:
    """The entry of one audio file: sha1 of its resolved path, size and modification time."""
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()


def analyse_file(path: Path, audio, mel_fn) -> tuple[np.ndarray, dict]:
    """Decode, downmix, resample and analyse one file.

    Returns the normalised log-Mel float32 (n_mels, N // hop + 1) and
    ``{"samples": N, "peak": max |x|}`` of the resampled waveform.
    Raises UserError when the file cannot be decoded or is too short for one STFT frame.
    """
    wave = load_mono(path, audio.sample_rate)
    if len(wave) <= audio.n_fft // 2:           # the centred STFT's reflect padding needs more
        raise UserError(f"{path}: {len(wave)} samples at {audio.sample_rate} Hz, too short to analyse "
                        f"(n_fft {audio.n_fft})")
    mel = log_mel(mel_fn, wave)
    return mel, {"samples": int(len(wave)), "peak": float(np.max(np.abs(wave)))}


_worker_mel_fn = None     # one MelSpectrogram per worker process of analyse_many


def _analyse_in_worker(path: Path, audio) -> tuple[Path, tuple[np.ndarray, dict] | str]:
    global _worker_mel_fn
    torch.set_num_threads(1)          # the processes are the parallelism
    if _worker_mel_fn is None:
        _worker_mel_fn = MelSpectrogram(audio)
    return path, _analyse_or_message(path, audio, _worker_mel_fn)


def _analyse_or_message(path: Path, audio, mel_fn) -> tuple[np.ndarray, dict] | str:
    try:
        return analyse_file(path, audio, mel_fn)
    except UserError as exc:
        return str(exc)


def analyse_many(files: list[Path], audio, jobs: int):
    """``analyse_file`` over ``files`` in ``jobs`` processes (decoding a 4-minute ogg takes
    seconds, so a corpus of hours would hold a run up for minutes on one core).
    Yields ``(path, (mel, stats))`` or ``(path, error message)`` in completion order."""
    import concurrent.futures as cf
    import multiprocessing
    # spawn, not fork: a forked child of a process that has run torch's thread pool can hang
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_analyse_in_worker, p, audio) for p in files]
        for future in cf.as_completed(futures):
            yield future.result()


def _mmap_budget() -> int:
    """How many entries may stay memory-mapped. CPython keeps a duplicate file descriptor
    per map, so stay well under the open-file limit; entries beyond it are read into memory."""
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 0
    return max(0, soft // 2 - 64) if soft != resource.RLIM_INFINITY else 1 << 20


class MelCache:
    """The cache folder of one audio configuration: ``load`` an entry or ``store`` one."""

    def __init__(self, root: str | Path, audio, dataset: str):
        self.audio = audio
        self.dir = Path(root) / cache_key(audio, dataset)
        self.params = {"dataset": dataset, "audio": dataclasses.asdict(audio)}
        self._mapped, self._budget = 0, _mmap_budget()

    def _paths(self, path: Path) -> tuple[Path, Path]:
        name = entry_name(path)
        return self.dir / f"{name}.npy", self.dir / f"{name}.json"

    def has(self, path: Path) -> bool:
        return self._paths(path)[0].is_file()

    def load(self, path: Path) -> tuple[np.ndarray, dict] | None:
        """The cached (Mel (n_mels, T) float32, memory-mapped while the budget lasts; stats),
        or None when there is no complete, readable entry."""
        npy, meta = self._paths(path)
        if not npy.is_file():
            return None
        mmap = self._mapped < self._budget
        try:
            stats = json.loads(meta.read_text(encoding="utf-8"))
            mel = np.load(npy, mmap_mode="r" if mmap else None)
            ok = mel.ndim == 2 and mel.shape[0] == self.audio.n_mels and mel.dtype == np.float32
            ok = ok and isinstance(stats.get("samples"), int) and isinstance(stats.get("peak"), float)
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cache entry, analysing the file again (%s)", npy, exc)
            return None
        if not ok:
            log.warning("%s: cache entry does not fit the audio settings, analysing the file again", npy)
            return None
        self._mapped += mmap
        return mel, stats

    def store(self, path: Path, mel: np.ndarray, stats: dict) -> None:
        """Write one entry: the stats first, then the Mel atomically (its presence commits the entry)."""
        npy, meta = self._paths(path)
        if not (self.dir / "params.json").is_file():     # for people: what this folder holds
            write_text_atomic(self.dir / "params.json", json.dumps(self.params, indent=1))
        write_text_atomic(meta, json.dumps({**stats, "file": str(path)}))
        with atomic_path(npy) as tmp, open(tmp, "wb") as f:   # a file object: np.save adds no suffix
            np.save(f, np.ascontiguousarray(mel, dtype=np.float32))


def analyse_files(files: list[Path], audio, cache: "MelCache | None" = None, jobs: int = 1,
                  desc: str = "mels"):
    """``analyse_file`` over every one of ``files``: in ``jobs`` processes when > 1 (yielded
    in completion order), else here (in the order given). Each Mel is stored in ``cache`` as
    it comes, so an interrupted run resumes where it stopped.
    Yields ``(path, (mel, stats))`` or ``(path, error message)``."""
    if jobs > 1 and len(files) > 1:
        results = analyse_many(files, audio, jobs)
    else:
        mel_fn = MelSpectrogram(audio)
        results = ((p, _analyse_or_message(p, audio, mel_fn)) for p in files)
    for path, hit in tqdm(results, total=len(files), desc=desc, unit="file", leave=False, disable=len(files) < 20):
        if cache is not None and not isinstance(hit, str):
            cache.store(path, *hit)
        yield path, hit


def fill_cache(files: list[Path], cache: MelCache, desc: str = "cache", jobs: int = 1) -> dict[str, int]:
    """Analyse and store every file not yet cached, in ``jobs`` processes when > 1.

    Returns counts ``{"cached": new entries, "skipped": already there, "failed": undecodable or too short}``.
    """
    todo = [p for p in files if not cache.has(p)]
    counts = {"cached": 0, "skipped": len(files) - len(todo), "failed": 0}
    first_failure = None
    for _, hit in analyse_files(todo, cache.audio, cache, jobs, desc):
        if isinstance(hit, str):
            counts["failed"] += 1
            first_failure = first_failure or hit
        else:
            counts["cached"] += 1
    if first_failure:
        log.warning("%s: %d files could not be analysed (e.g. %s)", desc, counts["failed"], first_failure)
    return counts
