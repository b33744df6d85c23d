"""The ``lm-zoo`` command line: parse, call the library, show progress.

Each subcommand lives in ``lm_zoo/commands/<name>.py`` and provides ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their subcommand runs, so
``lm-zoo --help`` stays fast (no TensorFlow import). A command module that sets
``NEEDS_TENSORFLOW = True`` gets TensorFlow imported quietly first (see :func:`quiet_tensorflow`).
Every :class:`lm_zoo.errors.LmZooError` a command raises (and the builtin ``ValueError``,
``FileNotFoundError``, ``FileExistsError``) reaches the user as one line
``lm-zoo <command>: error: <message>`` on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import tempfile
import threading

from lm_zoo.errors import LmZooError

_VERBOSE_HELP = ("show TensorFlow's C++ start-up log (CUDA, oneDNN; TF_CPP_MIN_LOG_LEVEL, when set, "
                 "filters TF's own log as usual)")

# name -> (module, one-line help)
COMMANDS = {
    "detect": ("lm_zoo.commands.detect", "find the landmarks of a weight set in a CT or a folder of CTs "
                                      "(.mrk.json/.fcsv/.csv + PNG; --out-dir: per scan + summary.csv)"),
    "landmarks": ("lm_zoo.commands.landmarks", "landmarks from TotalSegmentator segmentations (from-segmentation)"),
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
    parser.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        _accept_verbose(p)
        p.set_defaults(_module=module)
    return parser


def _accept_verbose(parser: argparse.ArgumentParser) -> None:
    """Accept ``--verbose`` after the command too (``lm-zoo detect CT --verbose``), at every level
    of nested actions: argparse hands everything after a command name to that command's parser.
    ``SUPPRESS`` keeps the value set before the command when the flag is not repeated."""
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _accept_verbose(child)


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = parser.parse_args(argv)
    args.argv = ["lm-zoo", *argv]  # the command line as typed, for the records of a run
    if args.command is None:
        parser.print_help()
        return 2
    # SIGTERM unwinds like Ctrl-C, so staged outputs and temporary files are cleaned up.
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    try:
        module = importlib.import_module(args._module)
        if getattr(module, "NEEDS_TENSORFLOW", False):
            quiet_tensorflow(verbose=args.verbose)
        return int(module.run(args) or 0)
    # Every lm_zoo error (StaleDatasetError is a RuntimeError) and the builtins a library raises
    # on bad input are the user's to fix: one line, exit code 2, no traceback.
    except (LmZooError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"lm-zoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lm-zoo {args.command}: interrupted; outputs of this run were not written", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow without its C++ start-up log.

    On a CPU-only machine TF prints CUDA-initialisation errors (``failed call to cuInit``) and
    oneDNN/cudart notices at import and first device use, which new users read as a failure.
    ``TF_CPP_MIN_LOG_LEVEL`` (2 unless the user set their own level, which is kept) filters TF's
    own logger; the lines absl writes before its logging is initialised ignore that variable
    (with level 3 they are the only ones left), so stderr is captured while TF starts and its
    devices are listed, and replayed only if that fails. Nothing is changed with ``--verbose``
    or when TF is already imported.
    """
    if verbose or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery: where cuInit fails
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
