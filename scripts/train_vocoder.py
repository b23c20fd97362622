"""Train a learned vocoder's net: python scripts/train_vocoder.py --config configs/melspec2spec_ljspeech.yaml [--set k=v]

Then use it: --vocoder melspec2spec --vocoder-checkpoint checkpoints/melspec2spec_ljspeech/best.pt
(scripts/inference.py, scripts/evaluate.py, scripts/benchmark_vocoder.py).
"""
import _path  # noqa: F401

from processors.core.cli import parser, run, summary_line


def main(args) -> int:
    from training.configure import load_config
    from training.vocoder_training import train_vocoder_net

    summary = train_vocoder_net(load_config(args.config, args.set))
    print(summary_line(summary))
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="configs/melspec2spec_ljspeech.yaml or configs/degli_ljspeech.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    run(main, p)
