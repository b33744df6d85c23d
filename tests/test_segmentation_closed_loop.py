"""Closed loop on the torso phantom: its TotalSegmentator-compatible label maps -> landmarks.

The phantom knows its landmarks analytically and can rasterise its anatomy as TotalSegmentator
label maps (``generate_case(..., with_segmentation=True)``). On held-out seeds (base seed 2026;
the shipped datasets use seed 0), the derived landmarks must match the analytic ones: median
<= 3 mm over all landmarks and cases, each <= 8 mm. Landmarks whose phantom definition the
painted anatomy does not reproduce are listed in ``PHANTOM_MISMATCH`` with the reason and the
bound they are held to instead; the table printed (``pytest -s``) shows every error.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from lm_zoo.landmarks import landmarks_from_segmentation
from lm_zoo.anatomy import LM60
from lm_zoo.phantoms.torso_ct import case_seed, generate_case

SEEDS = [case_seed(2026, i) for i in range(3)]
MEDIAN_MM, EACH_MM = 3.0, 8.0
# landmark -> (why the phantom's analytic point differs from what its image shows, bound in mm)
PHANTOM_MISMATCH = {
    "lung_apex_right": ("the phantom's apex is the top of the unclipped lung ellipsoid; the painted lung is "
                        "clipped by the body cavity, so the point lies 10-30 mm outside the lung", 40.0),
    "lung_apex_left": ("as lung_apex_right", 40.0),
    "aortic_arch_top": ("the phantom's point is a spline control point, not the highest point of the painted "
                        "aortic centreline", 15.0),
    "brachiocephalic_trunk_origin": ("the phantom places the origin from an offset point that is not on the "
                                     "painted aorta's axis; the branch leaves the aorta ~10 mm lower", 15.0),
    "spleen_superior_pole": ("the phantom spleen's two largest semi-axes (52 and 45 mm) are close, so its long "
                             "axis is ill-defined in the image", 25.0),
    "spleen_inferior_tip": ("as spleen_superior_pole", 15.0),
    "liver_dome": ("highest point of a broad dome: the phantom takes it in anatomy space before its 5-7 degree "
                   "pose rotation, the rule in scanner space", 15.0),
    "liver_inferior_tip": ("as liver_dome (extreme point of a broad surface, pose-sensitive)", 20.0),
    "rib12_tip_left": ("the rule takes the rib voxel farthest from the T12 centroid; on a short, strongly "
                       "curved phantom 12th rib that is up to ~10 mm from the painted tube's end", 12.0),
    "rib12_tip_right": ("as rib12_tip_left", 12.0),
}
TOTAL_ONLY_MISMATCH = {
    "aortic_root": ("without the aorta_annulus subtask the root is where the aorta touches the heart; the phantom's "
                    "root lies 20-30 mm inside its heart ellipsoid", 20.0),
}


@pytest.fixture(scope="module")
def errors():
    """{mode: {landmark: [error mm per case]}} for subtasks present ("subtasks") and "total" only."""
    out = {"subtasks": {}, "total": {}}
    for seed in SEEDS:
        image, truth, segmentation = generate_case(seed, with_segmentation=True)
        truth = truth.as_dict()
        for mode, seg in (("subtasks", segmentation), ("total", {"total": segmentation["total"]})):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                derived = landmarks_from_segmentation(seg, image=image)
            for name, point in zip(derived.names, derived.points):
                out[mode].setdefault(name, []).append(float(np.linalg.norm(point - truth[name])))
    print("\nclosed loop, torso phantom seeds", SEEDS, "(error mm per case)")
    print(f"{'landmark':32s} {'with subtasks':24s} total only")
    for name in LM60:
        a, b = out["subtasks"].get(name, []), out["total"].get(name, [])
        print(f"{name:32s} {' '.join(f'{e:5.1f}' for e in a):24s} {' '.join(f'{e:5.1f}' for e in b)}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["subtasks", "total"])
def test_derived_landmarks_match_the_phantom_analytic_ones(errors, mode):
    table = errors[mode]
    allowed = dict(PHANTOM_MISMATCH, **(TOTAL_ONLY_MISMATCH if mode == "total" else {}))
    # every landmark with a rule and its structures in the phantom is derived in every case
    expected = set(LM60) - {"right_iliac_bifurcation", "left_iliac_bifurcation"}
    if mode == "total":
        expected -= {"pulmonary_trunk_bifurcation", "celiac_trunk_origin", "sma_origin",
                     "right_renal_artery_origin", "left_renal_artery_origin"}
    assert set(table) == expected
    assert all(len(v) == len(SEEDS) for v in table.values())
    matched = np.concatenate([v for n, v in table.items() if n not in allowed])
    assert np.median(np.concatenate(list(table.values()))) <= MEDIAN_MM
    assert np.median(matched) <= MEDIAN_MM
    too_far = {n: max(v) for n, v in table.items() if max(v) > allowed.get(n, (None, EACH_MM))[1]}
    assert not too_far, f"landmarks farther than their bound (mm): {too_far}"
