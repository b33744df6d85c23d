"""The ``lm-zoo`` command line: parse, call the library, show progress.

Each subcommand lives in ``lm_zoo/commands/<name>.py`` and provides ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their subcommand runs, so
``lm-zoo --help`` stays fast (no TensorFlow import).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    "evaluate": ("lm_zoo.commands.evaluate", "AdaBoost transfer comparison: landmark vs CIFAR features (the main job)"),
    "phantom": ("lm_zoo.commands.phantom", "write a deterministic phantom cohort (torso-ct or head-mra)"),
    "train": ("lm_zoo.commands.train", "train a shipped weight set (landmark or cifar)"),
    "weights": ("lm_zoo.commands.weights", "list, describe and verify the pretrained weight sets"),
}


def build_parser() -> argparse.ArgumentParser:
    from lm_zoo import __version__

    parser = argparse.ArgumentParser(
        prog="lm-zoo",
        description="lm_zoo: MiniVGG25D, 2.5D patches and the landmark-vs-CIFAR transfer experiment.",
    )
    parser.add_argument("--version", action="version", version=f"lm_zoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = parser.parse_args(argv)
    args.argv = ["lm-zoo", *argv]  # the command line as typed, for the records of a run
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"lm-zoo {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
