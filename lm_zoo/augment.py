"""Intensity and scanner domain randomisation for raw-HU 2.5D CT patches (training only).

Physical-space augmentation (rotation, scale, jitter) happens at extraction
(:class:`lm_zoo.patches.Augmentation`); these ops change what a scanner and protocol would change,
so that weights trained on phantom patches meet real scans: HU offset/scale, a gamma curve inside
the network's window, noise level and texture, blur, coarse slices, and rare metal/streak outliers.

Every op takes ``x`` of shape (N, H, W, 3) in HU (channels axial, coronal, sagittal as in
:mod:`lm_zoo.patches`: in the coronal and sagittal channels the rows run along z) and a
``numpy.random.Generator``; it returns a new float32 array and never modifies ``x``. Parameters
are drawn per patch. There is no flip: left and right landmarks are different classes.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "hu_scale_offset", "window_gamma", "add_noise", "blur", "coarse_slices", "streaks", "randomize",
    "DEFAULT_PROBABILITIES",
]

AIR_HU = -900.0  # below this a voxel is air/outside: it keeps its value under scale/offset/gamma


def _check(x):
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"augment: patches must be (N, H, W, 3) raw HU, got shape {x.shape}")
    return x


def hu_scale_offset(x, rng, scale=(0.92, 1.08), offset_sd=12.0):
    """Tissue HU ``v * s + o`` per patch (calibration and kVp/reconstruction differences); air unchanged."""
    x = _check(x)
    n = len(x)
    s = rng.uniform(*scale, n).astype(np.float32)[:, None, None, None]
    o = rng.normal(0.0, offset_sd, n).astype(np.float32)[:, None, None, None]
    return np.where(x > AIR_HU, x * s + o, x).astype(np.float32)


def window_gamma(x, rng, gamma=(0.8, 1.25), level=50.0, width=1000.0):
    """A gamma curve on the part of each patch inside the window ``level ± width/2`` (HU); values
    outside the window keep their value (so the window's ends stay fixed)."""
    x = _check(x)
    low = level - width / 2
    g = np.exp(rng.uniform(np.log(gamma[0]), np.log(gamma[1]), len(x))).astype(np.float32)[:, None, None, None]
    u = (x - low) / width
    inside = (u > 0) & (u < 1)
    out = np.where(inside, low + width * np.power(np.clip(u, 1e-6, 1), g), x)
    return out.astype(np.float32)


def add_noise(x, rng, sd=(0.0, 20.0), corr_sigma_px=(0.0, 1.0)):
    """Extra Gaussian noise of s.d. uniform in ``sd`` HU, correlated in-plane by a Gaussian of
    sigma uniform in ``corr_sigma_px`` (a CT-like noise power spectrum), renormalised to that s.d."""
    x = _check(x)
    out = x.copy()
    for i in range(len(x)):
        level, sigma = rng.uniform(*sd), rng.uniform(*corr_sigma_px)
        noise = rng.standard_normal(x.shape[1:]).astype(np.float32)
        if sigma > 0.05:
            noise = ndimage.gaussian_filter(noise, (sigma, sigma, 0))
            noise /= max(float(noise.std()), 1e-6)
        out[i] += np.float32(level) * noise
    return out


def blur(x, rng, sigma_px=(0.0, 1.2)):
    """In-plane Gaussian blur of each patch (sharper or softer reconstruction kernels)."""
    x = _check(x)
    out = x.copy()
    for i in range(len(x)):
        s = rng.uniform(*sigma_px)
        if s > 0.05:
            out[i] = ndimage.gaussian_filter(x[i], (s, s, 0))
    return out


def coarse_slices(x, rng, thickness_mm=(1.5, 5.0), spacing_mm=1.5):
    """As if the scan had slices ``t`` mm thick and apart (uniform in ``thickness_mm``): the z
    direction (rows of the coronal and sagittal channels) is averaged over ``t`` and sampled every
    ``t`` (random phase), then linearly interpolated back; the axial channel gets the partial-volume
    blur of a ``t``-thick slice as a small in-plane Gaussian (a single plane has no neighbours)."""
    x = _check(x)
    out = x.copy()
    h = x.shape[1]
    rows = np.arange(h, dtype=np.float64)
    for i in range(len(x)):
        t = rng.uniform(*thickness_mm) / spacing_mm  # in pixels
        if t <= 1.05:
            continue
        phase = rng.uniform(0, t)
        centres = np.arange(phase - t, h + t, t)
        box = ndimage.uniform_filter1d(x[i, :, :, 1:], size=max(1, int(round(t))), axis=0, mode="nearest")
        sampled = np.stack([
            np.stack([np.interp(centres, rows, box[:, col, ch]) for col in range(box.shape[1])], axis=1)
            for ch in range(2)], axis=-1)  # (len(centres), W, 2)
        for ch in range(2):
            for col in range(x.shape[2]):
                out[i, :, col, 1 + ch] = np.interp(rows, centres, sampled[:, col, ch])
        s = 0.25 * (t - 1)
        out[i, :, :, 0] = ndimage.gaussian_filter(x[i, :, :, 0], s)
    return out


def streaks(x, rng, amplitude=(200.0, 1500.0), rate=1.0):
    """Metal/beam-hardening-like outliers: with probability ``rate`` per patch, one channel gets a
    straight 1-2 px streak of ± ``amplitude`` HU at a random angle, or a small very bright spot."""
    x = _check(x)
    out = x.copy()
    h, w = x.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(len(x)):
        if rng.random() >= rate:
            continue
        ch = int(rng.integers(0, 3))
        if rng.random() < 0.7:
            theta, c = rng.uniform(0, np.pi), rng.uniform(-h / 3, h / 3)
            d = np.abs((xx - w / 2) * np.sin(theta) - (yy - h / 2) * np.cos(theta) - c)
            amp = rng.uniform(*amplitude) * (1 if rng.random() < 0.5 else -1)
            out[i, :, :, ch] += np.float32(amp) * np.exp(-(d / rng.uniform(0.5, 1.0)) ** 2)
        else:
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.8, 2.0)
            spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2)
            out[i, :, :, ch] = np.maximum(out[i, :, :, ch], np.float32(rng.uniform(2000, 3000)) * spot)
    return out


# probability that each op is applied to a patch (streaks: the per-patch rate)
DEFAULT_PROBABILITIES = {
    "hu_scale_offset": 0.8, "window_gamma": 0.5, "add_noise": 0.6, "blur": 0.5, "coarse_slices": 0.5, "streaks": 0.03,
}
_OPS = {"hu_scale_offset": hu_scale_offset, "window_gamma": window_gamma, "add_noise": add_noise, "blur": blur,
        "coarse_slices": coarse_slices}


def randomize(x, seed, probabilities=None):
    """All ops in a fixed order, each on a random subset of the patches (``probabilities``), with
    ``seed`` (int or sequence); the same seed gives the same output. Returns float32 HU clipped to
    the CT range -1024..3071."""
    p = dict(DEFAULT_PROBABILITIES, **(probabilities or {}))
    unknown = set(p) - set(DEFAULT_PROBABILITIES)
    if unknown:
        raise ValueError(f"randomize: unknown op(s) {sorted(unknown)}; known: {sorted(DEFAULT_PROBABILITIES)}")
    rng = np.random.default_rng(seed)
    out = _check(x).copy()
    for name, op in _OPS.items():
        sel = np.flatnonzero(rng.random(len(out)) < p[name])
        if sel.size:
            out[sel] = op(out[sel], rng)
    out = streaks(out, rng, rate=p["streaks"])
    return np.clip(out, -1024, 3071).astype(np.float32)
