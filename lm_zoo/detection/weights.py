"""Which weight sets the detector accepts, and the patch geometry they were trained at."""
from __future__ import annotations

from lm_zoo.anatomy import NON_LANDMARK
from lm_zoo.detection.errors import DetectionError

__all__ = ["landmark_weight_set", "patch_spacing_mm", "patch_size_px"]


def landmark_weight_set(weights):
    """The WeightSet of ``weights`` if it is a landmark classifier for CT, else DetectionError."""
    from lm_zoo import pretrained
    from lm_zoo.applications.mini_vgg25d import _check_weights

    ws = pretrained.describe_weights(_check_weights(weights))
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


def _landmark_patch_default(field: str):
    from lm_zoo.patch_datasets import LandmarkParams

    return LandmarkParams.__dataclass_fields__[field].default


def patch_spacing_mm(ws) -> float:
    """Pixel spacing (mm) of the patches a weight set was trained on.

    Read from the set's preprocessing (``spacing_mm``, in the registry or the weights' sidecar);
    sidecars written before it was recorded fall back to the landmark patch datasets' spacing
    (``lm_zoo.patch_datasets.LandmarkParams``, 1.5 mm).
    """
    value = ws.preprocessing.get("spacing_mm", ws.preprocessing.get("patch_spacing_mm"))
    return float(_landmark_patch_default("spacing_mm") if value is None else value)


def patch_size_px(ws) -> int:
    """Patch side (pixels) a weight set was trained on: preprocessing ``patch_size``, else 32."""
    value = ws.preprocessing.get("patch_size")
    return int(_landmark_patch_default("patch_size") if value is None else value)

