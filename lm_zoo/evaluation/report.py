"""Outputs of the comparison: curves.csv, differences.csv, summary.json, report.md.

Every file is written through ``lm_zoo._atomic`` (temporary file in the output folder, then
renamed), so a reader never sees half a file. summary.json and report.md name the machine and
release a figure was made on (``machine()``): figures repeat exactly on one machine, not across CPUs.
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from lm_zoo._atomic import atomic_write_text

TABLE_COUNTS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)
METHOD_FINDING = (
    "The method reported, on its private real cohort, about +0.10 ROC AUC for landmark features over "
    "CIFAR-10 features with few weak learners and no significant difference with many."
)
# Every file `lm-zoo evaluate` writes into --output, with what it holds (the README lists them).
OUTPUT_FILES = {
    "report.md": "the finding, data and method, AUC table, fine-tuning, stage timings, machine",
    "summary.json": "every figure of the report, the data, the configuration and the machine, for scripts",
    "curves.csv": "AUC with its confidence band per backbone and number of weak learners",
    "differences.csv": "paired AUC differences per pair of backbones and number of weak learners, with p-values",
    "auc_vs_weak_learners.png": "the curves and the headline difference, with their bands",
}
# Same command, same machine: identical figures (tests/test_reproducible.py). Across CPUs the float
# summation order of the convolution and dense kernels (oneDNN picks them per instruction set) moves
# features in the last bits, and a stump threshold may then fall on the other side of a patch.
ACROSS_CPUS = ("The same command on the same machine gives identical figures; AUCs may differ in the third "
               "decimal across CPUs (float summation order of the CPU's oneDNN kernels).")
# summary.json fields that describe the run rather than its figures: they differ between two runs
# of one command (paths, whether the dataset was reused, clock times) or between machines.
RUN_FIELDS = {"timings_s": None, "machine": None,
              "config": ("output", "data_dir", "manual_dir", "command"),
              "dataset": ("data_folder", "built_now", "manual_dir", "origin")}
_SIMD_FLAGS = ("sse4_2", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def _version(*distributions) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cpuinfo() -> tuple[str | None, list[str]]:
    """CPU model name and the SIMD flags oneDNN dispatches on (Linux; (None, []) elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, []
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)  # the last CPU's values
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return fields.get("model name"), [f for f in _SIMD_FLAGS if f in flags]


def machine() -> dict:
    """The CPU, cores and releases a run's figures were made with (recorded in summary.json)."""
    from lm_zoo import __version__

    model, simd = _cpuinfo()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model or platform.processor() or platform.machine() or "unknown",
        "simd": simd,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "os": platform.platform(),
        "python": platform.python_version(),
        "lm_zoo": __version__,
        "tensorflow": _version("tensorflow", "tensorflow-cpu", "tf-nightly"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "scikit-learn": _version("scikit-learn"),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
    }


def machine_line(m: dict | None) -> str:
    """One sentence naming the machine and releases of a summary's ``machine`` field."""
    if not m:
        return "Machine and release not recorded (a summary.json of an older release)."
    simd = f", widest SIMD {m['simd'][-1]}" if m.get("simd") else ""
    return (f"Made on {m['cpu']} ({m['cores_usable']} of {m['cores']} cores usable{simd}), {m['os']}, with "
            f"lm_zoo {m['lm_zoo']}, TensorFlow {m['tensorflow']}, Keras {m['keras']}, "
            f"scikit-learn {m['scikit-learn']}, NumPy {m['numpy']}, Python {m['python']}.")


def figures_only(summary_dict: dict) -> dict:
    """A summary.json without the fields that describe the run (``RUN_FIELDS``): what two runs of
    one command on one machine must agree on exactly."""
    out = {}
    for key, value in summary_dict.items():
        if key in RUN_FIELDS and RUN_FIELDS[key] is None:
            continue
        if key in RUN_FIELDS:
            value = {k: v for k, v in value.items() if k not in RUN_FIELDS[key]}
        out[key] = value
    return out


def _csv(header, rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _r(x, digits=4):
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def curve_rows(result) -> list[list]:
    rows = []
    for name, stats in result.curves.items():
        low, high = stats.interval(result.alpha)
        sd = stats.per_seed.std(axis=0)
        for k, n in enumerate(result.learners):
            rows.append([name, int(n), _r(stats.auc[k]), _r(low[k]), _r(high[k]), _r(sd[k])])
    return rows


def difference_rows(result) -> list[list]:
    rows = []
    for d in result.differences:
        sig = d.significant(result.alpha)
        for k, n in enumerate(result.learners):
            rows.append([d.a, d.b, int(n), _r(d.delta[k]), _r(d.ci_low[k]), _r(d.ci_high[k]), _r(d.p_value[k]), bool(sig[k])])
    return rows


def summary(result) -> dict:
    from lm_zoo.evaluation.statistics import runs

    backbones = {}
    for name, stats in result.curves.items():
        low, high = stats.interval(result.alpha)
        backbones[name] = {
            "weights": result.backbone_weights[name],
            "curve": [
                {"n_learners": int(n), "auc": _r(stats.auc[k]), "ci_low": _r(low[k]), "ci_high": _r(high[k])}
                for k, n in enumerate(result.learners)
            ],
        }
    differences = []
    for d in result.differences:
        sig = d.significant(result.alpha)
        differences.append({
            "a": d.a,
            "b": d.b,
            "test": "paired case-level bootstrap, two-sided, pointwise per learner count",
            "significant_learner_counts": [list(r) for r in runs(sig, result.learners)],
            "curve": [
                {"n_learners": int(n), "delta_auc": _r(d.delta[k]), "ci_low": _r(d.ci_low[k]),
                 "ci_high": _r(d.ci_high[k]), "p_value": _r(d.p_value[k]), "significant": bool(sig[k])}
                for k, n in enumerate(result.learners)
            ],
        })
    return {
        "dataset": result.dataset,
        "provenance": result.dataset["provenance"],
        "config": result.config,
        "confidence_level": 1 - result.alpha,
        "method": {
            "classifier": "sklearn AdaBoostClassifier(estimator=DecisionTreeClassifier(max_depth=1)); "
                          "AUC after 1..N stumps from one staged_decision_function",
            "seeds": "seed s fits on a stratified case-level bootstrap of the training cases",
            "bands": "percentile intervals over paired test-case bootstrap replicates, each scoring one seed's fit",
            "p_value": "two-sided paired case-bootstrap p per learner count (pointwise, uncorrected)",
            "auc": "mean over seeds of the test ROC AUC",
        },
        "backbones": backbones,
        "differences": differences,
        "finetune": result.finetune,
        "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
        "machine": machine(),
        "reproducibility": ACROSS_CPUS,
    }


def fmt_ci(auc, low, high) -> str:
    return f"{auc:.3f} [{low:.3f}, {high:.3f}]"


def learner_ranges(pairs) -> str:
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in pairs) or "none"


REPEAT_WARN = 0.05  # share of test patches that are copies of training patches, above which the finding says so


def _repeats(ds) -> str:
    """Sentence on test patches that are byte-identical to training patches; empty when none."""
    neg, pos = ds.get("test_negative_repeated_in_train", 0.0), ds.get("test_positive_repeated_in_train", 0.0)
    if not (neg or pos):
        return ""
    return (f" {100 * neg:.1f} % of the test `{ds.get('negative_class', 'negative')}` patches and {100 * pos:.1f} % "
            f"of the test `{ds['positive_class']}` patches are byte-identical to a training patch.")


def _repeat_warning(ds) -> str:
    if max(ds.get("test_negative_repeated_in_train", 0.0), ds.get("test_positive_repeated_in_train", 0.0)) <= REPEAT_WARN:
        return ""
    return (f"{_repeats(ds)} Test cases repeat training data (cases sharing a volume, e.g. one subject behind "
            "many case ids): the split by case does not make the test independent of training, so the AUC "
            "levels are optimistic; only the backbones' difference on the same split is of interest.")


def finding(result) -> str:
    """The one-paragraph finding, built from the numbers."""
    from lm_zoo.evaluation.statistics import runs

    ds = result.dataset
    where = (
        f"On {ds['provenance']} data ({ds['name']} v{ds['version']}: {ds['train_cases']} training cases / "
        f"{ds['test_cases']} test cases, {ds['train_patches']} / {ds['test_patches']} patches)"
    )
    names = list(result.curves)
    last = len(result.learners) - 1
    if not result.differences:
        stats = result.curves[names[0]]
        low, high = stats.interval(result.alpha)
        return (f"{where}, AdaBoost on frozen `{result.config['layer']}` features of the {names[0]} backbone "
                f"reached a test AUC of {fmt_ci(stats.auc[last], low[last], high[last])} with "
                f"{result.learners[last]} weak learners. Add a second backbone for a comparison."
                + (f" With only {ds['test_cases']} test case(s) the interval is not to be trusted."
                   if ds["test_cases"] < 10 else "") + _repeat_warning(ds))
    d = result.differences[0]
    a, b = result.curves[d.a], result.curves[d.b]
    sig = d.significant(result.alpha)
    few = min(range(len(result.learners)), key=lambda k: abs(result.learners[k] - 5))
    parts = [f"{where}, AdaBoost on frozen `{result.config['layer']}` features gave"]
    for k in dict.fromkeys([few, last]):
        n = result.learners[k]
        la, ha = a.interval(result.alpha)
        lb, hb = b.interval(result.alpha)
        parts.append(
            f" with {n} weak learner{'s' if n > 1 else ''} a test AUC of {fmt_ci(a.auc[k], la[k], ha[k])} for "
            f"{d.a} and {fmt_ci(b.auc[k], lb[k], hb[k])} for {d.b} (Δ = {d.delta[k]:+.3f}, "
            f"95% CI [{d.ci_low[k]:+.3f}, {d.ci_high[k]:+.3f}], p = {d.p_value[k]:.3g});"
        )
    text = "".join(parts).rstrip(";") + "."
    sig_runs = runs(sig, result.learners)
    if sig.any():
        sign = "higher" if np.mean(d.delta[sig]) > 0 else "lower"
        text += (f" The {d.a} features score significantly {sign} than the {d.b} features "
                 f"(paired case bootstrap, p < {result.alpha:g}, pointwise) with {learner_ranges(sig_runs)} weak "
                 f"learner{'' if sig_runs == [(1, 1)] else 's'} "
                 f"and not significantly different at the other {int((~sig).sum())} of {len(sig)} counts.")
    else:
        text += (f" The difference is not significant (p ≥ {result.alpha:g}) at any of the "
                 f"{len(sig)} learner counts.")
    if ds["test_cases"] < 10:
        text += (f" With only {ds['test_cases']} test case(s) the case bootstrap cannot say much: "
                 "the intervals are too narrow to trust.")
    text += _repeat_warning(ds)
    text += " " + METHOD_FINDING
    if ds["provenance"] == "user+inserted":
        text += (" These numbers come from real TOF-MRA volumes with synthetic aneurysms inserted by "
                 "lm_zoo.phantoms.insert_aneurysms (user+inserted): real vessels and look-alikes, "
                 "simulated lesions; not a clinical claim.")
    elif "phantom" in ds["provenance"].split("+"):
        text += " These numbers come from phantom data: they test the pipeline, not a clinical claim."
    elif ds["provenance"] != "user":
        text += " The dataset does not say where its patches came from (no `source` feature)."
    return text


def markdown(result) -> str:
    ds, cfg = result.dataset, result.config
    shown = [k for k, n in enumerate(result.learners) if n in TABLE_COUNTS or k == len(result.learners) - 1]
    lines = [
        "# Transfer comparison: frozen MiniVGG25D features + AdaBoost",
        "",
        f"**Data:** `{ds['name']}` v{ds['version']} — provenance **{ds['provenance']}**; "
        f"train {ds['train_cases']} cases ({ds['train_patches']} patches, {ds['train_positive_patches']} "
        f"`{ds['positive_class']}`), test {ds['test_cases']} cases ({ds['test_patches']} patches, "
        f"{ds['test_positive_patches']} `{ds['positive_class']}`).{_repeats(ds)}",
        "",
        f"**From:** {ds['origin']}." if ds.get("origin") else "",
        "",
        f"**Compared:** backbones {', '.join(f'`{n}` ({result.backbone_weights[n]})' for n in result.curves)}, "
        f"frozen, features at layer `{cfg['layer']}`; AdaBoost with decision stumps, 1–{cfg['max_learners']} "
        f"weak learners from one staged fit per backbone and seed.",
        "",
        f"**Uncertainty:** {len(cfg['seeds'])} seed(s) — seed *s* fits on a stratified case-level bootstrap of "
        f"the training cases (about 63% distinct cases per fit, so the AUCs are slightly conservative next to "
        f"one fit on all cases) — and {cfg['bootstrap']} paired bootstrap resamples of the test **cases** "
        f"(all patches of a drawn case; each replicate uses one seed's fit, the same for every backbone). "
        f"Bands are {int(round(100 * (1 - result.alpha)))}% percentile intervals; p-values are two-sided, "
        "pointwise per learner count (not corrected for the many counts).",
        "",
        "## Finding",
        "",
        finding(result),
        "",
        "![AUC vs weak learners](auc_vs_weak_learners.png)",
        "",
        "## AUC by number of weak learners",
        "",
        "| learners | " + " | ".join(result.curves) + " | " + " | ".join(f"Δ {d.a}−{d.b} (p)" for d in result.differences) + " |",
        "|---:|" + "---|" * (len(result.curves) + len(result.differences)),
    ]
    intervals = {n: s.interval(result.alpha) for n, s in result.curves.items()}
    for k in shown:
        cells = [fmt_ci(s.auc[k], intervals[n][0][k], intervals[n][1][k]) for n, s in result.curves.items()]
        cells += [f"{d.delta[k]:+.3f} ({d.p_value[k]:.3g}{'*' if d.p_value[k] < result.alpha else ''})" for d in result.differences]
        lines.append(f"| {result.learners[k]} | " + " | ".join(cells) + " |")
    lines += ["", "Full curves: `curves.csv`, `differences.csv`, `summary.json`.", ""]
    lines += ["## Fine-tuning (transfer the other way)", ""]
    if result.finetune:
        ft = next(iter(result.finetune.values()))
        lines += [
            f"Each backbone with a new sigmoid head, all layers trained for {ft['epochs']} epoch(s) on the same "
            f"training patches (same recipe for every backbone), test ROC AUC with the case-bootstrap 95% CI:",
            "",
            "| backbone | test AUC |",
            "|---|---|",
        ]
        lines += [f"| {n} | {fmt_ci(v['auc'], v['ci_low'], v['ci_high'])} |" for n, v in result.finetune.items()]
    else:
        lines.append("Skipped (`--no-finetune`).")
    lines += ["", "## Run", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in result.timings.items()]
    lines += ["", f"Command: `{cfg.get('command', 'lm-zoo evaluate')}`", "", machine_line(machine()) + " " + ACROSS_CPUS, ""]
    return "\n".join(lines)


def write_all(result, output_dir) -> dict:
    """Write every text output; returns name -> path."""
    out = Path(output_dir)
    paths = {
        "curves.csv": atomic_write_text(out / "curves.csv", _csv(
            ["backbone", "n_learners", "auc", "ci_low", "ci_high", "auc_sd_over_seeds"], curve_rows(result))),
        "differences.csv": atomic_write_text(out / "differences.csv", _csv(
            ["a", "b", "n_learners", "delta_auc", "ci_low", "ci_high", "p_value", "significant"], difference_rows(result))),
        "summary.json": atomic_write_text(out / "summary.json", json.dumps(summary(result), indent=1) + "\n"),
        "report.md": atomic_write_text(out / "report.md", markdown(result)),
    }
    return paths
