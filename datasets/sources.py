"""Lists of audio files per corpus layout, the deterministic split by file, and the files an
evaluation scores (:func:`evaluation_files`: one part of a run's split)."""
from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

from processors.audio_io import AUDIO_EXTENSIONS
from processors.core.errors import UserError
from processors.core.registry import Registry

log = logging.getLogger(__name__)
SOURCES = Registry("dataset")   # name -> fn(root) -> list of audio files


source = SOURCES.register


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


def data_files(d) -> list[Path]:
    """All files of a config's data section (``data.root``, then ``data.extra_roots``); an error
    names the key of the root that failed."""
    files: list[Path] = []
    for i, root in enumerate([d.root, *d.extra_roots]):
        try:
            files.extend(list_files(d.dataset, [root]))
        except UserError as exc:
            raise UserError(f"{'data.root' if i == 0 else f'data.extra_roots[{i - 1}]'}: {exc}") from None
    return unique_files(files)


def unique_files(files: list[Path]) -> list[Path]:
    """``files`` without the repeats of one file (a folder given twice, or inside another)."""
    kept: dict[Path, Path] = {}
    for f in files:
        kept.setdefault(f.resolve(), f)
    return list(kept.values())


def group_key(path: Path, separator: str = "") -> str:
    """The name a file is split by: its name, or with ``separator`` the part before it
    ("x__song.ogg" and "x__guitar.ogg" -> "x" with "__"), so a song's stems stay together."""
    name = path.name
    return name.split(separator, 1)[0] if separator and separator in name else name


def _rank(key: str) -> str:
    # Hash of the group's name: a file keeps its split when others are added or moved.
    return hashlib.sha1(key.encode()).hexdigest()


def split_files(files: list[Path], val_fraction: float, test_fraction: float, separator: str = "",
                test_files: list[str] | tuple = ()) -> dict[str, list[Path]]:
    """Deterministic split into train/val/test by group (every non-zero share gets >= 1 group).

    Groups are :func:`group_key` of each file. With ``test_files`` (file names or group keys)
    those groups are the test split, ``test_fraction`` is unused, and a listed name that
    matches no file is a UserError; val takes its share of the remaining groups by hash.
    """
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(group_key(f, separator), []).append(f)
    # a listed name is a file name or group key, with or without its extension (a listed test
    # set holds whatever format the files are stored in)
    by_stem = {Path(k).stem: k for k in groups}
    wanted = {group_key(Path(name), separator) for name in test_files}
    missing = sorted(w for w in wanted if w not in groups and w not in by_stem)
    if missing:
        raise UserError(f"data.test_files: {missing[0]!r} matches no file of the data roots "
                        f"(data.test_files=[] holds out data.test_fraction of the files instead)")
    listed = {w if w in groups else by_stem[w] for w in wanted}
    ranked = sorted((k for k in groups if k not in listed), key=_rank)
    n = len(ranked) + len(listed)
    n_val = min(len(ranked), math.ceil(n * val_fraction)) if val_fraction > 0 else 0
    if listed:
        test, rest = sorted(listed), ranked[n_val:]
    else:
        n_test = min(n - n_val, math.ceil(n * test_fraction)) if test_fraction > 0 else 0
        test, rest = ranked[n_val:n_val + n_test], ranked[n_val + n_test:]
    if len(rest) < 1:
        raise UserError(f"only {n} audio files (groups): too few to split into train/val/test")

    def members(keys):
        return sorted(f for k in keys for f in groups[k])
    return {"val": members(ranked[:n_val]), "test": members(test), "train": members(rest)}


def split_for(cfg, files: list[Path]) -> dict[str, list[Path]]:
    """``split_files`` with the run's data settings (the one place training and evaluation split)."""
    d = cfg.data
    return split_files(files, d.val_fraction, d.test_fraction, d.group_separator, d.test_files)


def evaluation_files(data: str | list[str], split: str, cfg, limit: int | None = None) -> list[Path]:
    """Audio files under ``data`` (one folder or several): each an LJSpeech-1.1 root (it
    has metadata.csv) or any folder of audio. ``split`` 'all', or 'train'/'val'/'test' of the training run's own split:
    the split is computed over the run's data roots (``cfg.data``), exactly as in
    training, and only files of ``data`` in that part are kept, so a model is never
    scored on clips it learnt from."""
    roots = [Path(d) for d in ([data] if isinstance(data, str) else data)]
    files = []
    for root in roots:
        files += SOURCES["ljspeech" if (root / "metadata.csv").is_file() else "folder"](root)
    files = unique_files(files)
    where = ", ".join(map(str, roots))
    by_name: dict[str, Path] = {}
    for f in files:         # results, plots and gap positions are keyed by the file's name
        if by_name.setdefault(f.name, f) != f:
            raise UserError(f"two files named {f.name} ({by_name[f.name]}, {f}): rename one, or evaluate "
                            f"their folders one at a time")
    d = cfg.data
    if split == "test" and d.test_files:     # a listed test set needs no training data to rebuild
        named = {group_key(Path(n), d.group_separator) for n in d.test_files}
        named |= {Path(n).stem for n in named}
        files = [f for f in files if {f.name, f.stem, group_key(f, d.group_separator)} & named]
        if not files:
            raise UserError(f"{where}: none of the {len(named)} test files of run {cfg.run_name} "
                            f"(data.test_files) is there")
    elif split != "all":
        try:
            trained_on = data_files(d)
        except UserError as exc:
            raise UserError(f"--split {split} needs the run's training data to rebuild its split: {exc}") from None
        part = {p.resolve() for p in split_for(cfg, trained_on)[split]}
        files = [f for f in files if f.resolve() in part]
        if not files:
            raise UserError(f"{where}: no file is in the '{split}' split of run {cfg.run_name}")
    return files[:limit] if limit else files
