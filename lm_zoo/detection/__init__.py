"""Whole-volume landmark detection: a CT in, every named landmark of a weight set out.

``detect_landmarks(image, weights="landmark")`` runs the landmark classifier as a detector:

1. **body mask** (:func:`lm_zoo.landmarks.body_mask` at -500 HU, on a ~4 mm copy of the volume);
2. **coarse grid**: an LPS-axis-aligned lattice of ``coarse_step_mm`` (8 mm) inside the mask. The
   network's response is narrow (on phantoms the true class scores ~0.98 at the landmark, ~0.5
   at 6 mm, ~0.1 at 10 mm from it), so the grid must come within a few mm of every landmark;
3. **batched 2.5D patches + inference** at every grid point: one (N, n_classes) score map;
4. **candidates**: per class, the ``candidates_per_class`` (6) best coarse points (non-maximum
   suppression at 2 grid steps, so the candidates are distinct places). The network gives
   confident scores (> 0.9) to wrong places too, so one candidate per class is not enough;
5. **refinement** of every candidate: a local lattice (3x3x3 points at 4 mm), then a finer one
   (5x5x5 at 1.5 mm) around its best point; patches of all lattices go to the network together
   (shared points are scored once);
6. **sub-voxel peak**: the score-weighted centroid of the fine lattice (weights ``score - max/2``,
   clipped at 0), scored once more (kept when it scores >= 0.9 x the best lattice point): a
   candidate's score is the network's probability of the class *at its point*;
7. **decision** (:func:`decide`), one candidate or none per class. A candidate is eligible when
   it lies inside the scan and scores ``>= threshold`` (calibrated per weight set, see
   :class:`DetectionConfig`; :data:`DEFAULT_THRESHOLD` 0.5 without calibration). Then anatomical
   priors that hold in any patient (only the atlas comes from phantoms):

   - **shape prior** (with an :class:`Atlas`): the similarity transform (rotation, translation,
     one scale) of the training cohort's mean landmark layout that most eligible candidates agree
     on (deterministic RANSAC over triples, refitted on the inliers; at least 5 classes must
     agree, else the prior is skipped) predicts where each landmark is; candidates farther than
     ``max(25 mm, 3 x that landmark's RMS spread in the training cohort)`` from that are dropped
     ("far from where the other landmarks place it"). With a calibrated ``shape_weight`` w > 0
     (:class:`DetectionConfig`), every later choice ranks a candidate by
     ``score - w * d^2 / (2 sigma^2)`` (d: its distance from that prediction, sigma: the gate
     radius / ``gate_sigmas``): scores saturate near 1 over a broad region along vessels and
     organ poles, and among such near-ties the place the other landmarks predict wins;
   - **vertebral order and spacing**: vertebral bodies run cranio-caudally (C7 above T1 ...
     above L5), and consecutive chosen levels are 0.6-1.5 x the atlas's distance between them
     apart (:data:`VERTEBRA_GAP_RANGE`; without an atlas only more than
     :data:`MIN_VERTEBRA_GAP_MM` along S-I): levels are what the network confuses most, and a
     level mislabelled as its neighbour halves or doubles a gap. Dynamic programme over the
     levels' candidates maximising the sum of (score - :data:`CHAIN_OFFSET`);
   - **superior-inferior order** along :data:`ORDER_CHAINS` (aortic hiatus > celiac > SMA > renal
     arteries > aortic bifurcation > iliac bifurcations, kidney upper pole > hilum > lower pole,
     sternal notch > angle > xiphoid, liver dome > tip, spleen poles), same programme;
   - **right/left**: of a ``*right*``/``*left*`` pair the right one lies at smaller LPS x (the
     patient's right is -x);

   then, per class, the best remaining candidate. A landmark with none is reported as not found,
   with its best candidate and that score for inspection only, and the reason;
8. **field of view** (:mod:`lm_zoo.detection.view`): the atlas mapped onto the found landmarks
   says where every landmark is expected; one expected outside the scan or within half a patch of
   its edge is reported ``out_of_view`` (a found one too, when the prior puts it beyond the edge
   or both it and its expected position are at the edge). Each landmark has one status:
   ``found``, ``not_found`` or ``out_of_view``.

The volume is read once; patches are extracted (fused numba kernel) and classified in batches of
``batch_size``. With the default search a torso CT costs about 100-160 k patches. Speed and
quality figures (phantom held-out cases and a real CT, per landmark): ``benchmarks/detect.py``;
the calibration (threshold, shape weight, atlas): :mod:`lm_zoo.detection.calibration`, written to
the weight set's preset by ``lm-zoo weights calibrate NAME``; the shipped weights' figures are in
their model card. With the shipped phantom-trained weights, high-scoring near misses (10-30 mm)
remain on held-out phantoms and most classes are wrong on real CT: "found" means confident and
consistent with the other landmarks, not that the point is right.

Modules: ``config`` (search parameters, the preset's detection settings), ``weights`` (which
weight sets, patch geometry), ``search`` (steps 1-6), ``atlas`` and ``priors`` (the shape prior,
the order priors), ``decide`` (step 7), ``view`` (step 8), ``detector`` (:func:`detect_landmarks`),
``montage`` (the PNG), ``calibration`` (threshold, shape weight and atlas from cases, quality figures).
"""
from __future__ import annotations

from lm_zoo.anatomy import ORDER_CHAINS
from lm_zoo.detection.atlas import Atlas, build_atlas, shape_gate
from lm_zoo.detection.config import DEFAULT_THRESHOLD, DetectionConfig, SearchParams, detection_config, detection_config_path
from lm_zoo.detection.decide import decide
from lm_zoo.detection.detector import Detections, detect_landmarks
from lm_zoo.detection.errors import DetectionError, NoBodyError, NotCTError
from lm_zoo.detection.montage import save_detection_montage
from lm_zoo.detection.priors import CHAIN_OFFSET, MIN_VERTEBRA_GAP_MM, VERTEBRA_GAP_RANGE, vertebral_order
from lm_zoo.detection.view import STATUSES, edge_depth_mm, view_margin_mm
from lm_zoo.detection.weights import landmark_weight_set, patch_size_px, patch_spacing_mm

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_VERTEBRA_GAP_MM",
    "DetectionError",
    "NotCTError",
    "NoBodyError",
    "SearchParams",
    "Detections",
    "detect_landmarks",
    "landmark_weight_set",
    "patch_spacing_mm",
    "patch_size_px",
    "decide",
    "Atlas",
    "build_atlas",
    "DetectionConfig",
    "detection_config",
    "detection_config_path",
    "vertebral_order",
    "ORDER_CHAINS",
    "VERTEBRA_GAP_RANGE",
    "CHAIN_OFFSET",
    "save_detection_montage",
    "shape_gate",
    "STATUSES",
    "edge_depth_mm",
    "view_margin_mm",
]
