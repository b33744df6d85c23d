"""The landmark vocabulary: every name the package, its datasets, weights and reports use.

Nothing here depends on the rest of lm_zoo (phantoms, segmentation rules, detection, dataset
builders and reports import it, never the reverse). Names are snake_case and stable.

- ``LANDMARKS``: (name, one-line definition) of the 60 torso landmarks, ordered by region (spine,
  thorax, heart and great vessels, abdominal vessels, organs, kidneys, pelvis); ``REGIONS`` maps
  each name to its region;
- ``LM60``: their names, the class order of the 60-class stage; ``LM20``: the nested subset of the
  20-class stage (four spine levels T1, T6, T12, L3 plus one or two points of each region, spread
  from the lung apices to the femoral heads, no two closer than 2 cm in a typical case);
- ``VERTEBRAE``: the levels that carry a landmark (C7..L5), ``VERTEBRA_LEVELS``: every level's
  class name in cranio-caudal order (C1..L6, S1), for vertebral-order priors;
- ``ORDER_CHAINS``: superior-to-inferior orders that hold in any patient;
- ``mirror_twin``: the right/left counterpart of a name (the patient's right is LPS -x).
"""
from __future__ import annotations

__all__ = [
    "LANDMARKS", "LM60", "LM20", "REGIONS", "VERTEBRAE", "VERTEBRA_LEVELS", "ORDER_CHAINS",
    "NON_LANDMARK", "description", "mirror_twin", "mirror_pairs",
]

NON_LANDMARK = "non_landmark"

# Vertebral levels with a landmark (vertebral body centre), cranio-caudal.
VERTEBRAE: list[str] = ["c7"] + [f"t{i}" for i in range(1, 13)] + [f"l{i}" for i in range(1, 6)]
# Every level a class may name (C1..C7, T1..T12, L1..L6, S1), cranio-caudal.
VERTEBRA_LEVELS: tuple[str, ...] = tuple(
    f"vertebra_{v}"
    for v in [f"c{i}" for i in range(1, 8)] + [f"t{i}" for i in range(1, 13)] + [f"l{i}" for i in range(1, 7)] + ["s1"]
)

LANDMARKS: list[tuple[str, str]] = [
    *[(f"vertebra_{v}", f"centre of the {v.upper()} vertebral body") for v in VERTEBRAE],
    ("sternal_notch", "jugular notch: midpoint of the superior border of the manubrium"),
    ("sternal_angle", "centre of the manubriosternal joint"),
    ("xiphoid_tip", "inferior tip of the xiphoid process"),
    ("lung_apex_right", "highest point of the right lung"),
    ("lung_apex_left", "highest point of the left lung"),
    ("carina", "tracheal bifurcation: end of the tracheal lumen centreline where the main bronchi start"),
    ("rib12_tip_right", "anterior (free) tip of the right 12th rib"),
    ("rib12_tip_left", "anterior (free) tip of the left 12th rib"),
    ("heart_apex", "apex of the heart: the myocardium at the tip of the left-ventricular long axis"),
    ("aortic_root", "centre of the aortic root at the aortic valve"),
    ("aortic_arch_top", "highest point of the aortic arch centreline"),
    ("brachiocephalic_trunk_origin", "origin of the brachiocephalic trunk on the aortic arch wall"),
    ("left_common_carotid_origin", "origin of the left common carotid artery on the aortic arch wall"),
    ("left_subclavian_artery_origin", "origin of the left subclavian artery on the aortic arch wall"),
    ("pulmonary_trunk_bifurcation", "bifurcation of the pulmonary trunk into right and left pulmonary arteries"),
    ("aortic_hiatus", "aortic centreline where the aorta passes the diaphragm (T12)"),
    ("celiac_trunk_origin", "origin of the celiac trunk on the anterior aortic wall"),
    ("sma_origin", "origin of the superior mesenteric artery on the anterior aortic wall"),
    ("right_renal_artery_origin", "origin of the right renal artery on the aortic wall"),
    ("left_renal_artery_origin", "origin of the left renal artery on the aortic wall"),
    ("aortic_bifurcation", "bifurcation of the abdominal aorta into the common iliac arteries"),
    ("right_iliac_bifurcation", "bifurcation of the right common iliac artery into external and internal iliac"),
    ("left_iliac_bifurcation", "bifurcation of the left common iliac artery into external and internal iliac"),
    ("gastroesophageal_junction", "entry of the oesophagus into the stomach (cardia)"),
    ("liver_dome", "highest point of the liver (right hemidiaphragm dome)"),
    ("liver_inferior_tip", "inferior tip of the right liver lobe"),
    ("spleen_superior_pole", "superior pole of the spleen, just inside its upper tip"),
    ("spleen_inferior_tip", "inferior tip of the spleen, just inside it"),
    ("kidney_right_upper_pole", "upper pole of the right kidney, just inside the tip of its long axis"),
    ("kidney_right_lower_pole", "lower pole of the right kidney, just inside the tip of its long axis"),
    ("kidney_right_hilum", "right renal hilum: entrance of the renal sinus on the medial kidney border"),
    ("kidney_left_upper_pole", "upper pole of the left kidney, just inside the tip of its long axis"),
    ("kidney_left_lower_pole", "lower pole of the left kidney, just inside the tip of its long axis"),
    ("kidney_left_hilum", "left renal hilum: entrance of the renal sinus on the medial kidney border"),
    ("sacral_promontory", "anterior-superior edge of the S1 vertebral body"),
    ("iliac_crest_top_right", "highest point of the right iliac crest"),
    ("iliac_crest_top_left", "highest point of the left iliac crest"),
    ("asis_right", "right anterior superior iliac spine: most anterior point of the iliac wing"),
    ("asis_left", "left anterior superior iliac spine: most anterior point of the iliac wing"),
    ("femoral_head_right", "centre of the right femoral head"),
    ("femoral_head_left", "centre of the left femoral head"),
    ("pubic_symphysis", "midpoint of the superior margin of the pubic symphysis"),
]
LM60: list[str] = [name for name, _ in LANDMARKS][:60]
# The 20-class stage: spread over neck to hips, all organ systems, four spine levels.
LM20: list[str] = [
    "vertebra_t1", "vertebra_t6", "vertebra_t12", "vertebra_l3", "sternal_notch", "xiphoid_tip",
    "lung_apex_right", "lung_apex_left", "carina", "heart_apex", "aortic_arch_top",
    "celiac_trunk_origin", "aortic_bifurcation", "liver_dome", "spleen_inferior_tip",
    "kidney_right_hilum", "kidney_left_hilum", "sacral_promontory", "femoral_head_right",
    "femoral_head_left",
]

_REGION_OF_FIRST = [
    ("vertebra_c7", "spine"),
    ("sternal_notch", "thorax"),
    ("heart_apex", "heart_and_great_vessels"),
    ("aortic_hiatus", "abdominal_vessels"),
    ("gastroesophageal_junction", "organs"),
    ("kidney_right_upper_pole", "kidneys"),
    ("sacral_promontory", "pelvis"),
]


def _regions() -> dict[str, str]:
    starts = {name: region for name, region in _REGION_OF_FIRST}
    out, region = {}, None
    for name, _ in LANDMARKS:
        region = starts.get(name, region)
        out[name] = region
    return out


REGIONS: dict[str, str] = _regions()

# Anatomical order (LPS z: superior is +z) that holds in any patient position. Each chain runs
# from superior to inferior.
ORDER_CHAINS: tuple[tuple[str, ...], ...] = (
    ("aortic_hiatus", "celiac_trunk_origin", "sma_origin", "right_renal_artery_origin", "aortic_bifurcation",
     "right_iliac_bifurcation"),
    ("sma_origin", "left_renal_artery_origin", "aortic_bifurcation", "left_iliac_bifurcation"),
    ("kidney_right_upper_pole", "kidney_right_hilum", "kidney_right_lower_pole"),
    ("kidney_left_upper_pole", "kidney_left_hilum", "kidney_left_lower_pole"),
    ("sternal_notch", "sternal_angle", "xiphoid_tip"),
    ("liver_dome", "liver_inferior_tip"),
    ("spleen_superior_pole", "spleen_inferior_tip"),
)

_DESCRIPTIONS = dict(LANDMARKS)


def description(name: str) -> str:
    """The one-line definition of a landmark; KeyError names an unknown one."""
    try:
        return _DESCRIPTIONS[name]
    except KeyError:
        raise KeyError(f"unknown landmark {name!r}; known: lm_zoo.anatomy.LANDMARKS") from None


def mirror_twin(name: str) -> str | None:
    """The right/left counterpart of ``name`` (``lung_apex_right`` -> ``lung_apex_left``), or None."""
    parts = name.split("_")
    for a, b in (("right", "left"), ("left", "right")):
        if a in parts:
            return "_".join(b if p == a else p for p in parts)
    return None


def mirror_pairs(names) -> list[tuple[str, str]]:
    """(right, left) pairs among ``names``, in the order of ``names``."""
    names = list(names)
    return [(n, mirror_twin(n)) for n in names if "right" in n.split("_") and mirror_twin(n) in names]
