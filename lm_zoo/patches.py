"""2.5D patches in physical space: three orthogonal planes through an LPS point, as 3 channels.

With ``c = (size - 1) / 2`` and ``s = spacing_mm``, pixel row ``v`` / column ``u`` of each channel
samples the LPS point

- channel 0, axial:    ``p + s * (u - c,  v - c,  0)``  (anterior at the top),
- channel 1, coronal:  ``p + s * (u - c,  0,     -(v - c))``  (superior at the top),
- channel 2, sagittal: ``p + s * (0,      u - c, -(v - c))``  (superior at the top),

so a patch shows the same anatomy whatever the file's voxel spacing, origin or direction cosines.
All sample points go through one physical -> continuous-index transform and a fused numba
trilinear kernel (:mod:`lm_zoo._sampling`) that reproduces ``SimpleITK.Resample`` exactly,
including its border rule (inside means ``-0.5 <= index < size - 0.5``; edge voxels extend over
the outer half voxel). :func:`extract_25d_reference` is that per-plane ``SimpleITK.Resample``
reference, kept for tests and ``benchmarks/patches.py``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import SimpleITK as sitk

from lm_zoo._sampling import sample_grids
from lm_zoo.figures import save_png
from lm_zoo.io import continuous_index, index_transform, read_image

__all__ = [
    "Augmentation",
    "PLANES",
    "INTERPOLATORS",
    "MAX_PATCH_BYTES",
    "extract_25d",
    "extract_25d_batch",
    "extract_25d_reference",
    "plane_frames",
    "save_montage",
]

PLANES = ("axial", "coronal", "sagittal")
# (u axis, v axis) of each plane in LPS, as in the module doc.
_PLANE_AXES = np.array(
    [
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]],
        [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0]],
    ]
)
INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}
# extract_25d refuses to allocate more than this for one call unless asked (allow_large=True).
MAX_PATCH_BYTES = 2 * 2**30


@dataclass(frozen=True)
class Augmentation:
    """Random rigid-plus-scale change of the 3-plane frame, drawn per point.

    - rotation: about an axis uniform on the sphere, angle uniform in ``[-max_rotation_deg, +max_rotation_deg]``;
      the three planes rotate together about the point;
    - scale: the sampling spacing is multiplied by a factor uniform in ``scale_range`` (> 1 zooms out);
    - jitter: the point moves by a vector with each LPS component uniform in ``[-jitter_mm, +jitter_mm]``.
    """

    max_rotation_deg: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    jitter_mm: float = 1.0

    def __post_init__(self):
        lo, hi = self.scale_range
        if not (0 < lo <= hi and np.isfinite(hi)):
            raise ValueError(f"Augmentation: scale_range must satisfy 0 < low <= high, got {self.scale_range}")
        if not (0 <= self.max_rotation_deg <= 180):
            raise ValueError(f"Augmentation: max_rotation_deg must be in [0, 180], got {self.max_rotation_deg}")
        if not (0 <= self.jitter_mm < np.inf):
            raise ValueError(f"Augmentation: jitter_mm must be >= 0 and finite, got {self.jitter_mm}")

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rotations (n, 3, 3), scales (n,), shifts (n, 3) for ``n`` points."""
        from scipy.spatial.transform import Rotation

        axis = rng.normal(size=(n, 3))
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)
        angle = np.radians(rng.uniform(-self.max_rotation_deg, self.max_rotation_deg, size=n))
        rotations = Rotation.from_rotvec(axis * angle[:, None]).as_matrix().reshape(n, 3, 3)
        scales = rng.uniform(self.scale_range[0], self.scale_range[1], size=n)
        shifts = rng.uniform(-self.jitter_mm, self.jitter_mm, size=(n, 3))
        return rotations, scales, shifts


def plane_frames(points, size: int = 32, spacing_mm: float = 1.0, *, augment: Augmentation | None = None, seed=None):
    """LPS corner (pixel u=0, v=0) of each plane, (N, 3, 3), and per-pixel steps along u and v, (N, 3, 2, 3)."""
    points = _check_points(points)
    size, spacing_mm = _check_grid(size, spacing_mm)
    n = len(points)
    axes = np.broadcast_to(_PLANE_AXES * spacing_mm, (n, 3, 2, 3)).copy()
    centers = points.copy()
    if augment is not None:
        if seed is None:
            raise ValueError("extract_25d: augment needs a seed (int or numpy Generator) so results are reproducible")
        rotations, scales, shifts = augment.draw(n, np.random.default_rng(seed))
        axes = np.einsum("nij,ncaj->ncai", rotations, axes) * scales[:, None, None, None]
        centers = centers + shifts
    c = (size - 1) / 2.0
    corners = centers[:, None, :] - c * (axes[:, :, 0, :] + axes[:, :, 1, :])
    return corners, axes


def extract_25d(
    image,
    points,
    size: int = 32,
    spacing_mm: float = 1.0,
    default_value: float = 0.0,
    interpolator: str = "linear",
    *,
    augment: Augmentation | None = None,
    seed=None,
    max_bytes: int | None = None,
    allow_large: bool = False,
) -> np.ndarray:
    """2.5D patches (N, size, size, 3) float32 of raw intensities at LPS points ``(N, 3)``.

    ``image``: SimpleITK.Image or path (see :func:`lm_zoo.io.read_image`); ``points`` may also be
    a :class:`lm_zoo.landmarks.Landmarks`; ``interpolator``:
    ``"linear"`` or ``"nearest"``; samples outside the volume get ``default_value``.
    ``augment`` (with ``seed``: int or numpy Generator) rotates/scales the three planes together
    and jitters the point. Points farther outside the volume than the patch reaches are allowed
    (their patches are all ``default_value``) but trigger one warning per call.

    The output array is allocated at once: a request larger than ``max_bytes`` (default
    :data:`MAX_PATCH_BYTES`, 2 GiB, e.g. 500 000 points of 32 x 32 x 3 float32) raises ValueError
    before any work unless ``allow_large=True``; for more points, pass chunks of them through
    :func:`extract_25d_batch` (a generator: one array per ``(image, points)`` pair).
    """
    _check_output_size(points, size, max_bytes, allow_large)
    image, corners, axes, out = _prepare(image, points, size, spacing_mm, interpolator, augment, seed)
    if len(corners) == 0:
        warnings.warn("extract_25d: empty point list; returning no patches", stacklevel=2)
        return out
    origin, _, to_index = index_transform(image)
    corner_index = (corners - origin) @ to_index.T
    step_index = axes @ to_index.T
    size = out.shape[1]
    _warn_far_points(image, _check_points(points), size, spacing_mm, augment)
    volume = sitk.GetArrayViewFromImage(image)
    sample_grids(
        volume,
        np.ascontiguousarray(corner_index),
        np.ascontiguousarray(step_index),
        size,
        float(default_value),
        interpolator == "nearest",
        out,
    )
    return out


def extract_25d_reference(
    image,
    points,
    size: int = 32,
    spacing_mm: float = 1.0,
    default_value: float = 0.0,
    interpolator: str = "linear",
    *,
    augment: Augmentation | None = None,
    seed=None,
) -> np.ndarray:
    """Same result as :func:`extract_25d`, by one ``SimpleITK.Resample`` per plane (slow; the reference)."""
    image, corners, axes, out = _prepare(image, points, size, spacing_mm, interpolator, augment, seed)
    interp, size = INTERPOLATORS[interpolator], out.shape[1]
    identity = sitk.Transform()
    for n in range(len(corners)):
        for c in range(3):
            u_step, v_step = axes[n, c]
            u_len, v_len = np.linalg.norm(u_step), np.linalg.norm(v_step)
            u_dir, v_dir = u_step / u_len, v_step / v_len
            direction = np.column_stack([u_dir, v_dir, np.cross(u_dir, v_dir)])
            grid = sitk.Image([size, size, 1], sitk.sitkFloat32)
            grid.SetOrigin(tuple(corners[n, c]))
            grid.SetSpacing((u_len, v_len, 1.0))
            grid.SetDirection(tuple(direction.ravel()))
            plane = sitk.Resample(image, grid, identity, interp, float(default_value), sitk.sitkFloat32)
            out[n, :, :, c] = sitk.GetArrayViewFromImage(plane)[0]
    return out


def extract_25d_batch(
    cases: Iterable,
    size: int = 32,
    spacing_mm: float = 1.0,
    default_value: float = 0.0,
    interpolator: str = "linear",
    *,
    augment: Augmentation | None = None,
    seed=None,
    progress: bool = True,
    desc: str = "2.5D patches",
) -> Iterator[np.ndarray]:
    """Yield one patch array per ``(image, points)`` case, reading each image only when reached.

    Images may be paths, so only one volume is in memory at a time. With ``augment``, one
    generator seeded by ``seed`` is drawn from case after case, so the sequence is reproducible.
    Shows a tqdm progress bar unless ``progress=False``.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed) if augment is not None and seed is not None else seed
    total = len(cases) if hasattr(cases, "__len__") else None
    for case in tqdm(cases, total=total, desc=desc, unit="case", disable=not progress):
        try:
            image, points = case
        except (TypeError, ValueError):
            raise ValueError(f"extract_25d_batch: each case must be an (image, points) pair, got {case!r:.200}") from None
        yield extract_25d(image, points, size, spacing_mm, default_value, interpolator, augment=augment, seed=rng)


def save_montage(patches, labels, path, *, max_patches: int = 64, columns: int = 8, window=None) -> Path:
    """Write a PNG grid of patches, each as its axial | coronal | sagittal channels, titled by label.

    Each patch is scaled to its own 1st-99th percentile unless ``window=(low, high)`` fixes the
    grey scale (e.g. a CT window in HU). Written to a temporary file and moved into place.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    patches = np.asarray(patches, dtype=np.float32)
    if patches.ndim != 4 or patches.shape[-1] != 3:
        raise ValueError(f"save_montage: patches must be (N, H, W, 3), got shape {patches.shape}")
    labels = [""] * len(patches) if labels is None else [str(label) for label in labels]
    if len(labels) != len(patches):
        raise ValueError(f"save_montage: {len(labels)} labels for {len(patches)} patches")
    shown = min(len(patches), max_patches)
    if shown == 0:
        raise ValueError("save_montage: no patches to show")
    columns = max(1, min(columns, shown))
    rows = -(-shown // columns)
    h, w = patches.shape[1:3]
    gap = max(1, w // 8)
    cell_w, cell_h = 3 * w + 2 * gap, h
    mosaic = np.full((rows * (cell_h + 3 * gap), columns * (cell_w + 2 * gap)), np.nan, dtype=np.float32)
    positions = []
    for i in range(shown):
        r, c = divmod(i, columns)
        y0, x0 = r * (cell_h + 3 * gap) + 2 * gap, c * (cell_w + 2 * gap) + gap
        lo, hi = window if window is not None else np.percentile(patches[i], [1, 99])
        scaled = np.clip((patches[i] - lo) / max(hi - lo, 1e-6), 0, 1)
        for ch in range(3):
            xs = x0 + ch * (w + gap)
            mosaic[y0 : y0 + h, xs : xs + w] = scaled[:, :, ch]
        positions.append((x0, y0))
    dpi = 100
    scale = max(2.0, 12.0 / max(1, w))
    fig = Figure(figsize=(mosaic.shape[1] * scale / dpi, mosaic.shape[0] * scale / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(np.ma.masked_invalid(mosaic), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_facecolor("black")
    ax.set_axis_off()
    for (x0, y0), label in zip(positions, labels):
        ax.text(x0, y0 - 0.5, label, color="yellow", fontsize=7, va="bottom", ha="left", clip_on=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_png(fig, path, dpi=dpi, facecolor="black")


# ----------------------------------------------------------------------------------- helpers
def _prepare(image, points, size, spacing_mm, interpolator, augment, seed):
    """What both extractors start from: the checked image, the plane frames and the empty output."""
    image = read_image(image)
    _check_interpolator(interpolator)
    corners, axes = plane_frames(points, size, spacing_mm, augment=augment, seed=seed)
    out = np.empty((len(corners), int(size), int(size), 3), dtype=np.float32)
    return image, corners, axes, out


_POINTS_SHAPE = "points must be an (N, 3) array of LPS mm x, y, z (or a lm_zoo.landmarks.Landmarks)"


def _check_points(points) -> np.ndarray:
    raw = getattr(points, "points", points)  # also lm_zoo.landmarks.Landmarks
    columns = getattr(raw, "columns", None)  # a pandas DataFrame
    try:
        points = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        hint = ""
        if columns is not None:
            hint = (f"; got a DataFrame with columns {list(columns)}: pass df[['x', 'y', 'z']].to_numpy() "
                    "(names stay in your own column)")
        raise ValueError(f"extract_25d: {_POINTS_SHAPE}, but points hold non-numeric values ({err}){hint}") from None
    if points.shape == (3,):
        points = points[None]
    if points.size == 0:
        return points.reshape(0, 3)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"extract_25d: {_POINTS_SHAPE}, got shape {points.shape}")
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"extract_25d: {int(bad.sum())} point(s) hold NaN/inf, first is point {i} = {points[i].tolist()}")
    return points


def _check_output_size(points, size, max_bytes, allow_large) -> None:
    limit = MAX_PATCH_BYTES if max_bytes is None else int(max_bytes)
    n = len(_check_points(points))
    needed = n * int(_check_grid(size, 1.0)[0]) ** 2 * 3 * 4
    if needed > limit and not allow_large:
        raise ValueError(
            f"extract_25d: {n} points x {int(size)}x{int(size)}x3 float32 patches need {needed / 2**30:.2f} GiB, "
            f"over max_bytes={limit} ({limit / 2**30:.2f} GiB); pass chunks of points through "
            "lm_zoo.patches.extract_25d_batch([(image, chunk), ...]) (a generator, one array per chunk), or "
            "allow_large=True / a larger max_bytes= if the memory is there"
        )


def _check_grid(size, spacing_mm) -> tuple[int, float]:
    if int(size) != size or int(size) < 1:
        raise ValueError(f"extract_25d: size must be a positive integer, got {size!r}")
    if not (np.isfinite(spacing_mm) and spacing_mm > 0):
        raise ValueError(f"extract_25d: spacing_mm must be a positive finite number, got {spacing_mm!r}")
    return int(size), float(spacing_mm)


def _check_interpolator(interpolator: str) -> None:
    if interpolator not in INTERPOLATORS:
        raise ValueError(f"extract_25d: interpolator {interpolator!r} not in {sorted(INTERPOLATORS)}")


def _warn_far_points(image, points, size, spacing_mm, augment) -> None:
    """One warning per call for points whose whole patch lies outside the volume."""
    index = continuous_index(image, points)
    extent = np.asarray(image.GetSize(), dtype=float)
    outside_vox = np.maximum(np.maximum(-0.5 - index, index - (extent - 0.5)), 0.0)
    outside_mm = np.linalg.norm(outside_vox * np.asarray(image.GetSpacing()), axis=1)
    reach = (size - 1) / 2.0 * spacing_mm * np.sqrt(2.0)
    if augment is not None:
        reach = reach * augment.scale_range[1] + augment.jitter_mm * np.sqrt(3.0)
    far = np.flatnonzero(outside_mm > reach)
    if far.size:
        i = int(far[0])
        warnings.warn(
            f"extract_25d: {far.size} of {len(points)} point(s) lie more than {reach:.1f} mm outside the "
            f"volume (first: point {i} = {points[i].tolist()}, {outside_mm[i]:.1f} mm outside); their "
            "patches hold only default_value",
            stacklevel=3,
        )
