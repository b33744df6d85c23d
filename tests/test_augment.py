"""Domain randomisation ops (lm_zoo.augment): shapes, seed determinism, each op changes what it should."""
from __future__ import annotations

import numpy as np
import pytest

from lm_zoo import augment


def _patches(n=6, seed=0):
    """Raw-HU patches: soft tissue (40 HU) with a bone disc (400 HU), air in the top rows."""
    rng = np.random.default_rng(seed)
    x = np.full((n, 32, 32, 3), 40.0, np.float32)
    yy, xx = np.mgrid[0:32, 0:32]
    x[:, (yy - 16) ** 2 + (xx - 16) ** 2 < 36, :] = 400.0
    x[:, :4] = -1000.0
    return x + rng.normal(0, 1, x.shape).astype(np.float32)


OPS = [augment.hu_scale_offset, augment.window_gamma, augment.add_noise, augment.blur, augment.coarse_slices,
       augment.streaks]


@pytest.mark.parametrize("op", OPS, ids=lambda f: f.__name__)
def test_ops_keep_shape_dtype_input_and_are_seeded(op):
    x = _patches()
    before = x.copy()
    a = op(x, np.random.default_rng(1))
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(x, before)  # input untouched
    np.testing.assert_array_equal(a, op(x, np.random.default_rng(1)))
    assert not np.array_equal(a, op(x, np.random.default_rng(2)))


def test_scale_offset_leaves_air_and_moves_tissue():
    x = _patches()
    y = augment.hu_scale_offset(x, np.random.default_rng(0), offset_sd=30)
    np.testing.assert_array_equal(y[:, :4], x[:, :4])
    assert np.abs(y[:, 10:] - x[:, 10:]).mean() > 1.0


def test_gamma_keeps_values_outside_the_window_and_order_inside():
    x = _patches()
    x[0, 5, 5, 0] = 2000.0
    y = augment.window_gamma(x, np.random.default_rng(0), gamma=(1.5, 1.5))
    assert y[0, 5, 5, 0] == 2000.0 and np.array_equal(y[:, :4], x[:, :4])
    assert np.all(y[:, 16, 16] > y[:, 30, 30])  # bone stays brighter than soft tissue
    assert np.abs(y - x).max() > 10


def test_noise_has_the_asked_level_and_correlation():
    x = np.zeros((40, 32, 32, 3), np.float32)
    white = augment.add_noise(x, np.random.default_rng(0), sd=(10, 10), corr_sigma_px=(0, 0))
    corr = augment.add_noise(x, np.random.default_rng(0), sd=(10, 10), corr_sigma_px=(1.0, 1.0))
    assert abs(white.std() - 10) < 0.5 and abs(corr.std() - 10) < 1.0
    lag1 = lambda a: np.corrcoef(a[:, :, 1:].ravel(), a[:, :, :-1].ravel())[0, 1]  # noqa: E731
    assert abs(lag1(white)) < 0.05 and lag1(corr) > 0.5


def test_blur_smooths_in_plane_and_keeps_the_mean():
    x = _patches()
    y = augment.blur(x, np.random.default_rng(0), sigma_px=(1.0, 1.0))
    assert np.abs(np.diff(y, axis=2)).mean() < np.abs(np.diff(x, axis=2)).mean()
    assert abs(y.mean() - x.mean()) < 2.0


def test_coarse_slices_act_along_z_only_in_coronal_and_sagittal():
    x = np.zeros((3, 32, 32, 3), np.float32)
    x[:, 15, :, :] = 1000.0  # a thin horizontal (axial-plane) sheet: a row in coronal/sagittal
    x[:, :, 15, :] += 500.0  # a vertical line: unaffected by z resampling
    y = augment.coarse_slices(x, np.random.default_rng(0), thickness_mm=(4.5, 4.5))
    for ch in (1, 2):
        assert y[:, 15, 0, ch].max() < 900  # the sheet is averaged over the slice thickness
        assert (y[:, 10:20, 0, ch] > 50).sum(axis=1).min() >= 3  # ... and spread along z
        np.testing.assert_allclose(y[:, 0:8, 15, ch], 500.0, atol=1e-3)  # constant along z: unchanged
    # axial: only a small isotropic blur
    assert np.abs(y[..., 0] - x[..., 0]).max() > 0 and y[:, 15, 15, 0].max() > 600


def test_streaks_change_one_channel_at_the_given_rate():
    x = _patches(200)
    y = augment.streaks(x, np.random.default_rng(0), rate=0.1)
    changed = np.abs(y - x).reshape(200, -1, 3).max(axis=1) > 100
    assert 5 <= changed.any(axis=1).sum() <= 40
    assert changed.sum(axis=1).max() == 1
    np.testing.assert_array_equal(augment.streaks(x, np.random.default_rng(0), rate=0.0), x)


def test_randomize_is_seeded_clipped_and_validates():
    x = _patches(16)
    a = augment.randomize(x, [0, 3])
    np.testing.assert_array_equal(a, augment.randomize(x, [0, 3]))
    assert not np.array_equal(a, augment.randomize(x, [0, 4]))
    assert a.min() >= -1024 and a.max() <= 3071
    off = {k: 0.0 for k in augment.DEFAULT_PROBABILITIES}
    np.testing.assert_array_equal(augment.randomize(x, 0, off), np.clip(x, -1024, 3071))
    with pytest.raises(ValueError, match="flip"):
        augment.randomize(x, 0, {"flip": 0.5})
    with pytest.raises(ValueError, match="shape"):
        augment.blur(x[..., :2], np.random.default_rng(0))
