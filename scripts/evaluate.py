"""Score gap fillers on real clips: python scripts/evaluate.py --checkpoint checkpoints/<run>/best.pt --data <folder> --gap-ms 50 100 200 --out results/<name>"""
import _path

from processors.core.cli import parser, run

DEFAULT_CONFIG = "configs/unet_ljspeech.yaml"


def main(args) -> int:
    from pathlib import Path

    from processors.core.cli import check_option, check_output_folder
    from processors.core.errors import UserError
    from models.build import load_inpainter
    from training.configure import load_config
    from training.evaluation.report import clear_results, earlier_results, write_report
    from datasets.sources import evaluation_files
    from training.evaluation.evaluate import DEFAULT_BASELINES, build_systems, evaluate
    from processors.excerpt_metrics import excerpt_seconds
    from training.evaluation.scoring import with_eval

    for flag, value, low in (("--gaps-per-file", args.gaps_per_file, 1), ("--examples", args.examples, 0),
                             ("--seed", args.seed, 0), ("--limit-files", args.limit_files or 1, 1)):
        check_option(flag, value, low)
    out = Path(args.out)
    for d in args.data:     # its wavs would be read as data by the next run
        if out.resolve().is_relative_to(Path(d).resolve()):
            raise UserError(f"--out {out} is inside --data {d}; choose a folder outside the data")
    check_output_folder(out, "--out")               # found now, not at the end of a long run
    earlier = earlier_results(out)
    if earlier and not args.force:      # a report.html left beside new numbers would not match them
        raise UserError(f"--out {out} holds results an evaluation writes ({earlier[0].relative_to(out)}); "
                        f"choose a new folder or add --force to replace them")
    checkpoints = args.checkpoint or []
    models = [(f"{Path(p).parent.name}/{Path(p).stem}" if Path(p).suffix else f"shipped_{p}", *load_inpainter(p))
              for p in checkpoints]
    names = [m[0] for m in models]
    models = [(n if names.count(n) == 1 else f"{n}#{i + 1}", m, c) for i, (n, m, c) in enumerate(models)]
    # audio, vocoder and splice settings come from the checkpoints; --config only without one
    cfg = models[0][2] if models else load_config(args.config or _path.ROOT / DEFAULT_CONFIG)
    cfg = with_eval(cfg, args.domain, args.excerpt_seconds, args.metrics)
    from models.vocoder_nets import vocoder_checkpoints
    nets = vocoder_checkpoints(args.vocoder_checkpoint)
    if args.baselines is None:      # the domain's: copying from elsewhere in the file is for music
        args.baselines = list(DEFAULT_BASELINES[cfg.eval.domain])
    args.baselines = list(dict.fromkeys(args.baselines))     # a repeat would double its rows and n
    systems = build_systems(models, cfg, args.baselines, args.vocoder, nets)
    names = [s.name for s in systems]
    if args.paired_against is not None and args.paired_against not in names:
        raise UserError(f"--paired-against {args.paired_against!r}: not a system of this run ({', '.join(names)})")
    if args.paired_against is None and "linear" in names:     # the baseline every gap filler must beat
        args.paired_against = "linear"
    files = evaluation_files(args.data, args.split, cfg, args.limit_files)
    gap_ms = sorted(set(args.gap_ms))

    rows, examples = evaluate(files, systems, cfg, gap_ms, args.gaps_per_file, args.seed, args.examples)
    header = [f"data: {', '.join(f'`{d}`' for d in args.data)} (split: {args.split}), {len({r['file'] for r in rows})} files scored "
              f"of {len(files)}, {args.gaps_per_file} gap(s) per file and length, seed {args.seed}",
              f"checkpoints: {', '.join(f'`{p}`' for p in checkpoints) or 'none'}; baselines: {', '.join(args.baselines)}",
              f"audio: {cfg.audio.sample_rate} Hz, Mel up to {cfg.audio.f_max:g} Hz; vocoder: "
              f"{', '.join(args.vocoder or [*nets] or [cfg.vocoder.method])} ({cfg.vocoder.n_iter} iterations, "
              f"Mel inverse {cfg.vocoder.mel_inverse})",
              f"domain: {cfg.eval.domain}; whole-signal metrics score the excerpt of "
              f"{excerpt_seconds(cfg.eval.domain, cfg.eval.excerpt_seconds):g} s each side of every gap (cut at the file's ends)"]
    clear_results(out)
    paths = write_report(out, rows, examples, names, gap_ms, cfg, header, args.paired_against)
    print(paths["summary"].read_text())
    print(f"{len(rows)} rows -> {paths['csv']}; summary -> {paths['summary']}; plots -> {paths['plot'].parent}")
    if args.report:
        from training.evaluation.report import build_report
        print(f"listening report -> {build_report(out)}")
    return 0


if __name__ == "__main__":
    from processors.excerpt_metrics import DOMAIN_METRICS
    from models.vocoder_nets import VOCODERS
    from training.evaluation.evaluate import BASELINES
    p = parser(__doc__)
    p.add_argument("--checkpoint", action="append",
                   help="checkpoints/<run>/best.pt, or a shipped model: speech, music (repeatable)")
    p.add_argument("--config", help=f"audio/vocoder settings when no --checkpoint is given (default {DEFAULT_CONFIG})")
    p.add_argument("--data", required=True, nargs="+",
                   help="LJSpeech-1.1 root (with metadata.csv) or any folder of audio (several allowed)")
    p.add_argument("--gap-ms", type=float, nargs="+", required=True, help="gap lengths in milliseconds, e.g. 50 100 200")
    p.add_argument("--gaps-per-file", type=int, default=4, help="gaps per file and gap length (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seeds the gap positions (default 0)")
    p.add_argument("--out", required=True, help="output folder, e.g. results/<name>")
    p.add_argument("--limit-files", type=int, help="evaluate only the first N files")
    p.add_argument("--split", choices=["all", "train", "val", "test"], default="all",
                   help="files of the training split to use (default all; 'test' keeps training clips out)")
    p.add_argument("--baselines", nargs="*", choices=sorted(BASELINES),
                   help="baseline systems (default: speech zero linear lpc oracle; music zero linear "
                        "similarity_mel similarity_wave oracle)")
    p.add_argument("--vocoder", nargs="+", choices=sorted(VOCODERS), metavar="METHOD",
                   help=f"vocoder method(s) instead of the checkpoint's ({', '.join(sorted(VOCODERS))}); with "
                        "several, every Mel system and the oracle get one row per method (system@method)")
    p.add_argument("--vocoder-checkpoint", nargs="+", metavar="PATH",
                   help="trained nets of the learned vocoders (scripts/train_vocoder.py), e.g. "
                        "checkpoints/melspec2spec_ljspeech/best.pt; alone, they pick the vocoder too")
    p.add_argument("--domain", choices=sorted(DOMAIN_METRICS),
                   help="which metrics score the fills: speech (PESQ, STOI, PLCMOS, DNSMOS) or music (ViSQOL); "
                        "default: the config's eval.domain")
    p.add_argument("--metrics", nargs="+", metavar="NAME",
                   help="whole-signal metrics to run, a subset of the domain's (speech: pesq stoi plcmos dnsmos; "
                        "music: visqol); default: the config's eval.metrics, or all")
    p.add_argument("--excerpt-seconds", type=float, metavar="S",
                   help="whole-signal metrics score S seconds each side of every gap (default: the config's "
                        "eval.excerpt_seconds, or the domain's default: speech 2, music 5)")
    p.add_argument("--examples", type=int, default=1,
                   help="examples per gap length kept for figures and the report (default 1)")
    p.add_argument("--force", action="store_true",
                   help="replace the results of an earlier run in --out (default: refuse to touch them)")
    p.add_argument("--paired-against", metavar="SYSTEM",
                   help="summary.md adds every system's score minus this one's, gap by gap (default: linear "
                        "when it is a baseline of the run), e.g. lpc or shipped_speech")
    p.add_argument("--report", action="store_true",
                   help="also write <out>/report.html, the listening report (later: scripts/report.py <out>)")
    run(main, p)
