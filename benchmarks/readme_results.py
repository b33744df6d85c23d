"""Write (or check) the README's results block from a run's summary.json.

The figures between ``<!-- results:begin -->`` and ``<!-- results:end -->`` in README.md come from
one ``lm-zoo evaluate`` run: ``lm_zoo.evaluation.readme.results_block`` renders them. To refresh
them after a new run, commit its summary.json and regenerate:

    lm-zoo evaluate --output runs/eval
    cp runs/eval/summary.json docs/results/evaluate_phantom_summary.json
    python benchmarks/readme_results.py docs/results/evaluate_phantom_summary.json

``--check`` writes nothing and exits 1 when the README's block differs (tests/test_readme.py
checks the committed summary the same way). README.md is not a shipped file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lm_zoo.evaluation.readme import current_block, results_block, with_block

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", help="summary.json of an lm-zoo evaluate run (quoted in the README as given)")
    parser.add_argument("--readme", default=str(ROOT / "README.md"), help="README to update (default: the checkout's)")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the block differs")
    args = parser.parse_args(argv)
    summary = json.loads(Path(args.summary).read_text(encoding="utf-8"))
    readme = Path(args.readme)
    text = readme.read_text(encoding="utf-8")
    block = results_block(summary, source=args.summary)
    if current_block(text) == block:
        print(f"{readme}: results block matches {args.summary}")
        return 0
    if args.check:
        print(f"{readme}: results block differs from {args.summary}; run without --check to rewrite it")
        return 1
    readme.write_text(with_block(text, block), encoding="utf-8")
    print(f"{readme}: results block rewritten from {args.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
