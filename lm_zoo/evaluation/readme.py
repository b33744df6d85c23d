"""The README's results block, rendered from a run's summary.json.

The README quotes the main job's figures between ``BEGIN`` and ``END``. They are never typed by
hand: ``results_block(summary)`` renders them from the summary.json of one ``lm-zoo evaluate``
run (committed beside the README), so text and run cannot drift; ``benchmarks/readme_results.py``
rewrites the block and tests/test_readme.py checks it.
"""
from __future__ import annotations

from lm_zoo.evaluation.errors import EvaluationError
from lm_zoo.evaluation.report import ACROSS_CPUS, fmt_ci, learner_ranges, machine_line

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
README_COUNTS = (1, 5, 20, 50, 200)  # learner counts quoted (and the largest of the run)
HEADLINE_FEW = 5  # the method's "few weak learners" point, as in report.finding


def _ci(row: dict) -> str:
    return fmt_ci(row["auc"], row["ci_low"], row["ci_high"])


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−")


def _delta(row: dict) -> str:
    return (f"{_signed(row['delta_auc'])} [{_signed(row['ci_low'])}, {_signed(row['ci_high'])}], "
            f"p = {row['p_value']:.3g}")


def _at(curve: list, n: int) -> dict:
    return next(row for row in curve if row["n_learners"] == n)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _data_line(s: dict) -> str:
    ds, cfg = s["dataset"], s["config"]
    caveat = (" (**phantom** data: these figures test the pipeline, they are not a clinical claim)"
              if "phantom" in ds["provenance"].split("+") else f" (provenance **{ds['provenance']}**)")
    weights = "; ".join(f"`{name}`: {b['weights']}" for name, b in s["backbones"].items())
    return (f"`lm-zoo evaluate` on `{ds['name']}` v{ds['version']}{caveat}: {ds['train_cases']} training / "
            f"{ds['test_cases']} test cases ({ds['train_patches']} / {ds['test_patches']} patches, "
            f"{ds['test_positive_patches']} test patches `{ds['positive_class']}`). Weights: {weights}. "
            f"Frozen `{cfg['layer']}` features, AdaBoost with 1–{cfg['max_learners']} stumps, "
            f"{len(cfg['seeds'])} seed{'s' if len(cfg['seeds']) > 1 else ''}, {cfg['bootstrap']} paired case bootstraps, "
            f"{round(100 * s['confidence_level'])} % intervals.")


def _curve_table(s: dict) -> list[str]:
    names = list(s["backbones"])
    largest = s["config"]["max_learners"]
    counts = sorted({n for n in README_COUNTS if n <= largest} | {largest})
    lines = ["| weak learners | " + " | ".join(f"{n} test AUC" for n in names) + " |",
             "|---:|" + "---|" * len(names)]
    for n in counts:
        lines.append(f"| {n} | " + " | ".join(_ci(_at(s["backbones"][b]["curve"], n)) for b in names) + " |")
    return lines


def _difference_table(s: dict) -> list[str]:
    if not s["differences"]:
        return []
    largest = s["config"]["max_learners"]
    counts = list(dict.fromkeys(n for n in (min(HEADLINE_FEW, largest), largest)))
    lines = ["| difference | " + " | ".join(f"Δ AUC with {n} learner{'s' if n > 1 else ''}" for n in counts)
             + " | significant (p < 0.05) with |",
             "|---|" + "---|" * len(counts) + "---|"]
    for d in s["differences"]:
        cells = [_delta(_at(d["curve"], n)) for n in counts]
        lines.append(f"| {d['a']} − {d['b']} | " + " | ".join(cells) + f" | {learner_ranges(d['significant_learner_counts'])} |")
    return lines


def _finetune_line(s: dict) -> str:
    if not s.get("finetune"):
        return "Fine-tuning comparison skipped in this run (`--no-finetune`)."
    epochs = next(iter(s["finetune"].values()))["epochs"]
    parts = ", ".join(f"{name} {_ci(v)}" for name, v in s["finetune"].items())
    return f"Fine-tuned end to end ({epochs} epoch(s), new sigmoid head), test AUC: {parts}."


def results_block(summary: dict, source: str | None = None) -> str:
    """The README's results text (Markdown, without the markers) for one summary.json.

    Args:
        summary: the parsed summary.json of one ``lm-zoo evaluate`` run.
        source: where that summary.json is committed, named in the text.
    """
    try:
        took = sum(summary["timings_s"].values())
        lines = [_data_line(summary), "", *_curve_table(summary), ""]
        diffs = _difference_table(summary)
        lines += [*diffs, ""] if diffs else []
        lines += [
            _finetune_line(summary), "",
            f"{machine_line(summary.get('machine'))} The run took {_duration(took)} there"
            f"{'' if summary['dataset'].get('built_now', True) else ', reusing a built dataset'} "
            f"(`{summary['config'].get('command', 'lm-zoo evaluate')}`). {ACROSS_CPUS}",
        ]
    except (KeyError, StopIteration, TypeError) as err:
        raise EvaluationError(f"not a summary.json of lm-zoo evaluate (missing or odd field: {err!r})") from err
    if source:
        lines += ["", f"Generated from that run's summary.json (`{source}`) by "
                      f"`python benchmarks/readme_results.py {source}`; do not edit by hand."]
    return "\n".join(lines)


def _span(text: str) -> tuple[int, int]:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start or text.count(BEGIN) != 1 or text.count(END) != 1:
        raise EvaluationError(f"the README needs exactly one {BEGIN} ... {END} pair, in that order")
    return start + len(BEGIN), end


def current_block(text: str) -> str:
    """The text between the README's markers, without the blank lines around it."""
    start, end = _span(text)
    return text[start:end].strip("\n")


def with_block(text: str, block: str) -> str:
    """The README text with ``block`` between its markers (everything else unchanged)."""
    start, end = _span(text)
    return f"{text[:start]}\n{block}\n{text[end:]}"
