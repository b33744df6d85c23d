"""Torso CT phantom (synthetic data): landmark table, determinism, anatomy under the landmarks,
deformation consistency, honesty of the learning problem, cohort files and errors.

Budget ~40 s: most cases are generated at a coarse 3 mm spacing (the anatomy, pose and
deformation do not depend on the spacing).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from lm_zoo.landmarks import read_landmarks
from lm_zoo.phantoms import torso_ct
from lm_zoo.phantoms.torso_ct import LANDMARKS, LM20, LM60, CohortError, generate_case, write_cohort

COARSE = 3.0


def _index(image, points):
    """Continuous voxel indices (x, y, z) of LPS points, for any direction matrix."""
    origin = np.array(image.GetOrigin())
    direction = np.array(image.GetDirection()).reshape(3, 3)
    return ((np.asarray(points) - origin) @ direction) / np.array(image.GetSpacing())


def _sample(image, points, order=1):
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    ijk = _index(image, points)
    return ndimage.map_coordinates(arr, ijk[:, ::-1].T, order=order, mode="nearest")


@pytest.fixture(scope="module")
def coarse_cases():
    return {seed: generate_case(seed, spacing_mm=COARSE) for seed in range(6)}


def test_landmark_table_names_and_subsets():
    names = [n for n, _ in LANDMARKS]
    assert len(names) >= 60 and len(set(names)) == len(names)
    for name, definition in LANDMARKS:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name), name
        assert definition.strip() and "\n" not in definition
    assert len(LM60) == 60 and len(set(LM60)) == 60 and set(LM60) <= set(names)
    assert len(LM20) == 20 and len(set(LM20)) == 20 and set(LM20) <= set(LM60)
    assert sum(n.startswith("vertebra_") for n in names) == 18  # C7..L5


def test_lm20_is_spread_over_the_torso(coarse_cases):
    image, lms = coarse_cases[0]
    z = {n: p[2] for n, p in zip(lms.names, lms.points)}
    span60 = np.ptp([z[n] for n in LM60])
    span20 = np.ptp([z[n] for n in LM20])
    assert span20 > 0.9 * span60
    # no two LM20 landmarks closer than 2 cm: well-separated classes
    pts = np.array([p for n, p in zip(lms.names, lms.points) if n in LM20])
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(20) * 1e9
    assert d.min() > 20


def test_same_seed_same_bytes_other_seed_differs(coarse_cases):
    a_img, a_lm = coarse_cases[1]
    b_img, b_lm = generate_case(1, spacing_mm=COARSE)
    assert a_img.GetPixelID() == sitk.sitkInt16
    assert sitk.GetArrayViewFromImage(a_img).tobytes() == sitk.GetArrayViewFromImage(b_img).tobytes()
    assert (a_img.GetOrigin(), a_img.GetSpacing(), a_img.GetDirection()) == (b_img.GetOrigin(), b_img.GetSpacing(), b_img.GetDirection())
    assert a_lm.names == b_lm.names == LM60
    assert np.array_equal(a_lm.points, b_lm.points)
    c_img, c_lm = coarse_cases[2]
    assert np.abs(c_lm.points - a_lm.points).max() > 5
    assert sitk.GetArrayViewFromImage(c_img).tobytes() != sitk.GetArrayViewFromImage(a_img).tobytes()


def test_spacing_changes_the_grid_not_the_anatomy(coarse_cases):
    _, coarse = coarse_cases[3]
    image, fine = generate_case(3, spacing_mm=(2.0, 2.0, 2.5))
    assert image.GetSpacing() == (2.0, 2.0, 2.5)
    np.testing.assert_allclose(fine.points, coarse.points, atol=1e-9)


def test_default_spacing_follows_the_issue():
    anatomy, geo, _ = torso_ct._case_parts(11)
    assert 1.4 <= geo.spacing[0] == geo.spacing[1] <= 1.6 and 1.5 <= geo.spacing[2] <= 3.0
    _, geo, _ = torso_ct._case_parts(11, resolution="clinical")
    assert 0.6 <= geo.spacing[0] <= 1.0 and 1.0 <= geo.spacing[2] <= 5.0


def test_landmarks_inside_and_on_the_right_tissue():
    for seed, arterial in ((20, True), (21, False)):
        image, lms = generate_case(seed, spacing_mm=(1.6, 1.6, 2.0), noise=False, contrast=arterial)
        ijk = _index(image, lms.points)
        assert np.all(ijk >= 0) and np.all(ijk <= np.array(image.GetSize()) - 1), seed
        hu = dict(zip(lms.names, _sample(image, lms.points)))
        for v in torso_ct.VERTEBRAE:
            assert 100 < hu[f"vertebra_{v}"] < 600, (seed, v, hu[f"vertebra_{v}"])
        for side in ("right", "left"):
            assert hu[f"femoral_head_{side}"] > 150, (seed, side)
            assert 0 < hu[f"kidney_{side}_upper_pole"] < 300
        assert hu["carina"] < -700
        spleen = (90, 160) if arterial else (30, 65)
        for name in ("spleen_superior_pole", "spleen_inferior_tip"):
            assert spleen[0] < hu[name] < spleen[1], (seed, name, hu[name])
        # the carina sits in the airway, with the airway wall / mediastinum within 15 mm
        carina = lms.points[lms.names.index("carina")]
        offsets = np.stack(np.meshgrid(*[np.linspace(-15, 15, 11)] * 3), -1).reshape(-1, 3)
        around = _sample(image, carina + offsets[np.linalg.norm(offsets, axis=1) <= 15])
        assert around.max() > -100
        blood = (150, 450) if arterial else (20, 80)
        for name in ("aortic_bifurcation", "aortic_arch_top", "aortic_hiatus", "celiac_trunk_origin", "sma_origin"):
            assert blood[0] < hu[name] < blood[1], (seed, name, hu[name])


def test_cases_vary(coarse_cases):
    def dist(lms, a, b):
        return np.linalg.norm(lms.points[lms.names.index(a)] - lms.points[lms.names.index(b)])

    spine = [dist(lm, "vertebra_c7", "vertebra_l5") for _, lm in coarse_cases.values()]
    hips = [dist(lm, "femoral_head_right", "femoral_head_left") for _, lm in coarse_cases.values()]
    kidney = [dist(lm, "kidney_right_hilum", "liver_dome") for _, lm in coarse_cases.values()]
    assert np.std(spine) > 5 and np.std(hips) > 3 and np.std(kidney) > 3
    sizes = {img.GetSize() for img, _ in coarse_cases.values()}
    assert len(sizes) == len(coarse_cases)  # body size / scan range differ
    directions = {img.GetDirection() for img, _ in coarse_cases.values()}
    assert len(directions) > 1  # some oblique grids


def test_landmarks_move_with_the_deformation():
    anatomy, geo, _ = torso_ct._case_parts(5, spacing_mm=4.0)
    x = np.array(list(anatomy.landmarks.values()))
    p = geo.to_physical(x)
    np.testing.assert_allclose(geo.to_anatomy(p), x, atol=1e-6)
    # voxel coordinates of the volume agree with the point map
    X, Y, Z = geo.coordinates()
    k, j, i = (np.array(X.shape) * [0.3, 0.6, 0.4]).astype(int)
    p_vox = geo.origin + geo.direction @ (geo.spacing * [i, j, k])
    np.testing.assert_allclose([X[k, j, i], Y[k, j, i], Z[k, j, i]], geo.to_anatomy(p_vox)[0], atol=1e-2)

    spacing = (2.5, 2.5, 2.5)
    warped, lm_w = generate_case(5, spacing_mm=spacing, noise=False)
    rigid, lm_r = generate_case(5, spacing_mm=spacing, noise=False, deform=False)
    shift = np.linalg.norm(lm_w.points - lm_r.points, axis=1)
    assert np.median(shift) > 2.0  # the deformation is not negligible
    offsets = np.stack(np.meshgrid(*[np.linspace(-8, 8, 5)] * 3), -1).reshape(-1, 3)

    def patch(image, point):
        return _sample(image, point + offsets)

    same = [np.abs(patch(warped, pw) - patch(rigid, pr)).mean() for pw, pr in zip(lm_w.points, lm_r.points)]
    wrong = [np.abs(patch(warped, pr) - patch(rigid, pr)).mean() for pr in lm_r.points]
    moved = shift > 3
    assert np.median(np.array(same)[moved]) < 0.5 * np.median(np.array(wrong)[moved])


def test_painting_in_sub_blocks_matches_whole_volume_masks():
    """The voxel box of each shape (through pose and deformation) must hold all of the shape."""
    from lm_zoo.phantoms._shapes import Painter

    anatomy, geo, _ = torso_ct._case_parts(8, spacing_mm=4.0)
    x, y, z = geo.coordinates()
    rng = np.random.default_rng(0)
    picks = rng.choice(len(anatomy.paints), 40, replace=False)
    for i in picks:
        shapes, _ = anatomy.paints[i]
        volume = np.zeros(x.shape, np.float32)
        Painter(volume, x, y, z, geo.box_to_index).paint(shapes, 1.0)
        full = np.zeros(x.shape, bool)
        for s in shapes if isinstance(shapes, list) else [shapes]:
            full |= s.mask(x, y, z)
        assert np.array_equal(volume == 1.0, full), i


def test_intensity_at_the_landmark_does_not_identify_it(coarse_cases):
    """Nearest-class-mean on the local mean HU (3x3x3 mm neighbourhood) of held-out cases."""
    offsets = np.stack(np.meshgrid(*[np.linspace(-1.5, 1.5, 3)] * 3), -1).reshape(-1, 3)

    def features(image, lms):
        return np.array([_sample(image, p + offsets).mean() for p in lms.points])

    feats = {s: features(*coarse_cases[s]) for s in coarse_cases}
    train, test = [0, 1, 2, 3], [4, 5]
    means = np.mean([feats[s] for s in train], axis=0)  # class means, one per landmark
    correct = [np.argmin(np.abs(means - v)) == c for s in test for c, v in enumerate(feats[s])]
    accuracy = float(np.mean(correct))
    assert accuracy < 0.5, accuracy


def test_write_cohort_layout_and_case_independence(tmp_path):
    out = tmp_path / "cohort"
    ids = write_cohort(out, 2, seed=7, progress=False, spacing_mm=4.0, montage=1)
    assert ids == ["phantom_ct_0000", "phantom_ct_0001"]
    assert (out / "cases.txt").read_text().split() == ids
    assert (out / "montages" / "phantom_ct_0000.png").stat().st_size > 10_000
    assert not (out / "montages" / "phantom_ct_0001.png").exists()
    assert "sternal_notch" in (out / "landmark_definitions.csv").read_text()
    for i, cid in enumerate(ids):
        image = sitk.ReadImage(str(out / "images" / f"{cid}.nii.gz"))
        lms = read_landmarks(out / "landmarks" / f"{cid}.csv")
        ref_image, ref_lms = generate_case(torso_ct.case_seed(7, i), spacing_mm=4.0)
        assert image.GetPixelID() == sitk.sitkInt16
        assert np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(ref_image))
        np.testing.assert_allclose(image.GetDirection(), ref_image.GetDirection(), atol=1e-6)
        assert lms.names == LM60
        np.testing.assert_allclose(lms.points, ref_lms.points, atol=1e-9)
    assert not [p for p in out.rglob(".*")]  # no temporary files left
    # case 0 is the same in a one-case cohort
    one = tmp_path / "one"
    write_cohort(one, 1, seed=7, progress=False, spacing_mm=4.0, montage=False)
    assert (one / "landmarks" / "phantom_ct_0000.csv").read_bytes() == (out / "landmarks" / "phantom_ct_0000.csv").read_bytes()
    # overwrite replaces the cohort, and only the cohort's own files
    (out / "notes.txt").write_text("keep me")
    assert write_cohort(out, 1, seed=8, overwrite=True, progress=False, spacing_mm=4.0, montage=False) == ids[:1]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["phantom_ct_0000.nii.gz"]
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("n_cases", [0, -3, 2.5, True, "4"])
def test_write_cohort_rejects_bad_counts(tmp_path, n_cases):
    with pytest.raises(CohortError, match="n_cases"):
        write_cohort(tmp_path / "c", n_cases, progress=False)
    assert not (tmp_path / "c").exists()


def test_write_cohort_refuses_non_empty_and_unwritable_folders(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "something.txt").write_text("x")
    with pytest.raises(CohortError, match="not empty.*overwrite"):
        write_cohort(full, 1, progress=False)
    assert sorted(p.name for p in full.iterdir()) == ["something.txt"]
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(CohortError, match="a_file"):
        write_cohort(blocker / "cohort", 1, progress=False)
    with pytest.raises(CohortError, match="a_file"):
        write_cohort(blocker, 1, progress=False)


def test_generate_case_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seed"):
        generate_case(-1)
    with pytest.raises(ValueError, match="spacing_mm"):
        generate_case(0, spacing_mm=0.0)
    with pytest.raises(ValueError, match="spacing_mm"):
        generate_case(0, spacing_mm=(1.0, 1.0))
    with pytest.raises(ValueError, match="resolution"):
        generate_case(0, resolution="ultra")
    with pytest.raises(ValueError, match="contrast"):
        generate_case(0, contrast="yes")


def test_cli_phantom_torso_ct(tmp_path, capsys):
    from lm_zoo.cli import main

    assert main(["phantom", "torso-ct", "--cases", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "n_cases" in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "a refused run leaves no (staging) folder behind"
    out = tmp_path / "cli"
    assert main(["phantom", "torso-ct", "--cases", "1", "--out", str(out), "--seed", "3"]) == 0
    assert (out / "images" / "phantom_ct_0000.nii.gz").exists()
    assert read_landmarks(out / "landmarks" / "phantom_ct_0000.csv").names == LM60
    assert main(["phantom", "torso-ct", "--cases", "1", "--out", str(out)]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_bone_is_a_cortical_shell_around_textured_cancellous_bone_and_portal_phase():
    image, lms = generate_case(20, spacing_mm=(1.6, 1.6, 2.0), contrast="portal")
    flat, _ = generate_case(20, spacing_mm=(1.6, 1.6, 2.0), contrast="portal", noise=False)
    for v in ("l1", "l3", "t10"):
        c = lms.points[lms.names.index(f"vertebra_{v}")]
        line = c + np.linspace(-35, 35, 141)[:, None] * [1.0, 0, 0]  # left-right through the body centre
        hu = _sample(image, line)
        centre = hu[np.abs(np.linspace(-35, 35, 141)) < 6]
        assert 80 < np.median(centre) < 400, (v, np.median(centre))
        assert hu.max() > np.median(centre) + 120, v  # the shell is brighter than the interior
        flat_centre = _sample(flat, line)[np.abs(np.linspace(-35, 35, 141)) < 6]
        assert np.std(centre) > np.std(flat_centre) + 5, v  # trabecular texture (and noise) vs flat
    hu = dict(zip(lms.names, _sample(flat, lms.points)))
    assert hu["aortic_bifurcation"] > 120 and hu["spleen_inferior_tip"] > 90
    with pytest.raises(ValueError, match="contrast"):
        generate_case(0, contrast="venous")
