"""``lm-zoo weights card NAME [--check]``: regenerate a shipped weight set's model card from its files.

The card is :func:`lm_zoo.training.cards.shipped_card`: the run's ``metrics.json`` and
``history.csv`` rendered after the hand-written preamble. Edit the preamble (or let a benchmark add
results to ``metrics.json``), then run this; ``--check`` only compares (exit 1 when the card on
disk is not the regenerated text). Never imports Keras.
"""
from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    # No lm_zoo import here: `lm-zoo --help` builds every parser and must stay light.
    parser.add_argument("name", metavar="NAME", help="shipped weight set whose card to regenerate (lm-zoo weights list)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the card on disk differs from the regenerated one")


def run(args) -> int:
    from lm_zoo.training import cards
    from lm_zoo.training.recipe import SHIPPED_SETS

    if args.name not in SHIPPED_SETS:
        raise ValueError(f"NAME {args.name!r} is not a shipped weight set; choose one of {', '.join(SHIPPED_SETS)}")
    path = cards.card_path(args.name)
    if not args.check:
        print(cards.write_card(args.name))
        return 0
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == cards.shipped_card(args.name):
        print(f"up to date: {path}")
        return 0
    print(f"{path} differs from what its metrics.json, history.csv and preamble give; "
          f"run `lm-zoo weights card {args.name}` (edit the preamble, never the card)", file=sys.stderr)
    return 1
