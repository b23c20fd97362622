"""Fill the log-Mel cache: python scripts/prepare_data.py --config configs/unet_ljspeech.yaml [--set k=v]

Decodes, resamples and analyses every file of data.root and data.extra_roots (all splits)
once into data.cache_dir, under a folder keyed by the audio settings. Safe to interrupt:
a re-run skips the entries already written. Training with the same data.cache_dir then
reads the Mels instead of decoding audio.
"""
import _path  # noqa: F401

from processors.core.cli import parser, run


def main(args) -> int:
    from pathlib import Path

    from datasets.mel_cache import MelCache, fill_cache
    from datasets.sources import data_files
    from processors.core.cli import check_output_folder
    from processors.core.errors import UserError
    from training.configure import load_config

    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    cfg = load_config(args.config, args.set)
    d = cfg.data
    if not d.cache_dir:
        raise UserError("data.cache_dir is not set: add it to the config or --set data.cache_dir=cache/mels")
    check_output_folder(Path(d.cache_dir), "data.cache_dir")     # before any file is decoded
    files = data_files(d)
    cache = MelCache(d.cache_dir, cfg.audio, d.dataset)
    counts = fill_cache(files, cache, desc="mels", jobs=args.jobs)
    if counts["failed"] == len(files):
        raise UserError(f"none of the {len(files)} files of data.root and data.extra_roots could be analysed "
                        f"(the warning above gives one reason)")
    print(f"{cache.dir}: {counts['cached']} new, {counts['skipped']} already cached, "
          f"{counts['failed']} unreadable or too short, of {len(files)} files")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="YAML config under configs/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set data.cache_dir=cache/mels (repeatable)")
    p.add_argument("--jobs", type=int, default=1, help="processes decoding files in parallel (default 1)")
    run(main, p)
