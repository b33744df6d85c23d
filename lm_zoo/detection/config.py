"""How detection is set up: the search (:class:`SearchParams`) and what a weight set's preset
holds for it (:class:`DetectionConfig`: calibrated threshold, atlas, shape weight)."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from lm_zoo.detection.atlas import Atlas
from lm_zoo.detection.errors import DetectionError

__all__ = ["DEFAULT_THRESHOLD", "SearchParams", "DetectionConfig", "detection_config", "detection_config_path"]

DEFAULT_THRESHOLD = 0.5
# A CT in Hounsfield units holds air (about -1000 HU) around or inside the body.
_AIR_HU = -500.0


@dataclasses.dataclass(frozen=True)
class SearchParams:
    """The search, in mm. ``refine`` holds (step_mm, half_width_in_steps) per refinement stage;
    ``threshold`` None takes the weights' calibrated one; ``priors`` False reports every class's
    best eligible candidate without the anatomical priors of :func:`decide`. The defaults were
    chosen on the calibration seed's phantom cases (:mod:`lm_zoo.detection.calibration`)."""

    coarse_step_mm: float = 8.0
    candidates_per_class: int = 6
    refine: tuple = ((4.0, 1), (1.5, 2))
    threshold: float | None = None  # None: the weights' calibrated threshold, else DEFAULT_THRESHOLD
    body_threshold_hu: float = _AIR_HU
    priors: bool = True

    def __post_init__(self):
        if not (self.coarse_step_mm > 0 and np.isfinite(self.coarse_step_mm)):
            raise ValueError(f"SearchParams: coarse_step_mm must be a positive number, got {self.coarse_step_mm!r}")
        if int(self.candidates_per_class) < 1:
            raise ValueError(f"SearchParams: candidates_per_class must be >= 1, got {self.candidates_per_class!r}")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ValueError(f"SearchParams: threshold must be in (0, 1), got {self.threshold!r}")
        for stage in self.refine:
            step, half = stage
            if not (step > 0 and int(half) >= 1):
                raise ValueError(f"SearchParams: refine stages are (step_mm > 0, half_width >= 1), got {stage!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class DetectionConfig:
    """What detection with one weight set uses besides the network: the found/not-found
    ``threshold`` calibrated for it, the ``atlas`` of its classes (shape prior) and the
    ``shape_weight`` of that prior in the ranking of candidates (:func:`decide`), read from
    the weight set's preset (``<weights stem>.detection.json`` beside the weights file, written
    by ``lm-zoo weights calibrate NAME``, :mod:`lm_zoo.detection.calibration`). ``path`` is None
    when there is no such file: then :data:`DEFAULT_THRESHOLD` and no shape prior (the order
    priors still apply)."""

    threshold: float = DEFAULT_THRESHOLD
    atlas: "Atlas | None" = None
    shape_weight: float = 0.0  # see decide(); calibrated with the threshold
    path: str | None = None
    weights_sha256: str | None = None
    calibration: dict = dataclasses.field(default_factory=dict)


def detection_config_path(ws):
    """Where a weight set's detection calibration lives: its preset's detection file
    (``x.weights.h5`` -> ``x.detection.json`` beside it; for a registered set: in the package)."""
    from lm_zoo import pretrained

    return pretrained.preset_file(ws, "detection")


def detection_config(ws) -> DetectionConfig:
    """The :class:`DetectionConfig` of a weight set (defaults when it has no detection file)."""
    import json

    path = detection_config_path(ws)
    if not path.is_file():
        return DetectionConfig()
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        threshold = float(entry["threshold"])
        shape_weight = float(entry.get("shape_weight", 0.0))
        atlas = Atlas.from_json(entry["atlas"]) if entry.get("atlas") else None
    except (ValueError, KeyError, TypeError) as err:
        raise DetectionError(f"detection settings {path} of weights {ws.name!r} are unreadable: {err!r}; "
                             f"rewrite them with `lm-zoo weights calibrate {ws.name}` or delete the file") from None
    if not 0 < threshold < 1:
        raise DetectionError(f"detection settings {path}: threshold must be in (0, 1), got {threshold!r}")
    if not (np.isfinite(shape_weight) and shape_weight >= 0):
        raise DetectionError(f"detection settings {path}: shape_weight must be a number >= 0, got {shape_weight!r}")
    sha = entry.get("weights_sha256")
    if sha and ws.sha256 and sha != ws.sha256:
        warnings.warn(f"{path} was calibrated for other weights (sha256 {sha[:12]}..., these are {ws.sha256[:12]}...): "
                      f"its threshold may not suit them; recalibrate with `lm-zoo weights calibrate {ws.name}`",
                      stacklevel=3)
    return DetectionConfig(threshold=threshold, atlas=atlas, shape_weight=shape_weight, path=str(path), weights_sha256=sha,
                           calibration=entry.get("calibration", {}))

