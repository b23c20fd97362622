"""Speed benchmark: python scripts/benchmark.py [--data ../shared/data/LJSpeech-mini] [--steps 20]

Prints, in one run: training examples/s of the data path alone (Mel cache vs decoding
every item's file), of whole training steps (real data path vs a synthetic batch), the
time to fill one 200 ms gap in a 10-second and a 10-minute file, and the peak memory of
each (every measurement runs in a fresh process). Timings are wall clock.
"""
import os

import _path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # idle OpenMP threads must not spin on a shared CPU

from processors.core.cli import parser, run  # noqa: E402

DEFAULT_CONFIG = "configs/unet_ljspeech.yaml"
DEFAULT_DATA = _path.ROOT.parent / "shared" / "data" / "LJSpeech-mini"


def main(args) -> int:
    import platform
    from pathlib import Path

    from processors.core.cli import check_option
    from training.evaluation.benchmark import format_table, run_benchmark
    from training.configure import load_config

    check_option("--steps", args.steps, 1)
    check_option("--threads", args.threads, 1)
    if not Path(args.data).is_dir():
        print(f"skipped: no clips at {args.data} (the benchmark needs real recordings; give --data)")
        return 0
    cfg = load_config(args.config, [f"data.root={args.data}", "train.device=cpu", *args.set])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# Speed benchmark\n\n- {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads {args.threads}, load average {load:.1f} at start\n"
          f"- config {args.config}, data {args.data}, batch {cfg.train.batch_size}, {args.steps} timed batches\n")
    rows = run_benchmark(cfg, args.steps, args.threads, log=lambda m: print(f"  {m}", flush=True))
    print("\n" + format_table(rows))
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", default=str(_path.ROOT / DEFAULT_CONFIG), help=f"default {DEFAULT_CONFIG}")
    p.add_argument("--set", action="append", default=[], help="config override a.b=value (repeatable)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="LJSpeech-1.1-layout folder")
    p.add_argument("--steps", type=int, default=20, help="timed batches per measurement (default 20)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    run(main, p)
