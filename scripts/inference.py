"""Fill the gaps of a recording: python scripts/inference.py --input gapped.wav --output filled.wav
(the shipped speech model; --checkpoint music for songs, or checkpoints/<run>/best.pt)"""
import typing

import _path  # noqa: F401

from processors.core.cli import parser, run
from processors.core.config import InferenceConfig

# what matplotlib's savefig writes (listed here: importing matplotlib would slow every error)
FIGURE_TYPES = (".png", ".pdf", ".svg", ".svgz", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")


def main(args) -> int:
    import logging
    from pathlib import Path

    from processors.core.cli import check_output_file
    from processors.core.errors import UserError
    src, dst = Path(args.input), Path(args.output)
    check_output_file(dst, "--output", args.force, (".wav", ".flac", ".ogg"), {"the input file": src})
    if args.figure:     # checked now: a bad name must not fail after the fill is written
        check_output_file(Path(args.figure), "--figure", args.force, FIGURE_TYPES,
                          {"the input file": src, "the --output file": dst})

    import numpy as np
    import soundfile as sf
    import torch

    from processors.audio_io import LOSSLESS, output_subtype, read_audio, write_audio
    from processors.gaps import extend_over_near_silence, find_silent_gaps, parse_gaps
    from processors.inpaint import inpaint_audio
    from processors.mel import MelSpectrogram
    from models.vocoder_nets import build_vocoder
    from models.build import load_inpainter

    samples, sr = read_audio(src)
    broken = ~np.isfinite(samples).all(axis=1)
    if broken.any():      # they would be copied to the output, and poison any fill whose window holds them
        raise UserError(f"{src}: {int(broken.sum())} non-finite samples (NaN/Inf), the first at "
                        f"{np.argmax(broken) / sr:.3f} s; repair or re-export the file first")
    if not samples.any():
        raise UserError(f"{src}: the file is silent throughout: there is no context to fill a gap from")
    model, cfg = load_inpainter(args.checkpoint)
    if args.vocoder or args.vocoder_checkpoint:
        from models.vocoder_nets import vocoder_checkpoints
        from processors.vocoders import with_vocoder
        nets = vocoder_checkpoints(args.vocoder_checkpoint and [args.vocoder_checkpoint])
        cfg = with_vocoder(cfg, args.vocoder or next(iter(nets)), nets)
    if args.stereo:
        import dataclasses
        cfg = dataclasses.replace(cfg, inference=dataclasses.replace(cfg.inference, stereo=args.stereo))
    inf = cfg.inference
    silences = find_silent_gaps(samples, int(inf.min_gap_ms * sr / 1000))
    if sf.info(str(src)).format not in LOSSLESS:    # only a lossy codec smears a gap's edges
        silences = extend_over_near_silence(samples, silences, sr, inf.edge_db, inf.edge_ms, inf.edge_local_db)
    if args.gaps:
        gaps = parse_gaps(args.gaps, sr, len(samples))
        others = [(s, e) for s, e in silences if not any(s < e2 and s2 < e for s2, e2 in gaps)]
        if others:
            logging.warning("%s: %d more silent stretch(es) not in --gaps (first at %.3f s) are left as they are",
                            src, len(others), others[0][0] / sr)
    else:
        # silence at the very start or end (a song's lead-in, a fade to digital zero) has
        # nothing on one side to continue: it is the recording's edge, not a dropout
        gaps = [(s, e) for s, e in silences if s > 0 and e < len(samples)]
        if not gaps:
            edge = " (only at the file's start or end, which has no context on one side)" if silences else ""
            raise UserError(f"{src}: no gap found (no run of digital silence >= {cfg.inference.min_gap_ms:g} ms "
                            f"inside the file{edge}); give --gaps start:end in seconds")
        if len(gaps) < len(silences):
            logging.info("%s: silence at the start or end of the file is left as it is", src)
    torch.manual_seed(cfg.seed)
    mel_fn = MelSpectrogram(cfg.audio)
    vocoder = build_vocoder(cfg)
    try:
        if args.method == "similarity_wave":      # the checkpoint gives the audio and search settings
            from processors.similarity_fill import similarity_wave_fill
            filled, matches = similarity_wave_fill(samples, sr, gaps, cfg, mel_fn)
            for m in matches:
                print(f"gap {m['gap'][0] / sr:.3f} s: " + (f"copied from {m['source'] / sr:.3f} s (score {m['score']:.3f})"
                                                           if m["source"] >= 0 else "no match: LPC fill"))
        else:
            filled, _ = inpaint_audio(samples, sr, gaps, model, cfg, mel_fn, vocoder)
    except UserError as exc:
        raise UserError(f"{src}: {exc}") from exc
    write_audio(dst, filled, sr, subtype=output_subtype(src, dst))
    print(f"filled {len(gaps)} gap(s): " + ", ".join(f"{s / sr:.3f}-{e / sr:.3f} s" for s, e in gaps) + f" -> {dst}")
    if args.figure:
        from processors.audio_io import resample, to_mono
        from processors.mel import log_mel
        from training.figures import mel_figure, save_figure
        hop_s = cfg.audio.hop_length / cfg.audio.sample_rate
        before = log_mel(mel_fn, resample(to_mono(samples), sr, cfg.audio.sample_rate))
        after = log_mel(mel_fn, resample(to_mono(filled).astype(np.float32), sr, cfg.audio.sample_rate))
        fig = mel_figure([("input (gapped)", before), ("filled", after)], hop_s, [(s / sr, e / sr) for s, e in gaps])
        save_figure(fig, args.figure)
        print(f"figure -> {args.figure}")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--checkpoint", default="speech",
                   help="a shipped model, 'speech' (default) or 'music', or a checkpoint path: checkpoints/<run>/best.pt")
    p.add_argument("--input", required=True, help="gapped recording (wav, flac, ogg, mp3)")
    p.add_argument("--output", required=True, help="where to write the filled recording")
    p.add_argument("--gaps", help="gap ranges in seconds, e.g. 1.20:1.45,3.00:3.20 (default: find digital silence)")
    p.add_argument("--vocoder", help="vocoder method instead of the checkpoint's, e.g. griffinlim or melspec2spec")
    p.add_argument("--vocoder-checkpoint", metavar="PATH",
                   help="a learned vocoder's trained net (scripts/train_vocoder.py); alone, it picks the vocoder too")
    p.add_argument("--figure", help="write a before/after spectrogram here (.png, .pdf, .svg, .jpg, ...)")
    p.add_argument("--force", action="store_true", help="replace --output (and --figure) if they exist")
    p.add_argument("--stereo", choices=typing.get_args(typing.get_type_hints(InferenceConfig)["stereo"]),
                   help="a file with several channels: fill the mix and copy it to every channel, or fill each "
                        "channel from its own context (default: the checkpoint's inference.stereo)")
    p.add_argument("--method", choices=["model", "similarity_wave"], default="model",
                   help="model: the checkpoint's inpainter (default); similarity_wave: copy the best-matching "
                        "stretch of the same recording, every channel its own (the checkpoint's settings)")
    run(main, p)
