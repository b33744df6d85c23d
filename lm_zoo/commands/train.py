"""``lm-zoo train landmark|cifar``: the recipes behind the shipped weight sets."""
from __future__ import annotations

import json
import sys
from pathlib import Path


# lm_zoo.cli imports TensorFlow quietly (no CUDA start-up noise) before run().
NEEDS_TENSORFLOW = True
# Free space asked of --out's disk before training: weights (~17 MiB), a Keras backup of the same
# size, history, metrics and card.
OUTPUT_BYTES = 64 * 2**20


def add_arguments(parser):
    from lm_zoo.commands.options import add_no_progress

    parser.add_argument("weight_set", choices=["landmark", "cifar"], help="which weight set to train")
    parser.add_argument("--out", required=True, help="output folder (weights, history.csv, metrics.json)")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epoch count")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the run: weight init, shuffling and augmentation (same seed, same numbers; default 0)")
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few examples (tests)")
    parser.add_argument("--data-dir", default=None, help="TFDS data_dir")
    parser.add_argument(
        "--archive", default=None,
        help="cifar: a tar of CIFAR-10 images (train/<class>/*.jpg, test/<class>/*.jpg); "
        "default: tfds 'cifar10' already prepared in --data-dir",
    )
    parser.add_argument(
        "--dataset", default="landmark_ct_patches/phantom_lm60",
        help="landmark: TFDS dataset/config to train on",
    )
    parser.add_argument("--init-from", default=None, help="landmark: .weights.h5 of an earlier stage (e.g. lm20)")
    parser.add_argument(
        "--recipe", default=None, choices=["landmark", "landmark_real"],
        help="landmark: the hyper-parameters (default landmark; landmark_real when --real-dataset is given: "
        "a short low-rate second stage, use with --init-from)",
    )
    parser.add_argument(
        "--real-dataset", default=None,
        help="landmark: a real-CT patch dataset mixed into training, e.g. landmark_ct_patches/manual_adapt "
        "(all its splits are training data; classes matched by name)",
    )
    parser.add_argument("--real-manual-dir", default=None, help="landmark: manual_dir of --real-dataset")
    parser.add_argument("--real-share", type=float, default=None,
                        help="landmark: share of each epoch drawn from --real-dataset (default 0.15)")
    parser.add_argument(
        "--adapt-to", action="append", default=None, metavar="DIR",
        help="landmark: adapt --init-from (default landmark_phantom) to the unlabelled CT scans under DIR "
        "(volume files or DICOM series folders; repeat for several folders); no labels needed",
    )
    parser.add_argument("--adapt-method", default=None, choices=["dann", "adabn"],
                        help="landmark --adapt-to: dann (adversarial fine-tuning, default) or adabn "
                        "(BatchNorm statistics + background recalibration, no training)")
    add_no_progress(parser)


def run(args) -> int:
    import shlex

    from lm_zoo import training

    # metrics.json and the card record the command line exactly as typed (lm_zoo.cli sets argv).
    argv = getattr(args, "argv", None) or ["lm-zoo", "train", args.weight_set]
    command = shlex.join(argv)

    if args.epochs is not None and args.epochs <= 0:
        raise ValueError(f"--epochs must be a positive integer, got {args.epochs}")
    if args.real_dataset is None and (args.real_manual_dir is not None or args.real_share is not None):
        raise ValueError("--real-manual-dir and --real-share need --real-dataset")
    if args.adapt_to is None and args.adapt_method is not None:
        raise ValueError("--adapt-method needs --adapt-to")
    if args.adapt_to is not None and (args.weight_set != "landmark" or args.real_dataset or args.recipe):
        raise ValueError("--adapt-to adapts landmark weights on its own: not with cifar, --real-dataset or --recipe")
    from lm_zoo.outputs import check_output_dir, staged_output

    check_output_dir(args.out, argument="--out", needed_bytes=OUTPUT_BYTES)
    # Written aside and moved into place at the end; an interrupted run keeps only Keras's
    # BackupAndRestore state (in .<out>.partial/backup), which the same command resumes from.
    resumable = lambda staging: (staging / "backup").is_dir()  # noqa: E731
    try:
        with staged_output(args.out, argument="--out", resumable=resumable) as staging:
            metrics = _train(args, training, staging, command)
    except BaseException:
        staging = Path(args.out).expanduser().parent / f".{Path(args.out).expanduser().name}.partial"
        if staging.is_dir():
            print(f"lm-zoo train: training state kept in {staging}; rerun the same command to resume", file=sys.stderr)
        raise
    short = {k: v for k, v in metrics.items() if k not in ("per_class_accuracy", "class_names")}
    print(json.dumps(short, indent=2))
    return 0


def _train(args, training, out, command) -> dict:
    import dataclasses

    if args.weight_set == "cifar":
        recipe = dataclasses.replace(training.CIFAR_RECIPE, seed=args.seed)
        return training.train_cifar(out, archive=args.archive, data_dir=args.data_dir,
                                    recipe=recipe, epochs=args.epochs, smoke=args.smoke, command=command)
    if args.adapt_to:
        return _adapt(args, training, out, command)
    name = args.recipe or ("landmark_real" if args.real_dataset else "landmark")
    recipe = dataclasses.replace(training.RECIPES[name], seed=args.seed)
    return training.train_landmark(out, dataset=args.dataset, data_dir=args.data_dir,
                                   recipe=recipe, epochs=args.epochs, init_from=args.init_from,
                                   smoke=args.smoke, command=command, real_dataset=args.real_dataset,
                                   real_manual_dir=args.real_manual_dir,
                                   real_share=training.REAL_SHARE if args.real_share is None else args.real_share)


def _adapt(args, training, out, command) -> dict:
    import dataclasses

    from lm_zoo.training.adaptation import AdaptSettings, adapt_landmark

    settings = AdaptSettings()
    settings = dataclasses.replace(settings, method=args.adapt_method or settings.method,
                                   dann=dataclasses.replace(settings.dann, seed=args.seed))
    return adapt_landmark(out, args.adapt_to, init_from=args.init_from or "landmark_phantom", settings=settings,
                          dataset=args.dataset, data_dir=args.data_dir, smoke=args.smoke,
                          progress=not args.no_progress, command=command)
