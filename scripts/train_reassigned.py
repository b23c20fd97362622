"""Train the learned reassigned inverse: python scripts/train_reassigned.py --config configs/reassigned_ljspeech.yaml [--set k=v]

Then use it: scripts/invert_reassigned.py --method learned --checkpoint checkpoints/<run>/best.pt,
scripts/benchmark_reassigned.py --checkpoint checkpoints/<run>/best.pt.
"""
import _path  # noqa: F401

from processors.core.cli import parser, run, summary_line


def main(args) -> int:
    from training.configure import load_config
    from training.reassigned_training import train_reassigned_net

    print(summary_line(train_reassigned_net(load_config(args.config, args.set))))
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="configs/reassigned_ljspeech.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    run(main, p)
