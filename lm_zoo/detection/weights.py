"""Which weight sets the detector accepts, and the patch geometry they were trained at."""
from __future__ import annotations

from lm_zoo.anatomy import NON_LANDMARK
from lm_zoo.detection.errors import DetectionError

__all__ = ["landmark_weight_set", "patch_spacing_mm", "patch_size_px"]


def landmark_weight_set(weights):
    """The WeightSet of ``weights`` if it is a landmark classifier for CT, else DetectionError."""
    from lm_zoo import pretrained
    from lm_zoo.applications import check_weights

    ws = pretrained.describe_weights(check_weights(weights))
    if weights is None or not ws.class_names:
        raise DetectionError(f"weights={weights!r} have no class names, so they cannot name landmarks; "
                             "use weights='landmark' or a weights file whose sidecar JSON lists landmark class names")
    if NON_LANDMARK not in ws.class_names or len(ws.class_names) < 2:
        raise DetectionError(
            f"weights={str(weights)!r} are not a landmark classifier: their classes "
            f"{list(ws.class_names)[:5]}{'...' if len(ws.class_names) > 5 else ''} hold no {NON_LANDMARK!r} class "
            "(detection needs landmark classes plus a background class); use weights='landmark'")
    if ws.modality != "ct":
        raise DetectionError(f"weights={str(weights)!r} were trained on {ws.modality!r} input, not CT; "
                             "landmark detection needs CT weights such as 'landmark'")
    return ws


def patch_spacing_mm(ws) -> float:
    """Pixel spacing (mm) of the patches a weight set was trained on (its preset's ``spacing_mm``)."""
    return float(ws.spacing_mm)


def patch_size_px(ws) -> int:
    """Patch side (pixels) a weight set was trained on (its preset's ``patch_size``)."""
    return int(ws.patch_size)
