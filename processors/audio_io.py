"""Reading and writing audio with soundfile (torchaudio's I/O needs torchcodec)."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from processors.core.atomic import atomic_path
from processors.core.errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
LOSSLESS = ("WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64", "CAF")   # soundfile formats that keep every sample
log = logging.getLogger(__name__)
# libsndfile's log for a WAV whose data chunk is cut short: "data : 66150 (should be 22020)"
_SHORT_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMED = 0x7FFFFFFF      # data sizes at or above this are "unknown length" markers, not a promise


@contextlib.contextmanager
def _quiet_decoder():
    """Silence file descriptor 2 while libsndfile decodes: its MP3 decoder (libmpg123) prints
    its complaints about a stream there itself, and read_audio's one-line error says what
    matters. Python's own sys.stderr is flushed first and restored with the descriptor."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file as it is.

    Returns ``(samples, sample_rate)`` with samples float32 of shape (N, C) in [-1, 1].
    Raises UserError for a missing, empty, unreadable or truncated file.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"audio file not found: {path}")
    if path.is_dir():
        raise UserError(f"expected an audio file, got a folder: {path}")
    if path.stat().st_size == 0:
        raise UserError(f"audio file is empty: {path}")
    try:
        with _quiet_decoder(), sf.SoundFile(str(path)) as f:
            header = f.extra_info
            samples = f.read(dtype="float32", always_2d=True)
            sr = f.samplerate
    except Exception as exc:  # soundfile raises several types for corrupt data
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "does not exist" in reason:      # libsndfile's words for a stream it cannot parse (the file is there)
            reason = "libsndfile finds no audio stream it can decode in it"
        raise UserError(f"cannot decode audio {path}: {reason}") from exc
    if samples.shape[0] == 0:
        raise UserError(f"audio file has no samples: {path}")
    short = _SHORT_DATA.search(header)
    if short and int(short[2]) < int(short[1]) < _STREAMED:   # libsndfile would quietly read what is there
        promised = samples.shape[0] * int(short[1]) / max(1, int(short[2]))
        raise UserError(f"audio file is truncated: {path} (its header promises {promised / sr:.3f} s, "
                        f"it holds {samples.shape[0] / sr:.3f} s)")
    return samples, int(sr)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(N, C) -> (N,) by averaging channels."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of a 1-D float array (torchaudio's sinc resampler)."""
    if sr_in == sr_out:
        return wave.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), sr_in, sr_out)
    return out.numpy()


def load_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read, downmix and resample to ``sample_rate``: float32 (N,).

    Non-finite samples (NaN/Inf) are replaced by zeros: one broken sample
    should not poison a whole spectrogram.
    """
    samples, sr = read_audio(path)
    wave = to_mono(samples)
    if not np.isfinite(wave).all():
        log.warning("%s: %d non-finite samples (NaN/Inf) read as 0", path, int((~np.isfinite(wave)).sum()))
        wave = np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
    return resample(wave, sr, sample_rate)


def output_subtype(src: str | Path, dst: str | Path) -> str | None:
    """The input file's sample format (soundfile subtype) where ``dst``'s container can hold
    it, else None (the container's default): a 24-bit wav filled into a flac stays 24-bit,
    so its samples outside the gaps stay bit-identical."""
    subtype = sf.info(str(src)).subtype
    return subtype if sf.check_format(Path(dst).suffix.lstrip(".").upper() or "WAV", subtype) else None


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write atomically (temp file in the same folder, then rename): never a half-written file."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    try:
        with atomic_path(path) as tmp:
            sf.write(str(tmp), samples, sample_rate, subtype=subtype, format=fmt)
    except Exception as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UserError(f"cannot write audio {path}: {reason}") from exc
