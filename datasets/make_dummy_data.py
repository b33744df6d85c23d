"""Write the tiny ``manual_dir`` cohorts in ``datasets/*/dummy_data/`` (fake data for the TFDS tests).

    python -m lm_zoo.datasets.make_dummy_data

The files are committed; rerun only to change them. Every file format of the manual layout is
used once (NIfTI / MHA / NRRD volumes; CSV (LPS) / Slicer fcsv (RAS) / markups JSON landmarks).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent

LANDMARK_CLASSES = {
    "carina": "bifurcation of the trachea",
    "vertebra_l1": "centre of the L1 vertebral body",
    "liver_dome": "most cranial point of the liver",
}
# case_id -> (volume suffix, landmark suffix, direction (diag), origin)
LANDMARK_CASES = {
    "case_a": (".nii.gz", ".csv", (1, 1, 1), (-40.0, -40.0, -30.0)),
    "case_b": (".mha", ".fcsv", (1, 1, 1), (-38.0, -41.0, -28.0)),
    "case_c": (".nrrd", ".mrk.json", (-1, -1, 1), (40.0, 40.0, -30.0)),
}


def _ct_case(rng, direction, origin, points):
    """A 40x40x32 voxel (2 mm) int16 'torso': an elliptic water cylinder in air, bone spots at the points."""
    size = (40, 40, 32)
    image = sitk.Image(size, sitk.sitkInt16)
    image.SetSpacing((2.0, 2.0, 2.0))
    image.SetOrigin(origin)
    image.SetDirection(tuple(np.diag(direction).astype(float).ravel()))
    k, j, i = np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij")
    index = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(float)
    lps = np.asarray(origin) + index @ (np.diag(direction) * 2.0).T
    lps = lps.reshape(*size[::-1], 3)
    body = (lps[..., 0] / 34.0) ** 2 + (lps[..., 1] / 28.0) ** 2 < 1.0
    hu = np.where(body, 40.0, -1000.0) + rng.normal(0, 15, size[::-1])
    for p in points:
        hu[np.linalg.norm(lps - p, axis=-1) < 5.0] = 700.0
    array = np.round(hu).astype(np.int16)
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(image)
    return out


def write_landmark_dummy(root: Path) -> None:
    from lm_zoo.landmarks import Landmarks, write_landmarks

    rng = np.random.default_rng(0)
    shutil.rmtree(root, ignore_errors=True)
    (root / "images").mkdir(parents=True)
    (root / "landmarks").mkdir()
    base = np.array([[0.0, -6.0, 14.0], [0.0, 12.0, -12.0], [-14.0, -4.0, 4.0]])
    for n, (case_id, (vsuffix, lsuffix, direction, origin)) in enumerate(LANDMARK_CASES.items()):
        points = base + rng.uniform(-3, 3, base.shape)
        sitk.WriteImage(_ct_case(rng, direction, origin, points), str(root / "images" / f"{case_id}{vsuffix}"), useCompression=True)
        system = "RAS" if lsuffix == ".fcsv" else "LPS"
        write_landmarks(root / "landmarks" / f"{case_id}{lsuffix}", Landmarks(list(LANDMARK_CLASSES), points), system)
    (root / "classes.txt").write_text(
        "# landmark classes of this fake cohort: name<TAB>definition\n"
        + "".join(f"{name}\t{definition}\n" for name, definition in LANDMARK_CLASSES.items())
    )


def _crop(image, centre_lps, crop_mm):
    """A crop of ``crop_mm`` around ``centre_lps`` (or the volume centre), kept inside the volume."""
    size = np.asarray(image.GetSize())
    crop = np.minimum(np.round(np.asarray(crop_mm) / np.asarray(image.GetSpacing())).astype(int), size)
    centre = (size - 1) / 2 if centre_lps is None else np.asarray(
        image.TransformPhysicalPointToContinuousIndex(tuple(float(v) for v in centre_lps)))
    start = np.clip(np.round(centre - crop / 2).astype(int), 0, size - crop)
    return sitk.RegionOfInterest(image, [int(v) for v in crop], [int(v) for v in start])


def write_mra_dummy(root: Path) -> None:
    """Three small crops of phantom TOF-MRA cases (one with an aneurysm), written as a manual cohort."""
    from lm_zoo.phantoms.head_mra import generate_case

    shutil.rmtree(root, ignore_errors=True)
    (root / "images").mkdir(parents=True)
    rows = ["case_id,x,y,z,radius_mm,site"]
    for case_id, seed, aneurysm in (("mra_a", 11, True), ("mra_b", 12, False), ("mra_c", 13, True)):
        image, aneurysms, _ = generate_case(seed, aneurysm=aneurysm, n_aneurysms=1 if aneurysm else None,
                                            spacing_mm=0.8)
        image = _crop(image, aneurysms[0].center_lps if aneurysms else None, crop_mm=(40.0, 36.0, 24.0))
        image = sitk.Cast(sitk.RescaleIntensity(image, 0, 1000), sitk.sitkInt16)
        sitk.WriteImage(image, str(root / "images" / f"{case_id}.nii.gz"))
        for a in aneurysms:
            x, y, z = np.asarray(a.center_lps, dtype=float)
            rows.append(f"{case_id},{x:.3f},{y:.3f},{z:.3f},{a.radius_mm:.3f},{a.site}")
    (root / "aneurysms.csv").write_text("\n".join(rows) + "\n")
    (root / "cases.txt").write_text("mra_a\nmra_b\nmra_c\n")


if __name__ == "__main__":
    write_landmark_dummy(HERE / "landmark_ct_patches" / "dummy_data")
    write_mra_dummy(HERE / "mra_aneurysm_patches" / "dummy_data")
    print("dummy data written under", HERE)
