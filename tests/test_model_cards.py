"""Shipped model cards are generated from the runs' files: the card is exactly
``lm_zoo.training.cards.shipped_card`` (model_card of metrics.json + history.csv, with the
hand-written preamble after the title), and every figure in it is a value of those files."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from lm_zoo import pretrained
from lm_zoo.training import cards
from lm_zoo.training.card_sections import detection_section

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def _files(name):
    """The card's path, the run's metrics and history (the preset's files)."""
    metrics = json.loads(pretrained.preset_file(name, "metrics").read_text(encoding="utf-8"))
    return pretrained.preset_file(name, "card"), metrics, cards.read_history(pretrained.preset_file(name, "history"))


def _numbers(obj):
    if isinstance(obj, bool) or obj is None:
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in _numbers(v)]
    if isinstance(obj, (list, tuple)):
        return [n for v in obj for n in _numbers(v)]
    if isinstance(obj, str):
        return [float(m) for m in NUMBER.findall(obj)]
    return []


def _derived(history, metrics):
    """The history figures the card prints: epochs, epoch-time statistics, best validation."""
    values = [float(len(history))]
    seconds = [r["epoch_seconds"] for r in history if r.get("epoch_seconds") is not None]
    if seconds:
        values += [float(np.median(seconds)), min(seconds), max(seconds)]
    values += [r[k] for r in history for k in r if r[k] is not None]
    values += [r["epoch"] + 1 for r in history]
    return values


@pytest.mark.parametrize("name", cards.SHIPPED_SETS)
def test_shipped_card_is_the_regenerated_text(name):
    path, _, _ = _files(name)
    card = path.read_text(encoding="utf-8")
    assert card == cards.shipped_card(name), (
        f"{path} differs from what its metrics.json, history.csv and preamble give: edit "
        f"{pretrained.preset_file(name, 'preamble').name} (never the card) and run `lm-zoo weights card {name}`")


@pytest.mark.parametrize("name", cards.SHIPPED_SETS)
def test_every_figure_of_the_generated_part_is_in_the_run_files(name):
    path, metrics, history = _files(name)
    card = path.read_text(encoding="utf-8")
    generated = card.split(cards.GENERATED_NOTE, 1)[1]
    # "95 % CI" names the interval, "within 10 mm" the detection criterion
    allowed = _numbers(metrics) + _derived(history, metrics) + [95.0, 10.0]
    for text in NUMBER.findall(generated):
        value = float(text)
        decimals = len(text.split(".")[1]) if "." in text else 0
        tolerance = 0.5 * 10 ** -decimals + 1e-12
        assert any(abs(value - a) <= tolerance for a in allowed), f"{path.name}: figure {text} is not in the run files"
    # The headline figures are there, as the metrics hold them.
    assert f"{metrics['test_top1']:.4f}" in generated and f"{metrics['test_top5']:.4f}" in generated
    assert f"{len(history)} of at most" in generated
    assert all(f"{k} {v:.3f}" in generated for k, v in metrics["per_class_accuracy"].items())


def test_landmark_card_carries_the_detection_figures_of_its_metrics():
    path, metrics, _ = _files("landmark")
    generated = path.read_text(encoding="utf-8").split(cards.GENERATED_NOTE, 1)[1]
    generated = generated.split("## Whole-volume detection", 1)[1]
    entry = metrics["detection"]  # lm-zoo weights calibrate NAME --metrics (benchmarks/detect.py before 0.2)
    assert entry["command"] and f"Command: `{entry['command']}`" in generated, "the card says how its figures were made"
    shape = f", shape weight {entry['shape_weight']:g}" if "shape_weight" in entry else ""
    assert f"threshold {entry['threshold']:g}{shape}, calibrated on {entry['calibration']['data']}" in generated
    sections = {"phantom": "### Held-out phantom cases (synthetic data)", "real": "### Real CT (detection)",
                "phantom_partial": "### Held-out phantom cases cut to a chest or abdomen-pelvis view (synthetic data)"}
    assert "phantom_partial" in entry  # whole-torso cases alone never test "not found" outside the view
    for key, title in sections.items():
        summary, o = entry[key], entry[key]["overall"]
        section = generated.split(title, 1)[1].split("###", 1)[0]
        assert summary["data"] in section
        assert (f"median error {o['median_error_mm']:.1f} mm" in section and f"within 10 mm **{o['within_10mm']:.3f}** "
                f"({o['n_within_10mm']} of {o['in_view']} in-view" in section), section
        assert f"misses {o['misses']}; false detections {o['false_detections']}" in section
        if o.get("outside_view"):
            assert (f"of {o['outside_view']} landmark instances outside the view, {o['found_outside_view']} reported "
                    "found") in section
        for n, r in summary["per_landmark"].items():
            if r["in_view"]:
                med = "n/a" if r["median_error_mm"] is None else f"{r['median_error_mm']:.1f} mm"
                assert f"{n} {r['within_10mm']:.3f} / {med} / {r['misses']} / {r['false_detections']}" in section, n
        # the per-landmark figures add up to the overall ones
        per = [r for r in summary["per_landmark"].values() if r["in_view"]]
        assert sum(r["misses"] for r in per) == o["misses"] and sum(r["in_view"] for r in per) == o["in_view"]
    assert "example_ct.nii.gz" in entry["real"]["data"] and "case_seed(1, " in entry["phantom"]["data"]
    assert f"{entry['speed']['seconds_per_volume']:.1f} s per volume" in generated


def test_detection_lines_state_the_data_and_render_missing_figures():
    summary = {"data": "synthetic phantom CT, case_seed(7, 0..0)", "per_landmark": {
        "carina": {"in_view": 1, "median_error_mm": None, "within_10mm": 0.0, "misses": 1, "false_detections": 0},
        "liver_dome": {"in_view": 0, "median_error_mm": None, "within_10mm": None, "misses": 0, "false_detections": 1}},
        "overall": {"median_error_mm": None, "within_10mm": 0.0, "n_within_10mm": 0, "in_view": 1, "misses": 1,
                    "false_detections": 1}}
    text = "\n".join(detection_section({"command": "python benchmarks/detect.py --update-metrics m.json",
                                        "threshold": 0.45, "phantom": summary}))
    assert "threshold 0.45 (not calibrated)" in text and "case_seed(7, 0..0)" in text
    assert "carina 0.000 / n/a / 1 / 0" in text and "liver_dome" not in text.split("Per landmark", 1)[1]
    assert "### Real CT (detection)" not in text and "median error n/a" in text


@pytest.mark.parametrize("name", cards.SHIPPED_SETS)
def test_preamble_holds_no_result_figures(name):
    # Accuracies (0.xxx), timings and epoch counts belong to the generated part only.
    preamble = pretrained.preset_file(name, "preamble").read_text(encoding="utf-8")
    assert not re.findall(r"\b0\.\d{3}\b|\d+(?:\.\d+)? ?s of training|\d+ epochs|\d+(?:\.\d+)? ?%", preamble)


def test_card_of_a_run_records_the_command_and_the_history(tmp_path):
    _, metrics, history = _files("landmark_phantom")  # a 20-epoch run
    metrics = dict(metrics, command="lm-zoo train landmark --out runs/x --epochs 30", epochs_max=30)
    card = cards.model_card(metrics, history=history[:12])
    assert "`lm-zoo train landmark --out runs/x --epochs 30`" in card
    assert "12 of at most 30 (early stopping stopped the run)" in card
    best = max(r["val_accuracy"] for r in history[:12])
    assert f"best validation top-1 | {best:.4f}" in card


def test_readme_figures_of_the_shipped_sets_are_their_metrics():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for name in cards.SHIPPED_SETS:
        _, metrics, _ = _files(name)
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        lo, hi = metrics.get("test_top1_ci95_case_bootstrap") or metrics["test_top1_ci95"]
        assert f"top-1 {metrics['test_top1']:.3f}, 95 % " in row and f"{lo:.3f}–{hi:.3f}" in row, row


def test_method_is_cited_and_the_licence_declared():
    repo = Path(__file__).resolve().parents[1]
    import lm_zoo

    assert "17K17680" in lm_zoo.MiniVGG25D.__doc__ and "17K17680" in (repo / "README.md").read_text(encoding="utf-8")
    for bib in sorted((repo / "datasets").glob("*/CITATIONS.bib")):
        assert "number      = {17K17680}" in bib.read_text(encoding="utf-8"), bib
    assert "Apache License" in (repo / "LICENSE").read_text(encoding="utf-8")
    assert 'license = "Apache-2.0"' in (repo / "pyproject.toml").read_text(encoding="utf-8")


def _card_command(argv):
    import argparse

    from lm_zoo.commands import weights_card

    parser = argparse.ArgumentParser()
    weights_card.add_arguments(parser)
    return weights_card.run(parser.parse_args(argv))


@pytest.mark.parametrize("name", cards.SHIPPED_SETS)
def test_weights_card_check_passes_on_the_shipped_cards(name, capsys):
    assert _card_command([name, "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_weights_card_check_fails_when_the_card_is_stale(monkeypatch, capsys):
    monkeypatch.setattr(cards, "shipped_card", lambda name, folder=None: "# not this card\n")
    assert _card_command(["cifar", "--check"]) == 1
    assert "lm-zoo weights card cifar" in capsys.readouterr().err


def test_write_card_regenerates_a_card_from_its_files(tmp_path):
    """write_card on a copy of a set's files: a stale card is rewritten to the regenerated text."""
    import shutil

    name = "landmark_phantom"
    flat = {"metrics": ".metrics.json", "history": ".history.csv", "weights": ".weights.h5", "preamble": ".preamble.md"}
    for kind, suffix in flat.items():  # write_card(folder=...) reads mini_vgg25d_<set><suffix> side by side
        shutil.copy(pretrained.preset_file(name, kind), tmp_path / f"mini_vgg25d_{name}{suffix}")
    (tmp_path / "mini_vgg25d_landmark_phantom.md").write_text("stale\n", encoding="utf-8")
    written = cards.write_card(name, folder=tmp_path)
    assert written == tmp_path / "mini_vgg25d_landmark_phantom.md"
    assert written.read_text(encoding="utf-8") == pretrained.preset_file(name, "card").read_text(encoding="utf-8")
