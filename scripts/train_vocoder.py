"""Train a learned vocoder's net: python scripts/train_vocoder.py --config configs/melspec2spec_ljspeech.yaml [--set k=v] [--resume ckpt]

Then use it: --vocoder melspec2spec --vocoder-checkpoint checkpoints/melspec2spec_ljspeech/best.pt
(scripts/inference.py, scripts/evaluate.py, scripts/benchmark_vocoder.py).
"""
import _path  # noqa: F401

from processors.core.cli import parser, run, summary_line


def main(args) -> int:
    from training.loop import open_run
    from training.vocoder_training import VocoderTask

    print(summary_line(open_run(VocoderTask, args.config, args.set, args.resume).fit()))
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", help="configs/melspec2spec_ljspeech.yaml or configs/degli_ljspeech.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.add_argument("--resume", help="checkpoint to continue (its config is used; --set still applies)")
    run(main, p)
