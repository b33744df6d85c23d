"""The derivation rules: one table, landmark -> (structures, description, what it needs, how).

:data:`RULES` is the documentation and the computation at once: each :class:`Rule` names the
TotalSegmentator structures in words, describes the rule, lists the structures it needs (any one
of ``needs``' alternatives, all of its names present) and holds the function that derives the
point from the present :class:`~lm_zoo.segmentation.structures.Structures`. A rule without a
function documents a landmark that the ``total`` task cannot define.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lm_zoo.anatomy import VERTEBRAE
from lm_zoo.segmentation.abdomen import gej, kidney_hilum, kidney_pole, liver_dome, liver_tip, spleen_pole
from lm_zoo.segmentation.pelvis import asis, femoral_head, iliac_crest, pubic_symphysis
from lm_zoo.segmentation.spine import sacral_promontory, vertebra
from lm_zoo.segmentation.structures import Structures
from lm_zoo.segmentation.thorax import (carina, heart_apex, lung_apex, rib12_tip, sternal_angle, sternum_bottom,
                                        sternum_top)
from lm_zoo.segmentation.vessels import (aortic_bifurcation, aortic_hiatus, aortic_root, arch_top, origin,
                                         renal_origin)

__all__ = ["Rule", "RULES"]


@dataclass(frozen=True)
class Rule:
    """How one landmark comes from a segmentation.

    Iterates and indexes as the ``(structures, description)`` pair that ``RULES`` held before the
    table carried its functions, so ``for structures, rule in RULES.values()`` keeps working.
    """

    structures: str
    description: str
    needs: tuple[tuple[str, ...], ...] = ()
    derive: Callable[[Structures], np.ndarray] | None = None

    def __iter__(self):
        return iter((self.structures, self.description))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index):
        return (self.structures, self.description)[index]

    def available(self, seg: Structures) -> bool:
        """True when every structure of one of the alternatives in ``needs`` is present."""
        return self.derive is not None and any(all(seg.has(n) for n in alt) for alt in self.needs)


def _one(*names: str) -> tuple[tuple[str, ...], ...]:
    return (tuple(names),)


def _branch_origin(branch: str, structures: str) -> Rule:
    return Rule(structures, "centroid of the branch voxels touching the aorta", _one(branch, "aorta"),
                lambda seg: origin(seg, branch))


def _renal_origin(side: str) -> Rule:
    return Rule("renal_arteries: renal_arteries + aorta",
                f"centroid of the renal-artery voxels touching the aorta on its {side} side",
                _one("renal_arteries", "aorta"), lambda seg: renal_origin(seg, side))


def _spine_rules() -> dict[str, Rule]:
    rules = {f"vertebra_{v}": Rule(
        f"vertebrae_{v.upper()} (+ vertebrae_body, spinal_cord)",
        "centroid of the vertebral body: vertebrae_body ∩ vertebra when present, else the "
        "vertebra's voxels in front of its spinal canal (spinal_cord within 3 mm of the "
        "vertebra, else the hole in the ring), opened, largest component",
        _one(f"vertebrae_{v.upper()}"), lambda seg, v=v: vertebra(seg, v)) for v in VERTEBRAE}
    return rules


def _thorax_rules() -> dict[str, Rule]:
    apex = "apex of a quadratic fitted to the upper lobe's top surface"
    rib_tip = "cap of the 12th rib farthest from its vertebral end (the T12/spine end)"
    return {
        "sternal_notch": Rule("sternum", "superior cap of the sternum (midpoint of the manubrium's superior border)",
                              _one("sternum"), sternum_top),
        "sternal_angle": Rule("sternum", "centroid of the narrowest cross-section (along the sternum's long axis) "
                                         "between 10% and 55% of its length from the top: the manubriosternal waist",
                              _one("sternum"), sternal_angle),
        "xiphoid_tip": Rule("sternum", "inferior cap of the sternum", _one("sternum"), sternum_bottom),
        "lung_apex_right": Rule("lung_upper_lobe_right", apex, _one("lung_upper_lobe_right"),
                                lambda seg: lung_apex(seg, "right")),
        "lung_apex_left": Rule("lung_upper_lobe_left", apex, _one("lung_upper_lobe_left"),
                               lambda seg: lung_apex(seg, "left")),
        "carina": Rule("trachea", "inferior end of the tracheal lumen: centroid of its last 6 mm above the end (or "
                                  "above where it splits in two), at the mean height of the end surface",
                       _one("trachea"), carina),
        "rib12_tip_right": Rule("rib_right_12", rib_tip, _one("rib_right_12"), lambda seg: rib12_tip(seg, "right")),
        "rib12_tip_left": Rule("rib_left_12", rib_tip, _one("rib_left_12"), lambda seg: rib12_tip(seg, "left")),
        "heart_apex": Rule("heart", "tip = heart voxels farthest from the centroid on the left-anterior-inferior end "
                                    "of the principal axis; the point 10% of the way back to the centroid",
                           _one("heart"), heart_apex),
    }


def _vessel_rules() -> dict[str, Rule]:
    not_total = "not derivable from 'total': the internal iliac artery is not labelled"
    return {
        "aortic_root": Rule("aorta_annulus: annulus_proper, else aorta + heart",
                            "centroid of the aortic annulus mask; else centroid of the aorta voxels touching the heart",
                            (("annulus_proper",), ("aorta", "heart")), aortic_root),
        "aortic_arch_top": Rule("aorta", "centreline below the aorta's superior cap: the voxel of largest wall "
                                         "distance in the column under the cap", _one("aorta"), arch_top),
        "brachiocephalic_trunk_origin": _branch_origin("brachiocephalic_trunk", "brachiocephalic_trunk + aorta"),
        "left_common_carotid_origin": _branch_origin("common_carotid_artery_left", "common_carotid_artery_left + aorta"),
        "left_subclavian_artery_origin": _branch_origin("subclavian_artery_left", "subclavian_artery_left + aorta"),
        "pulmonary_trunk_bifurcation": Rule("pulmonary_artery_landmarks: pul_bifurcation",
                                            "centroid of the pul_bifurcation mask", _one("pul_bifurcation"),
                                            lambda seg: seg.region("pul_bifurcation").centroid),
        "aortic_hiatus": Rule("aorta + vertebrae_T12", "centroid of the aorta's axial cross-section at the height of "
                                                       "the T12 body centre", _one("aorta", "vertebrae_T12"), aortic_hiatus),
        "celiac_trunk_origin": _branch_origin("celiac_trunk", "renal_arteries: celiac_trunk + aorta"),
        "sma_origin": _branch_origin("superior_mesenteric_artery", "renal_arteries: superior_mesenteric_artery + aorta"),
        "right_renal_artery_origin": _renal_origin("right"),
        "left_renal_artery_origin": _renal_origin("left"),
        "aortic_bifurcation": Rule("aorta + iliac_artery_left/right", "centroid of the aorta voxels touching the "
                                                                      "iliac arteries (the aorta's inferior end)",
                                   _one("aorta", "iliac_artery_left", "iliac_artery_right"), aortic_bifurcation),
        "right_iliac_bifurcation": Rule("-", not_total),
        "left_iliac_bifurcation": Rule("-", not_total),
    }


def _abdomen_rules() -> dict[str, Rule]:
    rules = {
        "gastroesophageal_junction": Rule("esophagus + stomach", "centroid of the oesophagus voxels touching the "
                                                                 "stomach within 10 mm (along the oesophagus) of its "
                                                                 "distal end", _one("esophagus", "stomach"), gej),
        "liver_dome": Rule("liver", "apex of a quadratic fitted to the liver's top surface (one lobe)",
                           _one("liver"), liver_dome),
        "liver_inferior_tip": Rule("liver", "apex of the liver surface along (0.3 R, 0.35 A, 1 I), moved 10% of its "
                                            "distance to the liver centroid inwards", _one("liver"), liver_tip),
        "spleen_superior_pole": Rule("spleen", "88% of the way from the centroid to the tip along the principal axis "
                                               "closest to superior (the upper end)", _one("spleen"),
                                     lambda seg: spleen_pole(seg, True)),
        "spleen_inferior_tip": Rule("spleen", "88% of the way from the centroid to the tip along that axis (the "
                                              "lower end)", _one("spleen"), lambda seg: spleen_pole(seg, False)),
    }
    for side in ("right", "left"):
        for pole in ("upper", "lower"):
            rules[f"kidney_{side}_{pole}_pole"] = Rule(
                f"kidney_{side}", f"92% of the way from the centroid to the {pole} tip along the long (principal) axis",
                _one(f"kidney_{side}"), lambda seg, s=side, u=pole == "upper": kidney_pole(seg, s, u))
    for side in ("right", "left"):
        rules[f"kidney_{side}_hilum"] = Rule(
            f"kidney_{side}", "centroid of the renal sinus: the largest component of the kidney's convex hull "
                              "(filled) minus the kidney, on its medial side",
            _one(f"kidney_{side}"), lambda seg, s=side: kidney_hilum(seg, s))
    return rules


def _pelvis_rules() -> dict[str, Rule]:
    rules = {"sacral_promontory": Rule("vertebrae_S1 (else sacrum) + spinal_cord",
                                       "S1 body (as for vertebrae): cap of its midsagittal slab along "
                                       "anterior+superior, 4 mm inside", (("vertebrae_S1",), ("sacrum",)),
                                       sacral_promontory)}
    for side in ("right", "left"):
        rules[f"iliac_crest_top_{side}"] = Rule(f"hip_{side}", "superior cap of the hip bone, 3 mm inside",
                                                _one(f"hip_{side}"),
                                                lambda seg, s=side: iliac_crest(seg, s))
    for side in ("right", "left"):
        rules[f"asis_{side}"] = Rule(f"hip_{side}", "cap of the upper half of the hip bone along (0.35 lateral, "
                                                    "1 A, 0.15 S), 3 mm inside", _one(f"hip_{side}"),
                                     lambda seg, s=side: asis(seg, s))
    for side in ("right", "left"):
        rules[f"femoral_head_{side}"] = Rule(f"femur_{side}", "centre of a sphere fitted (least squares, trimmed) "
                                                              "to the surface of the femur within 32 mm of its top",
                                             _one(f"femur_{side}"), lambda seg, s=side: femoral_head(seg, s))
    rules["pubic_symphysis"] = Rule("hip_left + hip_right", "mean of the superior caps of each hip bone's voxels "
                                                            "within 8 mm of the other one (the symphysis)",
                                    _one("hip_left", "hip_right"), pubic_symphysis)
    return rules


RULES: dict[str, Rule] = {**_spine_rules(), **_thorax_rules(), **_vessel_rules(), **_abdomen_rules(),
                          **_pelvis_rules()}
