"""make demo: train a small U-Net on a corpus it makes itself, then fill a gap in an unseen clip."""
import _path  # noqa: F401

from training.cli import parser, run


def main(args) -> int:
    import time
    from pathlib import Path

    from training.config import load_config
    from training.demo import run_demo

    start = time.time()
    cfg = load_config(args.config, args.set)
    result = run_demo(cfg, Path(args.out))
    for k, v in result.items():
        print(f"{k}: {v:.5g}" if isinstance(v, float) else f"{k}: {v}")
    print(f"wrote {args.out}/{{gapped.wav,filled.wav,comparison.png}}, TensorBoard logs in "
          f"{cfg.train.runs_dir}/{cfg.run_name} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--out", default="results/demo")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    run(main, p)
