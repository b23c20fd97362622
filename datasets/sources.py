"""Lists of audio files per corpus layout, and the deterministic split by file."""
from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import Callable

from processors.audio_io import AUDIO_EXTENSIONS
from processors.errors import UserError

log = logging.getLogger(__name__)
SOURCES: dict[str, Callable[[Path], list[Path]]] = {}


def source(name: str):
    def wrap(fn):
        SOURCES[name] = fn
        return fn
    return wrap


def _require_dir(root: Path) -> None:
    if not root.exists():
        raise UserError(f"data folder not found: {root}")
    if not root.is_dir():
        raise UserError(f"data root is not a folder: {root}")


@source("ljspeech")
def ljspeech_files(root: Path) -> list[Path]:
    """LJSpeech-1.1 as published: ``metadata.csv`` (id|text|normalized text) and ``wavs/<id>.wav``.

    Malformed lines and ids without a wav are skipped with one warning that counts them.
    """
    _require_dir(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise UserError(f"{root}: not an LJSpeech-1.1 folder (no metadata.csv)")
    files, malformed, missing = [], 0, 0
    for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        clip_id = line.split("|", 1)[0].strip()
        if "|" not in line or not clip_id or "/" in clip_id:
            malformed += 1
            continue
        wav = root / "wavs" / f"{clip_id}.wav"
        if wav.is_file():
            files.append(wav)
        else:
            missing += 1
    if malformed or missing:
        log.warning("%s: skipped %d malformed lines and %d ids with no wav in wavs/", meta, malformed, missing)
    if not files:
        raise UserError(f"{meta}: names no wav that exists in {root / 'wavs'}")
    return files


@source("folder")
def folder_files(root: Path) -> list[Path]:
    """Every audio file (wav, flac, ogg, mp3) under ``root``, recursively."""
    _require_dir(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise UserError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found")
    return files


@source("cal500")
def cal500_files(root: Path) -> list[Path]:
    """CAL500: a folder of songs (mp3 as distributed; any audio file is accepted)."""
    return folder_files(root)


def list_files(dataset: str, roots: list[str]) -> list[Path]:
    """All files of every root, in a stable order."""
    files: list[Path] = []
    for root in roots:
        files.extend(SOURCES[dataset](Path(root)))
    return files


def _rank(path: Path) -> str:
    # Hash of the file name: a file keeps its split when others are added or moved.
    return hashlib.sha1(path.name.encode()).hexdigest()


def split_files(files: list[Path], val_fraction: float, test_fraction: float,
                test_names: list[str] | tuple = ()) -> dict[str, list[Path]]:
    """Deterministic split by file into train/val/test (every non-zero share gets >= 1 file).

    ``test_names`` (file names without extension) fixes the test set by name instead of by
    ``test_fraction``: a listed test set stays the same whatever other files come and go,
    and whatever format the files are stored in.
    """
    if test_names:
        named = set(test_names)
        test = sorted(f for f in files if f.stem in named)
        rest = sorted((f for f in files if f.stem not in named), key=_rank)
        # sized on the files outside the test set: the split does not depend on whether they are here
        n_val = min(len(rest), math.ceil(len(rest) * val_fraction)) if val_fraction > 0 else 0
        if len(rest) - n_val < 1:
            raise UserError(f"only {len(rest)} audio files outside the listed test files: too few to train")
        return {"val": sorted(rest[:n_val]), "test": test, "train": sorted(rest[n_val:])}
    ranked = sorted(files, key=_rank)
    n = len(ranked)
    n_val = min(n, math.ceil(n * val_fraction)) if val_fraction > 0 else 0
    n_test = min(n - n_val, math.ceil(n * test_fraction)) if test_fraction > 0 else 0
    if n - n_val - n_test < 1:
        raise UserError(f"only {n} audio files: too few to split into train/val/test")
    return {"val": sorted(ranked[:n_val]), "test": sorted(ranked[n_val:n_val + n_test]),
            "train": sorted(ranked[n_val + n_test:])}
