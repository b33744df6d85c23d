"""The flag spellings every command shares.

``--out`` names what a command writes (a file or a folder) and ``--no-progress`` hides its
progress bars. Earlier spellings (``evaluate --output`` and ``--quiet``) stay accepted as hidden
aliases, so command lines in old notes and scripts keep working while ``--help`` shows one name.
"""
from __future__ import annotations

import argparse


def add_hidden_alias(parser: argparse.ArgumentParser, alias: str, dest: str, **kwargs) -> None:
    """Accept ``alias`` for the option stored in ``dest``, left out of ``--help`` and usage.
    Its default is SUPPRESS so the documented option's default stands."""
    parser.add_argument(alias, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def add_no_progress(parser: argparse.ArgumentParser, *aliases: str) -> None:
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    for alias in aliases:
        add_hidden_alias(parser, alias, "no_progress", action="store_true")
