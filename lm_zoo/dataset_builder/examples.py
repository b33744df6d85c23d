"""Per-case example generation: the patches of one landmark or aneurysm case.

Each case's examples are a pure function of (case, parameters): the case's random draws use a
seed derived from the config seed and the case id only (``lm_zoo.cohorts.case_seed``). So the
same function runs in a plain loop, in worker processes or as an Apache Beam ``FlatMap``, and all
give the same examples.
"""
from __future__ import annotations

import logging

import numpy as np

from lm_zoo.anatomy import NON_LANDMARK
from lm_zoo.cohorts import AneurysmCase, CohortError, LandmarkCase, aneurysms_from_mask, case_seed
from lm_zoo.dataset_builder import derived
from lm_zoo.dataset_builder.params import CT_OUTSIDE_HU, NEGATIVE_GRID_MM, AneurysmParams, LandmarkParams
from lm_zoo.io import inside_grid

__all__ = ["landmark_case_examples", "aneurysm_case_examples"]

log = logging.getLogger(__name__)


def _read_case_image(case_id: str, path: str):
    from lm_zoo.io import read_image

    try:
        return read_image(path)
    except (ValueError, FileNotFoundError) as err:
        raise CohortError(f"case {case_id!r}: cannot read volume {path}: {err}") from None


def _case_landmarks(case: LandmarkCase, image=None, derived_cache=None):
    """The case's landmarks (``lm_zoo.cohorts.read_case_landmarks``), a CohortError naming the case.
    Landmarks derived from a segmentation come from ``derived_cache`` when given (see
    :mod:`lm_zoo.dataset_builder.derived`: the build's scan derived them once)."""
    from lm_zoo.cohorts import is_segmentation, read_case_landmarks

    with derived.landmark_errors(case):
        if derived_cache is not None and is_segmentation(case.landmarks):
            return derived.cached_landmarks(case, derived_cache, image)[0]
        return read_case_landmarks(case.landmarks, image=image)


def _coarse(image, grid_mm: float):
    """``image`` averaged over bins of about ``grid_mm`` (same physical extent)."""
    import SimpleITK as sitk

    factors = [max(1, int(round(grid_mm / s))) for s in image.GetSpacing()]
    return image if factors == [1, 1, 1] else sitk.BinShrink(image, factors)


def _example(patch, label: str, case_id: str, point, source: str, **extra) -> dict:
    return {
        "patch": patch.astype(np.float32, copy=False),
        "label": label,
        "case_id": case_id,
        "point_lps_mm": np.asarray(point, dtype=np.float32),
        "source": source,
        **extra,
    }


def _patches(image, points, copies: int, params, default_value, seed):
    """One unaugmented patch per point, then ``copies - 1`` augmented copies of each point (in
    point order, drawn with ``seed``); returns (patches, their points)."""
    from lm_zoo.patches import extract_25d

    if len(points) == 0:
        return np.empty((0, params.patch_size, params.patch_size, 3), np.float32), np.empty((0, 3))
    plain = extract_25d(image, points, params.patch_size, params.spacing_mm, default_value)
    if copies <= 1:
        return plain, points
    repeated = np.repeat(points, copies - 1, axis=0)
    augmented = extract_25d(
        image, repeated, params.patch_size, params.spacing_mm, default_value,
        augment=params.augmentation.build(), seed=seed,
    )
    return np.concatenate([plain, augmented]), np.concatenate([points, repeated])


def _unknown_message(case_id, path, unknown, allowed) -> str:
    shown = allowed[:12] + (["..."] if len(allowed) > 12 else [])
    return (f"case {case_id!r}: {path} names unknown landmark(s) {unknown}; allowed ({len(allowed)}): {shown} "
            "(list every class name in classes.txt)")


def landmark_case_examples(case: LandmarkCase, params: LandmarkParams) -> list[tuple[str, dict]]:
    """(key, example) pairs of one landmark case: patches at its landmarks of ``params.classes``
    (exact + augmented copies) and ``negatives_per_case`` body points away from every landmark."""
    from lm_zoo.landmarks import sample_negatives

    image = _read_case_image(case.case_id, case.image)
    landmarks = _case_landmarks(case, image, params.derived_cache)
    unknown = sorted(set(landmarks.names) - set(params.allowed))
    if unknown:
        raise CohortError(_unknown_message(case.case_id, case.landmarks, unknown, list(params.allowed)))
    wanted = [(n, p) for n, p in zip(landmarks.names, landmarks.points) if n in set(params.classes)]
    names = [n for n, _ in wanted]
    points = np.array([p for _, p in wanted], dtype=float).reshape(-1, 3)
    inside = inside_grid(image, points)
    if not inside.all():
        # Reported by the main process (scan_dropped_landmarks): a worker's warning is lost.
        log.info("case %r: landmark(s) %s lie outside the volume; skipped", case.case_id,
                    [n for n, ok in zip(names, inside) if not ok])
        names = [n for n, ok in zip(names, inside) if ok]
        points = points[inside]
    seeds = np.random.SeedSequence(case_seed(params.seed, case.case_id)).generate_state(2)
    patches, where = _patches(image, points, params.samples_per_landmark, params, CT_OUTSIDE_HU, int(seeds[0]))
    labels = names + [n for n in names for _ in range(params.samples_per_landmark - 1)]
    if params.negatives_per_case:
        try:
            negatives = sample_negatives(
                _coarse(image, NEGATIVE_GRID_MM), landmarks.points, params.negatives_per_case, params.negative_min_distance_mm,
                seed=int(seeds[1]), body_threshold=params.body_threshold_hu,
            )
        except ValueError as err:
            raise CohortError(f"case {case.case_id!r}: cannot place negatives: {err}") from None
        negative_patches, _ = _patches(image, negatives, 1, params, CT_OUTSIDE_HU, None)
        patches = np.concatenate([patches, negative_patches])
        where = np.concatenate([where, negatives])
        labels = labels + [NON_LANDMARK] * len(negatives)
    return [
        (f"{case.case_id}/{i:05d}", _example(patches[i], labels[i], case.case_id, where[i], params.source))
        for i in range(len(labels))
    ]


def aneurysm_case_examples(case: AneurysmCase, params: AneurysmParams) -> list[tuple[str, dict]]:
    """(key, example) pairs of one MRA case, patches from the per-volume normalised image:
    aneurysm centres (exact + augmented copies) and vessel candidates inside an aneurysm as
    ``aneurysm``; up to ``negatives_per_case`` other vessel candidates as ``normal_vessel``."""
    from lm_zoo.intensity import normalize_mra
    from lm_zoo.vessels import candidate_points, label_candidates, vessel_mask

    image = _read_case_image(case.case_id, case.image)
    if case.mask is not None:
        try:
            rows = aneurysms_from_mask(case.mask)
        except (ValueError, FileNotFoundError) as err:
            raise CohortError(f"case {case.case_id!r}: cannot read mask {case.mask}: {err}") from None
    else:
        rows = list(case.aneurysms)
    centres = np.array([r.center_lps for r in rows], dtype=float).reshape(-1, 3)
    outside = ~inside_grid(image, centres)
    if outside.any():
        raise CohortError(
            f"case {case.case_id!r}: aneurysm centre(s) {centres[outside].round(1).tolist()} (LPS mm) lie outside "
            f"the volume {case.image}; check the coordinate system (LPS unless '# coordinate_system = RAS')"
        )
    seeds = np.random.SeedSequence(case_seed(params.seed, case.case_id)).generate_state(3)
    normalised = normalize_mra(image)
    candidates = np.asarray(candidate_points(image, mask=vessel_mask(image), seed=int(seeds[0])), dtype=float).reshape(-1, 3)
    if len(candidates):
        labels, sites = label_candidates(candidates, rows)
        labels, sites = np.asarray(labels).astype(str), np.asarray(sites).astype(str)
    else:
        labels = sites = np.empty(0, dtype=str)
    rng = np.random.default_rng(seeds[1])
    positive = np.flatnonzero(labels == "aneurysm")
    positive = np.sort(rng.permutation(positive)[: params.max_aneurysm_candidates * max(len(rows), 1)])
    negative = np.flatnonzero(labels == "normal_vessel")
    negative = np.sort(rng.permutation(negative)[: params.negatives_per_case])

    centre_patches, centre_points = _patches(normalised, centres, params.samples_per_aneurysm, params, 0.0, int(seeds[2]))
    centre_sites = [r.site for r in rows]
    centre_sites = centre_sites + [s for s in centre_sites for _ in range(params.samples_per_aneurysm - 1)]
    chosen = np.concatenate([positive, negative]).astype(int)
    candidate_patches, _ = _patches(normalised, candidates[chosen], 1, params, 0.0, None)
    examples = []
    for i in range(len(centre_patches)):
        examples.append(_example(centre_patches[i], "aneurysm", case.case_id, centre_points[i], params.source,
                                 aneurysm_site=centre_sites[i]))
    for j, c in enumerate(chosen):
        examples.append(_example(candidate_patches[j], str(labels[c]), case.case_id, candidates[c], params.source,
                                 aneurysm_site=str(sites[c]) if labels[c] == "aneurysm" else ""))
    return [(f"{case.case_id}/{i:05d}", ex) for i, ex in enumerate(examples)]
