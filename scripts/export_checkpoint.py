"""Strip a training checkpoint to what inference needs (config + weights, fp16 by default):
python scripts/export_checkpoint.py --checkpoint checkpoints/<run>/best.pt --output model.pt"""
import _path  # noqa: F401

from processors.core.cli import parser, run


def main(args) -> int:
    from pathlib import Path

    from processors.core.cli import check_output_file
    from processors.core.errors import UserError
    from processors.core.checkpoint_io import inference_state, load_resolved, resolve_checkpoint, save_checkpoint
    from models.build import load_inpainter
    from processors.core.config_io import apply_overrides
    from training.configure import build_config
    src, dst = resolve_checkpoint(args.checkpoint), Path(args.output)
    check_output_file(dst, "--output", args.force, others={"the input checkpoint": src})
    state = inference_state(load_resolved(src)[1], half=not args.fp32)
    config = apply_overrides(state["config"], args.set)     # a malformed --set fails here, as in training
    bad = [o for o in args.set if not o.startswith(("inference.", "vocoder.n_iter=", "eval."))]
    if bad:     # anything else would describe a model other than the weights'
        raise UserError(f"--set {bad[0]!r}: only inference.*, vocoder.n_iter and eval.* can change on export")
    state["config"] = build_config(config, f"{src} (config)").to_dict()
    save_checkpoint(dst, state)
    load_inpainter(dst)            # the exported file rebuilds its model, or this fails loudly now
    print(f"{src} -> {dst} ({dst.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--checkpoint", required=True, help="a training checkpoint, e.g. checkpoints/<run>/best.pt, or a shipped "
                   "model, 'speech' or 'music' (to change its inference settings)")
    p.add_argument("--output", required=True, help="where to write the inference checkpoint")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (default: fp16, half the size)")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a setting that does not touch the weights: inference.*, vocoder.n_iter, eval.*")
    run(main, p)
