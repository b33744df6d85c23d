"""``lm-zoo evaluate``: the landmark-vs-CIFAR transfer comparison, report and plot.

With no arguments: builds (or reuses) ``mra_aneurysm_patches/phantom``, loads the shipped
``landmark`` and ``cifar`` weights plus the seeded ``random`` control, and writes curves.csv,
differences.csv, summary.json, auc_vs_weak_learners.png and report.md to ``--out``.
"""
from __future__ import annotations

import argparse
import shlex
import sys


# lm_zoo.cli imports TensorFlow quietly (no CUDA start-up noise) before run().
NEEDS_TENSORFLOW = True


def _positive_int(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 1, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 1, got {value}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lm_zoo.commands.options import add_hidden_alias, add_no_progress

    # Defaults are spelled out here rather than imported, so `lm-zoo --help` stays free of TF.
    parser.add_argument("--dataset", default=None,
                        help="TFDS name/config with patch, label (2 classes) and case_id features and "
                             "train/test splits (default: mra_aneurysm_patches/phantom, or "
                             "mra_aneurysm_patches/manual with --manual-dir)")
    parser.add_argument("--data-dir", default=None, help="TFDS data folder (default: TFDS's, ~/tensorflow_datasets)")
    parser.add_argument("--manual-dir", default=None,
                        help="your real TOF-MRA cohort for the manual config (layout: see the "
                             "mra_aneurysm_patches README); TFDS prepares it once per --data-dir, so give "
                             "another cohort its own --data-dir")
    parser.add_argument("--backbones", default="landmark,cifar,random",
                        help="comma-separated: landmark, cifar, random (untrained, seeded control) or "
                             "paths to .weights.h5 files; the first two are the headline comparison "
                             "(default: %(default)s)")
    parser.add_argument("--layer", default="fc1_relu",
                        help="feature layer of MiniVGG25D, by name (default: %(default)s, 512-d)")
    parser.add_argument("--max-learners", type=_positive_int("--max-learners"), default=200,
                        help="largest number of weak learners (stumps); the curve covers 1..N (default: %(default)s)")
    parser.add_argument("--seeds", type=_positive_int("--seeds"), default=3,
                        help="AdaBoost fits per backbone, each on a case-level bootstrap of the training "
                             "cases; the bands and p-values carry training-set variation only as well as "
                             "the seeds sample it: use 10 or more for a claim (default: %(default)s, for speed)")
    parser.add_argument("--bootstrap", type=_positive_int("--bootstrap"), default=1000,
                        help="paired bootstrap resamples of the test cases (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test bootstrap, random backbone and fine-tuning")
    parser.add_argument("--out", default="lm_zoo_evaluation", help="output folder (default: %(default)s)")
    add_hidden_alias(parser, "--output", "out")  # the spelling of lm_zoo 0.1
    parser.add_argument("--no-finetune", action="store_true", help="skip the end-to-end fine-tuning comparison")
    parser.add_argument("--finetune-epochs", type=_positive_int("--finetune-epochs"), default=2,
                        help="epochs of end-to-end fine-tuning per backbone (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int("--batch-size"), default=512,
                        help="feature extraction batch size (default: %(default)s)")
    add_no_progress(parser, "--quiet")  # --quiet: the spelling of lm_zoo 0.1


def run(args) -> int:
    from lm_zoo.evaluation import EvaluationConfig, evaluate

    dataset = args.dataset
    if dataset is None:
        dataset = "mra_aneurysm_patches/manual" if args.manual_dir else "mra_aneurysm_patches/phantom"
    config = EvaluationConfig(
        dataset=dataset,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        backbones=tuple(s.strip() for s in args.backbones.split(",") if s.strip()),
        layer=args.layer,
        max_learners=args.max_learners,
        seeds=args.seeds,
        bootstrap=args.bootstrap,
        finetune=not args.no_finetune,
        finetune_epochs=args.finetune_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        output=args.out,
        command="lm-zoo " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["evaluate"] else "lm-zoo evaluate",
    )
    result = evaluate(config, progress=not args.no_progress)
    from lm_zoo.evaluation.report import finding

    print(f"Data: {result.dataset['origin']}.")
    print(finding(result))
    print(f"wrote {args.out}/report.md, summary.json, curves.csv, differences.csv, auc_vs_weak_learners.png")
    return 0
