"""Cerebral arterial tree of the head TOF-MRA phantom: circle-of-Willis template and per-case variation.

Everything here lives in an *anatomy frame* (mm, LPS axes, origin at the centre of the circle of
Willis); ``head_mra`` maps it into scanner space with a per-case pose. A vessel is a densely
sampled centreline with a radius and a TOF flow intensity per sample, so rendering only needs
"distance to the nearest sample minus its radius".

Sources of case-to-case variation (all drawn from one ``numpy.random.Generator``):
- a smooth random displacement field moves every control point (junctions stay joined);
- common variants: hypoplastic A1, fetal PCA (large PComm, thin P1), absent PComm;
- tortuosity: smooth perpendicular wiggles tapering to zero at both ends, plus occasional
  sharp kinks/loops on distal branches;
- hard negatives for aneurysm detection: fusiform local widenings, conical infundibula (<= 3 mm)
  at branch origins (PComm, AChA, ophthalmic, SCA, perforators), extra short terminal branches
  (bifurcations, origins and blind ends), kinks/loops, and small arteries running close beside
  larger ones;
- flow-related intensity: saturation with distance travelled, extra saturation for in-plane
  (non-z) flow in axial TOF slabs, and slow random modulation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline

SAMPLE_STEP_MM = 0.25  # centreline sampling; well below the smallest radius (0.7 mm)


@dataclass
class Vessel:
    name: str
    points: np.ndarray  # (n, 3) anatomy-frame mm
    radii: np.ndarray  # (n,)
    intensity: np.ndarray  # (n,) displayed TOF intensity, ~1 for fresh inflow
    signal: np.ndarray  # (n,) inflow signal before in-plane saturation (what children inherit)


@dataclass
class Tree:
    vessels: dict[str, Vessel] = field(default_factory=dict)
    # aneurysm sites: name -> (vessel name, sample index, outward direction in anatomy frame)
    sites: dict[str, tuple[str, int, np.ndarray]] = field(default_factory=dict)


def _template(rng: np.random.Generator) -> list[dict]:
    """Named segments: control points, radius at start/end, parent (for inflow intensity).

    Parents come before children; a child starts on its parent's centreline.
    """
    segs = []

    # tort scales the wiggle amplitude per segment. Calibrated on the real sample with the same
    # instrument (benchmarks/mra_calibration.py: bend at 2-branch points, 2-4 mm away): there the
    # large arteries (r >= 1.5 mm: ICA siphon, vertebral, basilar) bend by 29 deg median and the
    # medium ones (r 1-1.5 mm) by 20; the phantom had 12-17 and 23-35. So large segments wiggle
    # more and the distal ones (default) less than before.
    def add(name, pts, r0, r1, parent=None, tort=0.7):
        segs.append(dict(name=name, pts=np.asarray(pts, float), r0=r0, r1=r1, parent=parent, tort=tort))

    fetal = {s: rng.random() < 0.12 for s in (-1, 1)}
    no_pcomm = {s: (not fetal[s]) and rng.random() < 0.1 for s in (-1, 1)}
    hypo_a1 = {s: False for s in (-1, 1)}
    hypo_a1[int(rng.choice([-1, 1]))] = rng.random() < 0.12

    for s, side in ((1, "left"), (-1, "right")):
        add(f"ica_{side}", [(s * 17, 6, -40), (s * 16.5, 5, -30), (s * 16, -3, -22), (s * 15.5, -10, -15),
                            (s * 14.5, -8, -7), (s * 13, -2, 0)], 2.4, 2.0, tort=2.0)
        add(f"vertebral_{side}", [(s * 15, 30, -46), (s * 10, 24, -37), (s * 2, 18.5, -29.5)], 1.8, 1.6, tort=1.6)
    add("basilar", [(0, 18, -29), (0, 15.5, -18), (0, 12.5, -7), (0, 11, -2)], 1.7, 1.5, parent="vertebral_left",
        tort=1.2)
    for s, side in ((1, "left"), (-1, "right")):
        add(f"sca_{side}", [(s * 1.2, 12, -5.5), (s * 8, 14, -7.5), (s * 16, 20, -6.5), (s * 22, 30, -3)],
            0.8, 0.7, parent="basilar")
        add(f"p1_{side}", [(0, 11, -2), (s * 5, 11, -1.5), (s * 9, 12, -1)], 0.7 if fetal[s] else 1.1,
            0.7 if fetal[s] else 1.05, parent="basilar", tort=0.3)
        add(f"p2_{side}", [(s * 9, 12, -1), (s * 16, 18, 1), (s * 22, 27, 3), (s * 26, 36, 6), (s * 24, 46, 10)],
            1.0, 0.85, parent=f"p1_{side}")
        add(f"pca_temporal_{side}", [(s * 22, 27, 3), (s * 30, 33, -1), (s * 36, 42, -4)], 0.75, 0.7,
            parent=f"p2_{side}")
        if not no_pcomm[s]:
            add(f"pcomm_{side}", [(s * 13.6, -1.5, -1), (s * 12, 5, -1.5), (s * 9, 12, -1)],
                1.1 if fetal[s] else 0.75, 1.0 if fetal[s] else 0.7, parent=f"ica_{side}", tort=0.4)
        add(f"ophthalmic_{side}", [(s * 15.2, -10.5, -13), (s * 18, -18, -12), (s * 22, -27, -10),
                                   (s * 24, -35, -9)], 0.75, 0.7, parent=f"ica_{side}")
        add(f"acha_{side}", [(s * 13.8, -1.0, -0.5), (s * 18, 6, 2), (s * 23, 14, 4)], 0.7, 0.7,
            parent=f"ica_{side}")
        add(f"m1_{side}", [(s * 13, -2, 0), (s * 19, -3, 1), (s * 25, -1, 2), (s * 30, 1, 3)], 1.5, 1.3,
            parent=f"ica_{side}", tort=0.8)
        add(f"m2_superior_{side}", [(s * 30, 1, 3), (s * 34, -4, 8), (s * 38, -6, 14), (s * 42, -4, 21)],
            1.0, 0.9, parent=f"m1_{side}")
        add(f"m2_inferior_{side}", [(s * 30, 1, 3), (s * 35, 6, 3), (s * 39, 12, 5), (s * 43, 20, 9)],
            1.0, 0.9, parent=f"m1_{side}")
        add(f"lenticulostriate_{side}", [(s * 19, -3, 1), (s * 20, -2, 7), (s * 21.5, 0, 14), (s * 22, 2, 20)],
            0.7, 0.7, parent=f"m1_{side}")
        a1r = 0.7 if hypo_a1[s] else 1.1
        add(f"a1_{side}", [(s * 13, -2, 0), (s * 8, -8, 1.5), (s * 2.4, -13, 2.5)], a1r, a1r,
            parent=f"ica_{side}", tort=0.3)
    add("acomm", [(2.4, -13, 2.5), (0, -13.6, 2.7), (-2.4, -13, 2.5)], 0.8, 0.8, parent="a1_left", tort=0.0)
    for s, side in ((1, "left"), (-1, "right")):
        add(f"a2_{side}", [(s * 2.4, -13, 2.5), (s * 2.1, -17, 7), (s * 1.9, -21, 11.5)], 1.0, 0.95,
            parent=f"a1_{side}", tort=0.4)
        add(f"pericallosal_{side}", [(s * 1.9, -21, 11.5), (s * 1.7, -25, 17), (s * 1.6, -25, 24)], 0.9, 0.85,
            parent=f"a2_{side}")
        add(f"callosomarginal_{side}", [(s * 1.9, -21, 11.5), (s * 4, -27, 14), (s * 6, -33, 20)], 0.8, 0.75,
            parent=f"a2_{side}")
    return segs


def _displacement_field(rng: np.random.Generator, amplitude_mm: float):
    """Smooth random field R^3 -> R^3 (sum of a few plane waves, wavelengths 40-120 mm)."""
    k = rng.normal(size=(4, 3))
    k *= (2 * np.pi / rng.uniform(40, 120, size=4))[:, None] / np.linalg.norm(k, axis=1, keepdims=True)
    phase = rng.uniform(0, 2 * np.pi, size=4)
    amp = rng.normal(scale=amplitude_mm / 2, size=(4, 3))

    def apply(p):
        return p + np.sin(p @ k.T + phase) @ amp

    return apply


def _perpendicular_frame(tangent: np.ndarray):
    helper = np.where(np.abs(tangent[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    n1 = np.cross(tangent, helper)
    n1 /= np.linalg.norm(n1, axis=1, keepdims=True)
    return n1, np.cross(tangent, n1)


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    spline = CubicSpline(s, points, bc_type="natural")
    # A second pass at uniform arc length keeps samples evenly spaced after the spline bends.
    fine = spline(np.linspace(0, s[-1], max(int(s[-1] / step * 3), 8)))
    fs = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(fine, axis=0), axis=1))])
    n = max(int(np.ceil(fs[-1] / step)) + 1, 2)
    target = np.linspace(0, fs[-1], n)
    return np.stack([np.interp(target, fs, fine[:, i]) for i in range(3)], axis=1)


def _wiggle(points: np.ndarray, rng: np.random.Generator, amplitude: float, kink: bool) -> np.ndarray:
    """Perpendicular smooth displacement, zero (with zero slope) at both ends so joints stay put."""
    n = len(points)
    if n < 8 or amplitude <= 0:
        return points
    tangent = np.gradient(points, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    n1, n2 = _perpendicular_frame(tangent)
    length = (n - 1) * SAMPLE_STEP_MM
    s = np.linspace(0, length, n)
    taper = np.sin(np.pi * s / length) ** 2
    d1 = np.zeros(n)
    d2 = np.zeros(n)
    for _ in range(3):
        wl = rng.uniform(6, 25)
        d1 += rng.normal(scale=amplitude) * np.sin(2 * np.pi * s / wl + rng.uniform(0, 2 * np.pi))
        d2 += rng.normal(scale=amplitude) * np.sin(2 * np.pi * s / wl + rng.uniform(0, 2 * np.pi))
    if kink:
        # A short, high-amplitude excursion: a kink or small loop, a classic aneurysm mimic in MIPs.
        c = rng.uniform(0.3, 0.7) * length
        w = rng.uniform(1.5, 3.0)
        bump = np.exp(-0.5 * ((s - c) / w) ** 2)
        d1 += rng.uniform(2.0, 4.0) * rng.choice([-1, 1]) * bump
        d2 += rng.uniform(1.0, 3.0) * rng.choice([-1, 1]) * bump * np.sign(s - c)
    out = points + (taper * d1)[:, None] * n1 + (taper * d2)[:, None] * n2
    return _resample(out, SAMPLE_STEP_MM)


def _flow_signal(n: int, start: float, rng: np.random.Generator) -> np.ndarray:
    """Unsaturated inflow signal along a vessel: slow decay with path length (spin saturation)."""
    s = np.arange(n) * SAMPLE_STEP_MM
    return start * np.exp(-s / rng.uniform(250, 500))


def _flow_intensity(points: np.ndarray, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Displayed TOF intensity: inflow signal, extra saturation of in-plane flow, slow modulation."""
    tangent = np.gradient(points, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    s = np.arange(len(points)) * SAMPLE_STEP_MM
    inplane = 1.0 - rng.uniform(0.05, 0.15) * (1.0 - np.abs(tangent[:, 2]))
    wl = rng.uniform(8, 30)
    mod = 1.0 + rng.uniform(0.0, 0.08) * np.sin(2 * np.pi * s / wl + rng.uniform(0, 2 * np.pi))
    return signal * inplane * mod


def _widen(radii: np.ndarray, rng: np.random.Generator, at_start: bool) -> np.ndarray:
    """Fusiform bulge somewhere along the vessel, or a conical infundibulum at its origin."""
    n = len(radii)
    s = np.arange(n) * SAMPLE_STEP_MM
    if at_start:
        # Infundibulum: a cone at the branch origin, <= 3 mm wide at its mouth (Hassler / Saltzman
        # criteria: infundibula are conical, <= 3 mm, with the branch leaving their apex).
        w = rng.uniform(1.0, 2.5)
        mouth = min(radii[0] * (1.0 + rng.uniform(0.6, 1.1)), 1.5)
        return np.maximum(radii, radii[0] + (mouth - radii[0]) * np.clip(1 - s / w, 0, 1))
    c = rng.uniform(0.2, 0.8) * s[-1]
    w = rng.uniform(1.0, 3.0)
    return radii * (1.0 + rng.uniform(0.25, 0.7) * np.exp(-0.5 * ((s - c) / w) ** 2))


# Branches whose origin may be an infundibulum (the classic sites: PComm, AChA, ophthalmic, SCA,
# perforators; Hassler 1980).
_INFUNDIBULUM_ORIGINS = ("pcomm", "acha", "ophthalmic", "sca", "lenticulostriate", "pca_temporal",
                         "callosomarginal")


def _nearest_index(points: np.ndarray, p: np.ndarray) -> int:
    return int(np.argmin(np.linalg.norm(points - p, axis=1)))


def build_tree(rng: np.random.Generator) -> Tree:
    segs = _template(rng)
    warp = _displacement_field(rng, amplitude_mm=rng.uniform(1.5, 3.5))
    # Age-like global tortuosity level. Calibrated on the real sample (benchmarks/mra_calibration.py):
    # 0.3-1.0 bent the phantom's vessels by 32 deg median (p90 65) at the 2-3 mm scale against 23
    # (43) measured on the real TOF-MRA; 0.2-0.75 keeps the phantom a little more tortuous than that
    # one (young?) subject, as aneurysm patients are older.
    tortuosity = rng.uniform(0.2, 0.75)
    tree = Tree()
    for seg in segs:
        ctrl = warp(seg["pts"])
        if seg["parent"] is not None:
            # Snap the origin onto the (already wiggled) parent so the child really branches off it.
            parent = tree.vessels[seg["parent"]].points
            ctrl[0] = parent[_nearest_index(parent, ctrl[0])]
        pts = _resample(ctrl, SAMPLE_STEP_MM)
        distal = seg["r0"] < 1.05
        kink = distal and rng.random() < 0.25
        pts = _wiggle(pts, rng, amplitude=0.6 * tortuosity * seg["tort"], kink=kink)
        # End joints (e.g. PComm -> P1/P2) must land on the vessel they join, so re-pin the last point.
        pts[-1] = ctrl[-1]
        n = len(pts)
        radii = np.linspace(seg["r0"], seg["r1"], n) * rng.uniform(0.9, 1.1)
        radii = np.maximum(radii, 0.7)
        if seg["name"].startswith(_INFUNDIBULUM_ORIGINS) and rng.random() < (0.3 if seg["name"].startswith("pcomm")
                                                                              else 0.15):
            radii = _widen(radii, rng, at_start=True)
        elif rng.random() < 0.15:
            radii = _widen(radii, rng, at_start=False)
        if seg["parent"] is None:
            start = rng.uniform(0.9, 1.1)
        else:
            parent_v = tree.vessels[seg["parent"]]
            start = parent_v.signal[_nearest_index(parent_v.points, pts[0])] * rng.uniform(0.93, 1.02)
        signal = _flow_signal(n, start, rng)
        tree.vessels[seg["name"]] = Vessel(seg["name"], pts, radii, _flow_intensity(pts, signal, rng), signal)
    _add_terminal_branches(tree, rng)
    _add_parallel_branches(tree, rng)
    _define_sites(tree)
    return tree


def _add_terminal_branches(tree: Tree, rng: np.random.Generator) -> None:
    """Short blind-ending branches (perforators, cortical twigs): extra bifurcations and ends."""
    hosts = [v for v in tree.vessels.values() if len(v.points) > 40 and not v.name.startswith("ica")]
    for k in range(int(rng.integers(4, 11))):
        host = hosts[int(rng.integers(len(hosts)))]
        i = int(rng.integers(10, len(host.points) - 10))
        t = host.points[min(i + 2, len(host.points) - 1)] - host.points[max(i - 2, 0)]
        t /= np.linalg.norm(t)
        d = rng.normal(size=3)
        d -= (d @ t) * t
        d = 0.5 * t + d / np.linalg.norm(d)
        d /= np.linalg.norm(d)
        length = rng.uniform(6, 18)
        bend = rng.normal(scale=0.3, size=3)
        ctrl = np.stack([host.points[i], host.points[i] + d * length * 0.5,
                         host.points[i] + (d + bend) * length])
        pts = _wiggle(_resample(ctrl, SAMPLE_STEP_MM), rng, amplitude=0.4, kink=False)
        pts[0] = host.points[i]
        radii = np.full(len(pts), 0.7) * rng.uniform(1.0, 1.15)
        signal = _flow_signal(len(pts), host.signal[i] * rng.uniform(0.85, 1.0), rng)
        tree.vessels[f"branch_{k}"] = Vessel(f"branch_{k}", pts, radii, _flow_intensity(pts, signal, rng), signal)


def _add_parallel_branches(tree: Tree, rng: np.random.Generator) -> None:
    """1-3 small arteries running beside a larger one, 0.4-1.2 mm apart wall to wall, for 6-12 mm
    (e.g. perforators beside M1, AChA beside PComm): two close tubes merge into one bright blob at
    the working resolution, a classic aneurysm mimic."""
    hosts = [v for v in tree.vessels.values() if len(v.points) > 80 and not v.name.startswith("branch")]
    for k in range(int(rng.integers(1, 4))):
        host = hosts[int(rng.integers(len(hosts)))]
        n_run = int(rng.uniform(6, 12) / SAMPLE_STEP_MM)
        if len(host.points) < n_run + 20:
            continue
        i = int(rng.integers(5, len(host.points) - n_run - 5))
        run = host.points[i:i + n_run]
        n_run = len(run)
        t = np.gradient(run, axis=0)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        n1, n2 = _perpendicular_frame(t[:1])
        a = rng.uniform(0, 2 * np.pi)
        # One side all along (a per-sample frame can flip), kept perpendicular to the host.
        side = np.cos(a) * n1 + np.sin(a) * n2
        side = side - (t @ side[0])[:, None] * t
        side /= np.linalg.norm(side, axis=1, keepdims=True)
        r = rng.uniform(0.7, 0.8)
        gap = host.radii[i:i + n_run] + r + rng.uniform(0.4, 1.2)
        s = np.arange(n_run) * SAMPLE_STEP_MM
        ramp = np.clip(s / 2.0, 0, 1)  # leaves the host's wall, then runs beside it
        pts = run + (gap * ramp)[:, None] * side
        out = (t[-1] + side[-1]) / np.linalg.norm(t[-1] + side[-1])
        tail = pts[-1] + out[None, :] * np.linspace(0, 6, 25)[1:, None]
        pts = _resample(np.concatenate([pts, tail]), SAMPLE_STEP_MM)
        pts[0] = host.points[i]
        radii = np.full(len(pts), r)
        signal = _flow_signal(len(pts), host.signal[i] * rng.uniform(0.85, 1.0), rng)
        tree.vessels[f"parallel_{k}"] = Vessel(f"parallel_{k}", pts, radii, _flow_intensity(pts, signal, rng), signal)


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _define_sites(tree: Tree) -> None:
    """Typical saccular aneurysm sites, each with the direction a dome grows in (haemodynamic)."""
    v = tree.vessels
    ac = v["acomm"]
    mid = len(ac.points) // 2
    tree.sites["acomm"] = ("acomm", mid, _unit([0, -1, 0.7]))
    tree.sites["basilar_tip"] = ("basilar", len(v["basilar"].points) - 1, _unit(_end_direction(v["basilar"])))
    for s, side in ((1, "left"), (-1, "right")):
        m1 = v[f"m1_{side}"]
        tree.sites[f"mca_bifurcation_{side}"] = (m1.name, len(m1.points) - 1, _unit(_end_direction(m1)))
        ica = v[f"ica_{side}"]
        tree.sites[f"ica_terminus_{side}"] = (ica.name, len(ica.points) - 1,
                                              _unit(_end_direction(ica) + [0, 0, 0.5]))
        if f"pcomm_{side}" in v:
            i = _nearest_index(ica.points, v[f"pcomm_{side}"].points[0])
            tree.sites[f"ica_pcomm_{side}"] = (ica.name, i, _unit([s * 0.4, 1, -0.5]))
        i = _nearest_index(ica.points, v[f"ophthalmic_{side}"].points[0])
        tree.sites[f"ica_ophthalmic_{side}"] = (ica.name, i, _unit([-s * 0.5, -0.2, 1]))
        a2 = v[f"a2_{side}"]
        tree.sites[f"pericallosal_{side}"] = (a2.name, len(a2.points) - 1, _unit(_end_direction(a2)))


def _end_direction(vessel: Vessel) -> np.ndarray:
    p = vessel.points
    return p[-1] - p[max(len(p) - 9, 0)]
