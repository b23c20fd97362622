"""Fill the log-Mel cache: python scripts/prepare_data.py --config configs/unet_ljspeech.yaml [--set k=v]

Decodes, resamples and analyses every file of data.root and data.extra_roots (all splits)
once into data.cache_dir, under a folder keyed by the audio settings. Safe to interrupt:
a re-run skips the entries already written. Training with the same data.cache_dir then
reads the Mels instead of decoding audio.
"""
import _path  # noqa: F401

from processors.core.cli import parser, run


def main(args) -> int:
    from datasets.mel_cache import MelCache, fill_cache
    from datasets.sources import data_files
    from processors.core.errors import UserError
    from training.configure import load_config

    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    cfg = load_config(args.config, args.set)
    d = cfg.data
    if not d.cache_dir:
        raise UserError("data.cache_dir is not set: add it to the config or --set data.cache_dir=cache/mels")
    files = data_files(d)
    cache = MelCache(d.cache_dir, cfg.audio, d.dataset)
    counts = fill_cache(files, cache, desc="mels", jobs=args.jobs)
    print(f"{cache.dir}: {counts['cached']} new, {counts['skipped']} already cached, "
          f"{counts['failed']} undecodable of {len(files)} files")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="YAML config under configs/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set data.cache_dir=cache/mels (repeatable)")
    p.add_argument("--jobs", type=int, default=1, help="processes decoding files in parallel (default 1)")
    run(main, p)
