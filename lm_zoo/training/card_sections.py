"""Card sections rendered from the results benchmarks add to a run's metrics.json after the run:
real-CT classification (``real_ct`` entries) and whole-volume detection (the ``detection`` entry).
Each section says which data its figures come from."""
from __future__ import annotations

__all__ = ["real_ct_section", "detection_section"]


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def real_ct_section(entry: dict) -> list[str]:
    """Markdown lines of one real-CT result (:func:`lm_zoo.training.real_ct.real_ct_accuracy` as
    ``benchmarks/sim_to_real.py --json`` writes it): real-CT figures, stated as such."""
    per = entry.get("per_landmark", [])
    ranks = ", ".join(f"{r['landmark']} {r['rank_of_truth']}" for r in per)
    return [
        f"### Real CT: {entry.get('title', entry.get('case', ''))}",
        f"- **Data:** {entry['data']}",
        f"- **Top-1:** {_fmt(entry['real_top1'])}, **top-5:** {_fmt(entry['real_top5'])} on {entry['n_landmarks']} landmarks; "
        f"**non-landmark recall:** {_fmt(entry['non_landmark_recall'])} ({entry['n_non_landmark']} points)",
        f"- **Rank of the true class per landmark** (1 = top-1): {ranks or 'no landmark derivable on this scan'}",
        "",
    ]


def _mm(value) -> str:
    return "n/a" if value is None else f"{value:.1f} mm"


def _detection_summary_lines(summary: dict) -> list[str]:
    o = summary["overall"]
    share = "n/a" if o["within_10mm"] is None else f"{o['within_10mm']:.3f}"
    lines = [f"- **Data:** {summary['data']}",
             f"- **Overall:** median error {_mm(o['median_error_mm'])} (found landmarks in view); within 10 mm "
             f"**{share}** ({o['n_within_10mm']} of {o['in_view']} in-view landmark instances); misses "
             f"{o['misses']}; false detections {o['false_detections']} (found > 10 mm away or outside the view)"
             + (f"; of {o['outside_view']} landmark instances outside the view, {o['found_outside_view']} reported "
                "found" if o.get("outside_view") else "")]
    rows = [(n, r) for n, r in summary["per_landmark"].items() if r["in_view"]]
    rows.sort(key=lambda nr: (nr[1]["within_10mm"], nr[0]))
    lines.append("- **Per landmark** (within 10 mm / median error / misses / false detections, lowest first): "
                 + "; ".join(f"{n} {_fmt(r['within_10mm'])} / {_mm(r['median_error_mm'])} / {r['misses']} / "
                             f"{r['false_detections']}" for n, r in rows) + ".")
    if summary.get("found_without_reference"):
        lines.append("- **Found where the reference has no landmark to check against** (outside the field of view, "
                     "cut by it or not derivable from the segmentation; not counted above): "
                     + ", ".join(summary["found_without_reference"]) + ".")
    return lines


def detection_section(entry: dict) -> list[str]:
    """Markdown lines of ``benchmarks/detect.py --update-metrics`` results: whole-volume detection
    (``lm_zoo.detection``) on held-out phantom cases and on real CT, each stated as such."""
    calibration = entry.get("calibration", {})
    lines = ["## Whole-volume detection (`lm_zoo.detection.detect_landmarks`, `lm-zoo detect`)", "",
             f"Command: `{entry['command']}`. Found/not-found threshold {entry['threshold']:g}"
             + (f", shape weight {entry['shape_weight']:g}" if "shape_weight" in entry else "")
             + (f", calibrated on {calibration['data']} ({calibration['objective']})" if calibration else
                " (not calibrated)") + "; search: "
             + ", ".join(f"{k}={v}" for k, v in entry.get("search", {}).items()) + ".", ""]
    lines += ["### Held-out phantom cases (synthetic data)", *_detection_summary_lines(entry["phantom"]), ""]
    if entry.get("phantom_partial"):
        lines += ["### Held-out phantom cases cut to a chest or abdomen-pelvis view (synthetic data)",
                  *_detection_summary_lines(entry["phantom_partial"]), ""]
    if entry.get("real"):
        lines += ["### Real CT (detection)", *_detection_summary_lines(entry["real"]), ""]
    speed = entry.get("speed")
    if speed:
        t = speed["timings"]
        load = speed.get("load_average_1min")
        lines += ["### Speed", f"- **Data:** {speed['data']}; {speed['cpu_count']} CPU cores"
                  + (f" (1-minute load average {load:.1f} at the start: the cores were shared)" if load else ""),
                  f"- {speed['seconds_per_volume']:.1f} s per volume ({speed['patches']} patches; extraction "
                  f"{t['extract_s']:.1f} s, inference {t['inference_s']:.1f} s); naive dense scan "
                  f"{speed['dense_seconds_extrapolated']:.0f} s ({speed['dense_patches']} patches, extrapolated)", ""]
    return lines
