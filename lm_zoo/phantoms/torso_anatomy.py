"""Torso anatomy for the CT phantom: shapes, tissue values and landmark points from a seed.

Everything here lives in *anatomy space*: LPS millimetres with x to the patient's left, y
posterior, z superior, the body's midline at x = 0 and z = 0 at the top of the S1 vertebral body.
:func:`build_anatomy` draws one subject (size, organ sizes and positions, spine curvature,
diaphragm height, contrast phase, tissue HU) and returns an ordered paint list plus the exact
landmark points. Landmarks are derived from the same shape parameters that are painted (an
ellipsoid's extreme point, the end of a vessel centreline, a vertebral body's centre), never
marked in the image.

Canonical positions below are an average adult; a per-subject anisotropic scale ``S`` and
subcutaneous fat thickness are applied on top.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline

from lm_zoo.anatomy import VERTEBRAE
from lm_zoo.phantoms._shapes import (
    Capsule, Cylinder, Difference, Ellipsoid, HalfSpace, Intersect, Section, rotation, tube,
)

__all__ = ["Anatomy", "build_anatomy", "VERTEBRAE", "PHASES", "TEXTURE_BONE", "TEXTURE_ORGAN", "textured"]

PHASES = ("none", "arterial", "portal")
# Paint values carry a texture code: ``value + TEXTURE_* `` marks voxels that get trabecular bone
# (fine, ~1 mm, strong) or parenchyma (coarse, ~3-6 mm, weak) texture after painting
# (:func:`lm_zoo.phantoms.torso_ct._apply_texture`); HU stay within -1024..3071, so
# ``round(v / 10000)`` is the code and ``v - code * 10000`` the HU.
TEXTURE_BONE, TEXTURE_ORGAN = 10000.0, 20000.0


def textured(value, code):
    """A paint value carrying a texture code (``TEXTURE_BONE`` or ``TEXTURE_ORGAN``)."""
    return float(value) + code


# Vertebral body height, half-width, half-depth (mm) and the disc below it, C7..L5, then S1.
_BODY_H = np.r_[14, np.linspace(16, 24, 12), np.linspace(26, 28, 5)]
_BODY_AX = np.r_[13, np.linspace(14, 19, 12), np.linspace(20, 23, 5)]
_BODY_AY = np.r_[9, np.linspace(10, 14.5, 12), np.linspace(15, 16.5, 5)]
_DISC_H = np.r_[5, np.linspace(4.5, 6.5, 11), 8, np.linspace(9, 11, 5)]  # below C7 .. below L5

# Muscle-wall outline (outer surface of the trunk muscles) along z, canonical mm.
_WALL_Z = [-200, -100, -40, 20, 80, 150, 230, 330, 420, 470, 505, 530, 620]
_WALL_A = [150, 152, 148, 135, 125, 128, 135, 138, 135, 120, 75, 60, 58]
_WALL_BANT = [85, 90, 95, 95, 95, 95, 100, 100, 92, 80, 55, 48, 46]
_WALL_BPOST = [85, 85, 85, 90, 90, 95, 100, 105, 100, 90, 65, 55, 52]
# Centre of the spine (vertebral body centres) in y along z: lordosis / kyphosis.
_SPINE_Z = [-80, 0, 24, 100, 172, 263, 340, 420, 473, 500, 620]
_SPINE_Y = [62, 45, 35, 22, 28, 45, 55, 52, 42, 35, 28]


@dataclass
class Anatomy:
    paints: list = field(default_factory=list)      # [(shape or list of shapes, HU)] in paint order
    landmarks: dict = field(default_factory=dict)   # name -> (3,) anatomy mm
    # TotalSegmentator structure name -> shapes, in label paint order (later names win overlaps);
    # torso_ct rasterises it into TotalSegmentator-compatible label maps on request.
    structures: dict = field(default_factory=dict)
    extent: tuple = None                            # (lo, hi) of the body, anatomy mm
    scan_z: tuple = None                            # (z_bottom, z_top) of the scan range
    arterial: bool = False
    phase: str = "none"                             # "none", "arterial" or "portal"
    table_hu: float = 150.0


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _frame(axis):
    """Rotation whose third column is ``axis`` (local z), first column as close to x as possible."""
    ez = _unit(axis)
    ex = np.array([1.0, 0, 0]) - ez[0] * ez
    ex = _unit(ex)
    return np.column_stack([ex, np.cross(ez, ex), ez])


def _smooth(points, step=9.0):
    """A cubic spline through ``points`` resampled about every ``step`` mm."""
    points = np.asarray(points, float)
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.r_[0, np.cumsum(seg)]
    n = max(int(s[-1] / step), 2)
    return CubicSpline(s, points, bc_type="natural")(np.linspace(0, s[-1], n + 1))


class _Subject:
    """Canonical-to-subject mapping: points scale by ``S``, shapes keep their exact form."""

    def __init__(self, scale):
        self.S = np.diag(scale)
        self.r = float(np.sqrt(scale[0] * scale[1]))

    def p(self, *xyz):
        return self.S @ np.asarray(xyz if len(xyz) == 3 else xyz[0], float)

    def ell(self, c, semi, rot=None):
        return Ellipsoid(self.p(c), semi, self.S @ (np.eye(3) if rot is None else rot))

    def cyl(self, c, semi, rot=None):
        return Cylinder(self.p(c), semi, self.S @ (np.eye(3) if rot is None else rot))

    def tube(self, points, radii, smooth=False):
        pts = np.asarray(points, float)
        radii = np.broadcast_to(np.asarray(radii, float), (len(pts),))
        if smooth and len(pts) > 2:
            seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
            s = np.r_[0, np.cumsum(seg)]
            dense = _smooth(pts)
            ds = np.r_[0, np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))]
            radii = np.interp(ds / ds[-1] * s[-1], s, radii)
            pts = dense
        return tube(pts @ self.S.T, radii * self.r)

    def half(self, point, normal):
        return HalfSpace(self.p(point), np.linalg.solve(self.S, np.asarray(normal, float)))


def build_anatomy(rng: np.random.Generator, arterial: bool | None = None, phase: str | None = None) -> Anatomy:
    """Draw one subject from ``rng`` (a fixed number of draws in a fixed order, whatever the
    phase). ``phase``: "none", "arterial" or "portal" (portal-venous) contrast; ``arterial``
    (True/False) is the older spelling of "arterial"/"none"."""
    if phase is None:
        phase = "arterial" if arterial else "none"
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    draft = _Draft(rng, phase)
    # One organ system after the other. The order is that of the random draws and of the paint
    # list (later paints win), so it must not change: the same seed gives the same bytes.
    _draw_outline(draft)
    _draw_spine_levels(draft)
    _draw_lungs(draft)
    _draw_heart(draft)
    _draw_aorta_and_arch(draft)
    _draw_pulmonary_trunk_and_airways(draft)
    _draw_lung_vessels(draft)
    _draw_bowel(draft)
    _draw_clutter(draft)
    _draw_back_muscles(draft)
    _draw_liver(draft)
    _draw_stomach(draft)
    _draw_spleen_and_pancreas(draft)
    _draw_kidneys(draft)
    draft.an.paints.append(draft.spleen_paint)  # after the kidneys: the spleen lies in front of them
    _draw_visceral_arteries(draft)
    _draw_veins_and_iliacs(draft)
    _draw_vertebrae(draft)
    _draw_sacrum_and_canal(draft)
    _draw_sternum(draft)
    _draw_ribs(draft)
    _draw_shoulder_girdle(draft)
    _draw_pelvis(draft)
    _draw_airway_lumens(draft)
    _finish(draft)
    return draft.an


class _Draft:
    """One subject being drawn: its random stream, its scale, the :class:`Anatomy` being filled
    and the quantities that several organ systems share (body wall, spine levels, aorta), which
    the ``_draw_*`` functions store as attributes for the ones after them."""

    def __init__(self, rng, phase):
        self.rng = rng
        self.u = u = rng.uniform
        self.sub = _Subject(np.array([u(0.88, 1.12), u(0.88, 1.15), u(0.92, 1.08)]))
        self.P = self.sub.p
        self.an = Anatomy(arterial=phase == "arterial", phase=phase)
        self.art = phase != "none"  # enhanced vessels / organs (arterial or portal-venous)
        self.lm = {}
        self.hu = _tissue_values(u, phase)

    def label(self, name, *shapes):
        """Record shapes under a TotalSegmentator structure name."""
        for shape in shapes:
            self.an.structures.setdefault(name, []).extend(shape if isinstance(shape, list) else [shape])

    def wall_at(self, z):
        """Muscle-wall half-axes (lateral, anterior, posterior) at subject z."""
        return (np.interp(z, self.wall_z, self.a_w), np.interp(z, self.wall_z, self.ba_w),
                np.interp(z, self.wall_z, self.bp_w))

    def front_y(self, z):
        """Canonical y of the inner anterior wall at canonical z."""
        _, ba, _ = self.wall_at(z * self.sub.S[2, 2])
        return -(ba / self.sub.S[1, 1]) + self.muscle_wall * 0.9

    def ys(self, z):
        """Canonical spine y at canonical z."""
        return np.interp(z, _SPINE_Z, self.spine_y)

    def xs(self, z):
        return self.scol * np.sin(np.pi * (np.asarray(z) - 50) / 450)

    def zv(self, name, frac=0.0):
        """Canonical z at a vertebra (frac=+0.5 top, -0.5 bottom)."""
        c, _, hh, _, _ = self.vert[name]
        return c[2] + frac * hh

    def aorta_y(self, z):
        k = np.clip(np.interp(z, self.centres_z[::-1], np.arange(17, -1, -1)), 0, 17)
        return self.ys(z) - np.interp(k, np.arange(18), self.body_ay) - 13 + self.ao_dy

    def aorta_axis(self, z):
        """Abdominal aorta centre at canonical z."""
        hiatus, l4 = self.hiatus, self.l4
        return np.array([8 + self.ao_dx + 2 * np.clip((hiatus[2] - 25 - z) / (hiatus[2] - 40 - l4), 0, 1),
                         self.aorta_y(z), z])

    def branch(self, origin_on_axis, r_parent, path, r):
        """Branch leaving the parent at its wall along the first path direction; returns origin."""
        d = _unit(np.asarray(path[0], float) - origin_on_axis)
        origin = origin_on_axis + d * r_parent
        self.artery_paints.append(self.sub.tube(np.vstack([origin_on_axis, *path]), r, smooth=len(path) > 2))
        return self.P(origin)

    def shelled(self, outer, inner, cortex, interior):
        """A bone: cortical shell ``outer`` then textured cancellous ``inner``."""
        self.an.paints.append((outer, cortex))
        self.an.paints.append((inner, textured(interior, TEXTURE_BONE)))


def _tissue_values(u, phase):
    """Tissue values (HU) of a subject in ``phase`` (see the calibration table of
    :mod:`lm_zoo.phantoms.torso_ct`). Draws are made for all phases in a fixed order, so the
    phase never changes the anatomy."""
    con = dict(  # (non-contrast, arterial, portal-venous) ranges
        artery=((35, 50), (220, 380), (140, 210)), vein=((35, 50), (90, 140), (140, 200)),
        pa=((35, 50), (180, 320), (120, 180)), myocardium=((40, 55), (90, 130), (90, 120)),
        liver=((42, 65), (65, 85), (95, 130)), spleen=((35, 55), (100, 140), (105, 135)),
        kidney_cortex=((20, 40), (160, 230), (140, 200)), kidney_medulla=((20, 40), (60, 100), (130, 190)),
        pancreas=((30, 50), (90, 120), (80, 110)), bowel=((20, 40), (50, 70), (60, 90)),
    )
    k_phase = {"none": 0, "arterial": 1, "portal": 2}[phase]
    hu = dict(
        fat=u(-120, -85), muscle=u(35, 60), visceral=u(-105, -70), cortical=u(700, 1200),
        cancellous=u(100, 260), disc=u(70, 100), csf=u(0, 15), cord=u(25, 40),
        lung=u(-890, -820), cartilage=u(90, 140), marrow=u(-40, 60), table=u(100, 250),
        fluid=u(0, 15), stool=u(-80, 20), soft=u(35, 50), lv_blood=None,
        **{k: [u(*r) for r in v][k_phase] for k, v in con.items()},
    )
    hu["lv_blood"] = hu["artery"]
    return hu


def _draw_outline(draft):
    """Muscle-wall outline with subcutaneous fat, and the background paints (body fat, muscle wall,
    visceral fat; the table is added in scanner space)."""
    an, hu, sub, u = draft.an, draft.hu, draft.sub, draft.u
    wall_z = np.asarray(_WALL_Z, float) * sub.S[2, 2]
    a_w = np.asarray(_WALL_A, float) * sub.S[0, 0]
    ba_w = np.asarray(_WALL_BANT, float) * sub.S[1, 1] * np.interp(_WALL_Z, [-40, 80, 230], [1, u(1.0, 1.2), 1])
    bp_w = np.asarray(_WALL_BPOST, float) * sub.S[1, 1]
    yc = np.zeros_like(wall_z)
    fat = u(6, 40)
    fat_ant, fat_post, fat_lat = fat * u(0.9, 1.5), fat * u(0.4, 0.8), fat * u(0.8, 1.2)
    body = Section(wall_z, a_w + fat_lat, ba_w + fat_ant, bp_w + fat_post, yc)
    muscle_wall = u(10, 16)
    wall = Section(wall_z, a_w, ba_w, bp_w, yc)
    cavity = Section(wall_z, a_w, ba_w, bp_w, yc, offset=muscle_wall)
    an.table_hu = hu["table"]
    an.paints.append((body, hu["fat"]))
    an.paints.append((wall, textured(hu["muscle"], TEXTURE_ORGAN)))
    an.paints.append((cavity, hu["visceral"]))
    draft.a_w, draft.ba_w, draft.body, draft.bp_w = a_w, ba_w, body, bp_w
    draft.cavity, draft.muscle_wall, draft.wall_z = cavity, muscle_wall, wall_z


def _draw_spine_levels(draft):
    """Vertebral levels C7-S1 (heights, discs, curvature), their centres and the vertebra
    landmarks."""
    P, lm, rng, u, xs, ys = draft.P, draft.lm, draft.rng, draft.u, draft.xs, draft.ys
    h = _BODY_H * u(0.95, 1.05) * rng.uniform(0.97, 1.03, 18)
    disc = _DISC_H * u(0.9, 1.1) * rng.uniform(0.9, 1.1, 18)
    kyph = u(-15, 15)
    lord = u(-12, 12)
    scol = u(-12, 12)
    body_ax = _BODY_AX * u(0.88, 1.12) * rng.uniform(0.95, 1.05, 18)
    body_ay = _BODY_AY * u(0.88, 1.12) * rng.uniform(0.95, 1.05, 18)
    ao_dx, ao_dy = u(-6, 6), u(-8, 2)  # aorta position relative to the spine
    spine_y = np.asarray(_SPINE_Y, float) + np.array([0, 0, lord, lord, lord * 0.5, kyph * 0.5, kyph, kyph * 0.7, 0, 0, 0])
    draft.spine_y, draft.scol = spine_y, scol  # ys() and xs() read them
    # centres from S1 top (z = 0) upwards: below L5 is disc[17]
    centres_z = np.zeros(18)
    top = 0.0
    for k in range(17, -1, -1):
        bottom = top + disc[k]
        centres_z[k] = bottom + h[k] / 2
        top = bottom + h[k]
    c7_top = top
    vert = {}
    for k, name in enumerate(VERTEBRAE):
        z = centres_z[k]
        c = np.array([xs(z), ys(z), z])
        tangent = np.array([xs(z + 1) - xs(z - 1), ys(z + 1) - ys(z - 1), 2.0])
        vert[name] = (c, _frame(tangent), h[k], body_ax[k], body_ay[k])
        lm[f"vertebra_{name}"] = P(c)
    draft.ao_dx, draft.ao_dy, draft.body_ay, draft.c7_top = ao_dx, ao_dy, body_ay, c7_top
    draft.centres_z, draft.disc, draft.vert = centres_z, disc, vert


def _draw_lungs(draft):
    """Diaphragm domes and lungs (with lobes) in the thoracic cavity."""
    P, an, c7_top, cavity, hu = draft.P, draft.an, draft.c7_top, draft.cavity, draft.hu
    label, lm, muscle_wall, sub = draft.label, draft.lm, draft.muscle_wall, draft.sub
    u, wall_at, zv = draft.u, draft.wall_at, draft.zv
    z_rd = zv("t10", 0.5) + u(-20, 15)  # right dome (liver dome) height, canonical
    z_ld = z_rd - u(5, 25)
    dome_r = sub.ell((-55, 15, z_rd - 115), (115, 125, 115))
    dome_l = sub.ell((55, 15, z_ld - 115), (115, 125, 115))
    dome_r_in = sub.ell((-55, 15, z_rd - 115), (111, 121, 111))
    dome_l_in = sub.ell((55, 15, z_ld - 115), (111, 121, 111))
    an.paints.append(([Intersect(dome_r, cavity), Intersect(dome_l, cavity)], hu["muscle"]))
    an.paints.append(([Intersect(dome_r_in, cavity), Intersect(dome_l_in, cavity)], hu["visceral"]))
    apex_z = c7_top + u(-12, 4)
    lung_cz = zv("t7")
    lungs = {}
    for side, sx in (("right", -1), ("left", 1)):
        a6, _, _ = wall_at(P(0, 0, lung_cz)[2])
        a6 = a6 / sub.S[0, 0] - muscle_wall
        semi = np.array([a6 / 2 + 4 - (8 if side == "left" else 0), 105.0 * u(0.9, 1.05), apex_z - lung_cz])
        c = np.array([sx * (a6 / 2 + 10), 8.0, lung_cz])
        ell = sub.ell(c, semi)
        lungs[side] = ell
        lm[f"lung_apex_{side}"] = ell.extreme([0, 0, 1])
        an.paints.append((Difference(Intersect(ell, cavity), dome_r, dome_l), hu["lung"]))
        label(f"lung_upper_lobe_{side}", Difference(Intersect(ell, cavity, sub.half([0, 0, lung_cz], [0, 0, 1])), dome_r, dome_l))
        label(f"lung_lower_lobe_{side}", Difference(Intersect(ell, cavity, sub.half([0, 0, lung_cz], [0, 0, -1])), dome_r, dome_l))
    draft.lungs, draft.z_rd = lungs, z_rd


def _draw_heart(draft):
    """Heart: pericardial fat, myocardium, ventricles and atria."""
    an, hu, label, lm, sub = draft.an, draft.hu, draft.label, draft.lm, draft.sub
    u, zv = draft.u, draft.zv
    heart_c = np.array([18 + u(-8, 8), -32 + u(-6, 6), zv("t8") + u(-10, 10)])
    hs = u(0.88, 1.12)
    long_ax = _unit([0.62 + u(-0.1, 0.1), -0.45, -0.62 + u(-0.1, 0.1)])
    h_rot = _frame(long_ax)
    heart = sub.ell(heart_c, np.array([48, 44, 66]) * hs, h_rot)
    lm["heart_apex"] = heart.point([0, 0, 0.9])
    an.paints.append((sub.ell(heart_c, np.array([53, 49, 71]) * hs, h_rot), hu["fat"]))
    an.paints.append((heart, textured(hu["myocardium"], TEXTURE_ORGAN)))
    an.paints.append((sub.ell(heart_c + long_ax * 12 + [10, 8, 0], np.array([20, 20, 40]) * hs, h_rot), hu["lv_blood"]))
    an.paints.append((sub.ell(heart_c + [-16, -18, 0], np.array([16, 16, 38]) * hs, h_rot), hu["vein"]))
    la_c = heart_c + [0, 36, 26]
    an.paints.append((sub.ell(la_c, np.array([26, 17, 17]) * hs), hu["artery"]))
    ra_c = heart_c + [-42, 4, 14]
    an.paints.append((sub.ell(ra_c, np.array([22, 22, 28]) * hs), hu["vein"]))
    label("heart", heart, sub.ell(la_c, np.array([26, 17, 17]) * hs), sub.ell(ra_c, np.array([22, 22, 28]) * hs))
    draft.heart_c, draft.ra_c = heart_c, ra_c


def _draw_aorta_and_arch(draft):
    """Aortic centreline from root to bifurcation, and the arch branches."""
    P, ao_dx, ao_dy, aorta_y = draft.P, draft.ao_dx, draft.ao_dy, draft.aorta_y
    branch, c7_top, heart_c, label = draft.branch, draft.c7_top, draft.heart_c, draft.label
    lm, sub, u, ys, zv = draft.lm, draft.sub, draft.u, draft.ys, draft.zv
    root = heart_c + [-8, 8, 34]
    arch_top = np.array([14 + u(-4, 4), -14 + u(-4, 4), zv("t3") + u(-8, 8)])
    desc = [np.array([26 - 8 * t + ao_dx, ys(z) - 6 - 16 * t + ao_dy, z]) for t, z in
            zip(np.linspace(0, 1, 6), np.linspace(arch_top[2] - 28, zv("t12", 0.5) + 8, 6))]
    hiatus = np.array([8 + ao_dx, aorta_y(zv("t12")), zv("t12")])
    l4 = zv("l4") + u(-8, 8)
    abd = [np.array([8 + 2 * t + ao_dx, aorta_y(z), z]) for t, z in zip(np.linspace(0, 1, 5), np.linspace(hiatus[2] - 25, l4 + 15, 5))]
    bif = np.array([6 + ao_dx, aorta_y(l4) + 2, l4])
    aorta_pts = np.array([root, root + [2, -22, 22], [8, -38, arch_top[2] - 22], arch_top,
                          [28, 12, arch_top[2] - 8], *desc, hiatus, *abd, bif])
    ar = u(0.85, 1.15)
    aorta_r = np.r_[14, 15, 14, 13, 12.5, np.linspace(12, 11, 6), 10.5, np.linspace(10, 9, 5), 8.5] * ar
    lm["aortic_root"] = P(root)
    lm["aortic_arch_top"] = P(arch_top)
    lm["aortic_hiatus"] = P(hiatus)
    lm["aortic_bifurcation"] = P(bif)
    artery_paints = [sub.tube(aorta_pts, aorta_r, smooth=True)]
    draft.artery_paints = artery_paints  # branch() appends to it
    label("annulus_proper", sub.cyl(root, [aorta_r[0], aorta_r[0], 2.0], _frame(aorta_pts[1] - root)))

    top_z = c7_top + 60
    lm["brachiocephalic_trunk_origin"] = branch(
        arch_top + [-14, -8, 0], 13 * ar, [arch_top + [-22, -12, 18], [-30, -22, arch_top[2] + 50], [-34, -15, top_z]], 6.5)
    label("brachiocephalic_trunk", artery_paints[-1])
    lm["left_common_carotid_origin"] = branch(
        arch_top + [2, -2, 0], 13 * ar, [arch_top + [4, -4, 20], [24, -10, top_z]], 4.5)
    label("common_carotid_artery_left", artery_paints[-1])
    lm["left_subclavian_artery_origin"] = branch(
        arch_top + [13, 20, -4], 13 * ar, [arch_top + [18, 24, 16], [48, 12, arch_top[2] + 50], [95, 15, arch_top[2] + 65]], 5.5)
    label("subclavian_artery_left", artery_paints[-1])
    draft.ar, draft.artery_paints, draft.bif, draft.hiatus = ar, artery_paints, bif, hiatus
    draft.l4, draft.top_z = l4, top_z


def _draw_pulmonary_trunk_and_airways(draft):
    """Pulmonary trunk and arteries, trachea and bronchi (walls; the lumens are painted last)."""
    P, an, heart_c, hu, label = draft.P, draft.an, draft.heart_c, draft.hu, draft.label
    lm, sub, top_z, u, ys = draft.lm, draft.sub, draft.top_z, draft.u, draft.ys
    zv = draft.zv
    # pulmonary trunk and arteries
    pt_bif = np.array([12, -10, zv("t5") + u(-6, 6)])
    lm["pulmonary_trunk_bifurcation"] = P(pt_bif)
    label("pul_bifurcation", sub.ell(pt_bif, [8, 8, 8]))
    pa_paints = [sub.tube([heart_c + [0, -38, 28], [16, -32, pt_bif[2] - 15], pt_bif], 13, smooth=True),
                 sub.tube([pt_bif, [35, 0, pt_bif[2] + 4], [62, 18, pt_bif[2] - 6]], 10, smooth=True),
                 sub.tube([pt_bif, [-15, -2, pt_bif[2] - 4], [-60, 10, pt_bif[2] - 12]], 10, smooth=True)]
    hila = {"left": np.array([62, 18, pt_bif[2] - 6]), "right": np.array([-60, 10, pt_bif[2] - 12])}

    carina = np.array([u(-3, 3), 8 + u(-5, 5), zv("t4", -0.5) + u(-8, 8)])
    lm["carina"] = P(carina)
    trachea = [np.array([0, ys(z) - 38, z]) for z in np.linspace(top_z, carina[2] + 40, 5)] + [carina]
    rb = [carina, carina + [-20, 6, -18], carina + [-32, 10, -32], carina + [-42, 16, -75]]
    lb = [carina, carina + [24, 8, -20], carina + [44, 14, -40], carina + [56, 22, -80]]
    airways = [(trachea, 9.5), (rb, 7.0), (lb, 6.5),
               ([rb[1], rb[1] + [-34, 0, 14]], 4.5), ([lb[2], lb[2] + [22, -14, 18]], 4.5),
               ([rb[3], rb[3] + [-12, -25, -20]], 3.5), ([lb[3], lb[3] + [6, -28, -15]], 3.5)]
    for pts, r in airways:
        an.paints.append((sub.tube(pts, r + 2.2, smooth=len(pts) > 3), hu["soft"]))
    airway_lumen = [sub.tube(pts, r, smooth=len(pts) > 3) for pts, r in airways]
    label("trachea", [Intersect(c_, sub.half(carina, [0, 0, 1])) for c_ in airway_lumen[0]])
    draft.airway_lumen, draft.carina, draft.hila = airway_lumen, carina, hila
    draft.pa_paints = pa_paints


def _draw_lung_vessels(draft):
    """Pulmonary artery and vein trees clipped to the lungs, then the central pulmonary arteries."""
    an, art, hila, hu, lungs = draft.an, draft.art, draft.hila, draft.hu, draft.lungs
    pa_paints, rng, sub, u = draft.pa_paints, draft.rng, draft.sub, draft.u
    for side, sx in (("right", -1), ("left", 1)):
        lung_shape = lungs[side]
        for tree, value in ((0, hu["pa"]), (1, hu["vein"] if art else hu["pa"])):
            start = hila[side] + ([0, 8, -22] if tree else [0, 0, 0])
            segs = []
            stack = [(start, _unit([sx * 0.7, rng.uniform(-0.4, 0.4), d]), 0) for d in (0.8, -0.1, -0.9)]
            while stack:
                p0, d, g = stack.pop()
                length = (45, 35, 28)[g] * u(0.8, 1.2)
                p1 = p0 + d * length
                segs.append(Intersect(Capsule(*(sub.p(p) for p in (p0, p1)), *(np.array([5.5, 3.6, 2.3, 1.6])[g:g + 2] * sub.r)), lung_shape))
                if g < 2:
                    for _ in range(2):
                        nd = _unit(d + rng.normal(0, 0.55, 3))
                        stack.append((p1, nd, g + 1))
            an.paints.append((segs, value))

    an.paints.extend((p, hu["pa"]) for p in pa_paints)


def _draw_bowel(draft):
    """Bowel loops with gas, colon, rectum and bladder."""
    an, cavity, hu, rng, sub = draft.an, draft.cavity, draft.hu, draft.rng, draft.sub
    u = draft.u
    n_loops = int(rng.integers(25, 45))
    for _ in range(n_loops):
        c = np.array([u(-100, 100), u(-85, 0), u(-60, 170)])
        semi = rng.uniform(12, 26, 3)
        gas = rng.random() < 0.3
        shape = Intersect(sub.ell(c, semi, rotation(*rng.uniform(-60, 60, 3))), cavity)
        an.paints.append((shape, hu["bowel"]))
        if gas:
            an.paints.append((Intersect(sub.ell(c, semi * 0.55), cavity), -1000.0))
    colon = [[-95, 10, -20], [-100, 0, 80], [-90, -40, 150], [-40, -75, 165], [40, -75, 170],
             [95, -30, 175], [105, 10, 100], [100, 0, 10], [60, -20, -45], [10, 15, -60]]
    colon = np.asarray(colon, float) + rng.normal(0, 6, (10, 3))
    an.paints.append((sub.tube(colon, 20, smooth=True), hu["bowel"]))
    for i in range(len(colon) - 1):
        an.paints.append((sub.tube(colon[i:i + 2], 13), -1000.0 if rng.random() < 0.6 else hu["stool"]))
    # rectum and bladder
    an.paints.append((sub.tube([[0, 38, -130], [0, 30, -70], [8, 20, -40]], 16, smooth=True), hu["bowel"]))
    an.paints.append((sub.ell([0, -45, -72], np.array([45, 35, 35]) * u(0.6, 1.1)), hu["fluid"]))


def _draw_clutter(draft):
    """Lymph nodes, fat lobules and small vessels in the fat."""
    P, an, body, cavity, hu = draft.P, draft.an, draft.body, draft.cavity, draft.hu
    rng, u = draft.rng, draft.u
    body_lo, body_hi = body.bbox()
    for _ in range(int(rng.integers(100, 180))):
        c = rng.uniform(body_lo, body_hi)
        value = (u(25, 60), u(-60, -20), hu["vein"], hu["artery"])[int(rng.integers(0, 4))]
        an.paints.append((Intersect(Ellipsoid(c, rng.uniform(2.0, 7.0, 3), rotation(*rng.uniform(-90, 90, 3))), body), value))
    for _ in range(int(rng.integers(30, 60))):
        p0 = np.array([u(-110, 110), u(-90, 20), u(-60, 200)])
        p1 = p0 + rng.normal(0, 25, 3)
        an.paints.append((Intersect(Capsule(P(p0), P(p1), u(1.2, 3.0), u(1.0, 2.5)), cavity), (hu["vein"], hu["artery"])[int(rng.integers(0, 2))]))


def _draw_back_muscles(draft):
    """Paraspinal muscles and psoas."""
    an, c7_top, hu, sub, ys = draft.an, draft.c7_top, draft.hu, draft.sub, draft.ys
    for sx in (-1, 1):
        zz = np.linspace(-40, c7_top + 20, 9)
        an.paints.append((sub.tube([[sx * 36, ys(z) + 50, z] for z in zz], np.interp(zz, [-40, 150, 330, 500], [22, 30, 22, 16])), textured(hu["muscle"], TEXTURE_ORGAN)))
        psoas = [[sx * (22 + 0.14 * (200 - z)), ys(z) - 2 - 0.1 * (200 - z), z] for z in np.linspace(200, 0, 5)]
        psoas += [[sx * 62, -25, -60], [sx * 75, -55, -110]]
        an.paints.append((sub.tube(psoas, [7, 12, 17, 21, 23, 22, 20], smooth=True), textured(hu["muscle"], TEXTURE_ORGAN)))


def _draw_liver(draft):
    """Liver lobes, hepatic veins and gallbladder."""
    an, art, cavity, hu, label = draft.an, draft.art, draft.cavity, draft.hu, draft.label
    lm, rng, sub, u, z_rd = draft.lm, draft.rng, draft.sub, draft.u, draft.z_rd
    organs_start = len(an.paints)  # perirenal fat goes here, under the organs that touch it
    ls = u(0.88, 1.15)
    liver_semi = np.array([85, 90, 85]) * ls
    liver_c = np.array([-60 + u(-8, 8), 2, z_rd - 5 - liver_semi[2]])
    liver_rot = rotation(u(-8, 8), u(-12, 0), u(-10, 10))
    liver_r = sub.ell(liver_c, liver_semi, liver_rot)
    liver_l = sub.ell(liver_c + [85, -45, 40] * np.array([ls, 1, 1]), np.array([60, 35, 38]) * ls, rotation(0, u(-10, 10), 0))
    an.paints.append(([Intersect(liver_r, cavity), Intersect(liver_l, cavity)], textured(hu["liver"], TEXTURE_ORGAN)))
    label("liver", Intersect(liver_r, cavity), Intersect(liver_l, cavity))
    lm["liver_dome"] = liver_r.extreme([0, 0, 1])
    tip = liver_r.extreme([-0.3, -0.35, -1])
    lm["liver_inferior_tip"] = liver_r.centre + 0.9 * (tip - liver_r.centre)
    for i in range(5):  # hepatic/portal veins inside the liver
        p0 = liver_c + [20, 10, 0]
        p1 = liver_c + rng.uniform(-55, 55, 3) * [1, 0.8, 0.8]
        an.paints.append(([Intersect(c_, liver_r) for c_ in sub.tube([p0, p1], [6, 3])], hu["vein"] if art else hu["soft"] - 10))
    an.paints.append((sub.ell(liver_c + [20, -60, -55], np.array([14, 14, 32]) * u(0.7, 1.2), rotation(-30, 10, 0)), hu["fluid"]))
    draft.liver_c, draft.organs_start = liver_c, organs_start


def _draw_stomach(draft):
    """Stomach with fluid and gas, and the oesophagus."""
    an, carina, hu, label, lm = draft.an, draft.carina, draft.hu, draft.label, draft.lm
    sub, top_z, u, ys, zv = draft.sub, draft.top_z, draft.u, draft.ys, draft.zv
    st_c = np.array([62 + u(-8, 8), -12, zv("t12") + u(-10, 15)])
    st_rot = rotation(25, -25, u(-15, 15))
    st_semi = np.array([42, 45, 68]) * u(0.8, 1.15)
    stomach = sub.ell(st_c, st_semi, st_rot)
    an.paints.append((stomach, hu["soft"]))
    st_in = sub.ell(st_c, st_semi - 4, st_rot)
    an.paints.append((st_in, hu["fluid"] + u(0, 20)))
    gas_level = st_c[2] + st_semi[2] * u(0.2, 0.6)
    an.paints.append((Intersect(st_in, sub.half([0, 0, gas_level], [0, 0, 1])), -1000.0))
    gej = stomach.extreme([-0.8, 0.3, 0.5])
    lm["gastroesophageal_junction"] = gej
    gej_c = np.linalg.solve(sub.S, gej)
    esophagus = [[4, ys(z) - 18, z] for z in (top_z, carina[2] + 30, carina[2] - 40)]
    esophagus += [[14, ys(zv("t11")) - 30, zv("t11")], gej_c]
    an.paints.append((sub.tube(esophagus, 8, smooth=True), hu["soft"]))
    label("esophagus", [Difference(c_, stomach) for c_ in sub.tube(esophagus, 8, smooth=True)])
    label("stomach", stomach)


def _draw_spleen_and_pancreas(draft):
    """Spleen (its paint is kept for after the kidneys) and pancreas."""
    an, cavity, hu, label, lm = draft.an, draft.cavity, draft.hu, draft.label, draft.lm
    sub, u, zv = draft.sub, draft.u, draft.zv
    sp_s = u(0.8, 1.3)
    sp_c = np.array([86 + u(-5, 5), 20 + u(-6, 6), zv("t11") + u(-5, 10)])
    spleen = sub.ell(sp_c, np.array([20, 45, 52]) * sp_s, rotation(-u(10, 25), 0, u(-45, -25)))
    spleen_paint = (Intersect(spleen, cavity), textured(hu["spleen"], TEXTURE_ORGAN))  # painted after the kidneys, it lies in front
    label("spleen", Intersect(spleen, cavity))
    lm["spleen_superior_pole"] = spleen.point([0, 0, 0.88])
    lm["spleen_inferior_tip"] = spleen.point([0, 0, -0.88])
    an.paints.append((sub.tube([[70, 25, sp_c[2] - 25], [20, -28, zv("l1") + 5], [-30, -25, zv("l2") + 5]],
                               [10, 13, 16], smooth=True), textured(hu["pancreas"], TEXTURE_ORGAN)))
    draft.sp_c, draft.spleen_paint = sp_c, spleen_paint


def _draw_kidneys(draft):
    """Kidneys with perirenal fat, cortex, medulla, sinus fat and pelvis."""
    an, hu, label, lm = draft.an, draft.hu, draft.label, draft.lm
    organs_start, sub, u, ys = draft.organs_start, draft.sub, draft.u, draft.ys
    zv = draft.zv
    kidneys = {}
    for side, sx in (("right", -1), ("left", 1)):
        ks = u(0.85, 1.15)
        kz = zv("l1", -0.5) + (-12 if side == "right" else 5) + u(-12, 12)
        kc = np.array([sx * (72 + u(-8, 8)), ys(kz) + 14 + u(-5, 5), kz])
        # local x points medially; poles tilt medially and posteriorly at the top
        krot = rotation(-u(5, 15), -sx * u(8, 18), sx * u(20, 35)) @ np.diag([-sx, 1, 1])
        semi = np.array([26, 24, 55]) * ks
        kidney = sub.ell(kc, semi, krot)
        kidneys[side] = kidney
        an.paints.insert(organs_start, (sub.ell(kc, semi + 6, krot), hu["fat"]))
        an.paints.append((kidney, textured(hu["kidney_cortex"], TEXTURE_ORGAN)))
        an.paints.append((sub.ell(kc, semi * 0.72, krot), textured(hu["kidney_medulla"], TEXTURE_ORGAN)))
        hil = kidney.point([0.62, -0.35, 0.0])
        an.paints.append((sub.ell(kc + krot @ ([0.55, -0.3, 0] * semi), np.array([12, 9, 24]) * ks, krot), hu["fat"]))
        label(f"kidney_{side}", Difference(kidney, an.paints[-1][0]))
        an.paints.append((sub.ell(kc + krot @ ([0.6, -0.3, 0] * semi), np.array([7, 6, 12]) * ks, krot), hu["fluid"]))
        lm[f"kidney_{side}_upper_pole"] = kidney.point([0, 0, 0.92])
        lm[f"kidney_{side}_lower_pole"] = kidney.point([0, 0, -0.92])
        lm[f"kidney_{side}_hilum"] = hil


def _draw_visceral_arteries(draft):
    """Celiac trunk, SMA and renal arteries from the abdominal aorta."""
    aorta_axis, ar, artery_paints = draft.aorta_axis, draft.ar, draft.artery_paints
    branch, label, liver_c, lm = draft.branch, draft.label, draft.liver_c, draft.lm
    sp_c, sub, u, zv = draft.sp_c, draft.sub, draft.u, draft.zv
    ra = 10 * ar
    cel_z = zv("t12", -0.5) - u(0, 6)
    cel = aorta_axis(cel_z)
    lm["celiac_trunk_origin"] = branch(cel, ra, [cel + [0, -18, 4], cel + [0, -24, 6]], 3.8)
    label("celiac_trunk", artery_paints[-1])
    artery_paints.append(sub.tube([cel + [0, -24, 6], [-45, -30, cel_z + 10], liver_c + [10, -20, -20]], 3, smooth=True))
    artery_paints.append(sub.tube([cel + [0, -24, 6], [45, -10, cel_z + 8], sp_c + [-15, -15, 0]], 3, smooth=True))
    sma_z = cel_z - u(8, 18)
    sma = aorta_axis(sma_z)
    lm["sma_origin"] = branch(sma, ra, [sma + [0, -14, -3], sma + [2, -30, -30], sma + [5, -40, -110]], 4.0)
    label("superior_mesenteric_artery", artery_paints[-1])
    for side, sx in (("right", -1), ("left", 1)):
        hil_c = np.linalg.solve(sub.S, lm[f"kidney_{side}_hilum"])
        rz = hil_c[2] + 8
        o = aorta_axis(rz)
        lm[f"{side}_renal_artery_origin"] = branch(o, ra, [o + [sx * 14, 2, 0], hil_c], 3.0)
        label("renal_arteries", artery_paints[-1])


def _draw_veins_and_iliacs(draft):
    """IVC and renal veins, iliac arteries and veins; then every vein and artery tube is painted."""
    P, an, aorta_y, artery_paints = draft.P, draft.an, draft.aorta_y, draft.artery_paints
    bif, hu, label, lm, ra_c = draft.bif, draft.hu, draft.label, draft.lm, draft.ra_c
    sub, u, ys, zv = draft.sub, draft.u, draft.ys, draft.zv
    ivc = [np.array([-16, aorta_y(z) + 2, z]) for z in np.linspace(zv("l5"), zv("l1"), 4)]
    ivc += [np.array([-28, ys(zv("t11")) - 22, zv("t11")]), ra_c + [0, 8, -16]]
    vein_paints = [sub.tube(ivc, 11, smooth=True)]
    for side, sx in (("right", -1), ("left", 1)):
        hil_c = np.linalg.solve(sub.S, lm[f"kidney_{side}_hilum"])
        cross = [hil_c, [sx * 30, hil_c[1] - 20, hil_c[2] + 5], [-16, aorta_y(hil_c[2]) - 6, hil_c[2] + 6]]
        if side == "left":
            cross.insert(2, [8, aorta_y(hil_c[2]) - 14, hil_c[2] + 6])
        vein_paints.append(sub.tube(cross, 5, smooth=True))
    label("aorta", artery_paints[0])
    an.structures["esophagus"] = an.structures.pop("esophagus")  # wins where the drawn tubes overlap the aorta
    # iliac arteries and veins (bifurcation of common iliacs in front of the SI joints)
    for side, sx in (("right", -1), ("left", 1)):
        ib = np.array([sx * (42 + u(-5, 5)), ys(0) - 30, u(-5, 20)])
        lm[f"{side}_iliac_bifurcation"] = P(ib)
        artery_paints.append(sub.tube([bif, bif + [sx * 12, 0, -18], ib], [7, 6.5, 6], smooth=True))
        artery_paints.append(sub.tube([ib, [sx * 70, -35, -50], [sx * 84, -50, -95], [sx * 88, -45, -200]], 5, smooth=True))
        label(f"iliac_artery_{side_name(sx)}", artery_paints[-2], artery_paints[-1])
        artery_paints.append(sub.tube([ib, [sx * 50, ib[1] + 25, -35]], 4))
        conf = np.array([-14, aorta_y(zv("l5")) + 4, zv("l5")])
        vein_paints.append(sub.tube([conf, [sx * 45, ys(0) - 20, ib[2] - 5], [sx * 76, -25, -55], [sx * 90, -35, -95], [sx * 95, -30, -200]], 7, smooth=True))
    for t in vein_paints:
        an.paints.append((t, hu["vein"]))
    for t in artery_paints:
        an.paints.append((t, hu["artery"]))


def _draw_vertebrae(draft):
    """Discs, vertebral bodies, arches and processes (cortical shell around cancellous bone)."""
    an, disc, hu, label = draft.an, draft.disc, draft.hu, draft.label
    shelled, sub, vert = draft.shelled, draft.sub, draft.vert
    # Bone is a thin cortical shell (real vertebral cortex 0.4-1.5 mm, 700-1200 HU before partial
    # volume) around trabecular (textured) cancellous bone; posterior elements and thin plates get
    # a lower shell value (partial volume of thinner cortex).
    bone_c, bone_s = hu["cortical"], hu["cancellous"]
    # The shell is painted 1.5 mm thick at 0.7 x the cortical value (about the same bone mass as
    # ~1 mm at full value): a 1 mm shell point-sampled on ~1.5 mm voxels aliases into dashes.
    post_c = bone_c * 0.5
    shell = 1.5
    bone_c = bone_c * 0.7

    canal_pts = []
    for k, name in enumerate(VERTEBRAE):
        c, rot, hh, ax, ay = vert[name]
        if k < 17:
            cn, rotn, hn, axn, ayn = vert[VERTEBRAE[k + 1]]
            mid = (c + cn) / 2
            an.paints.append((sub.cyl(mid, [0.95 * (ax + axn) / 2, 0.95 * (ay + ayn) / 2, disc[k] / 2 + 1.5], _frame(c - cn)), hu["disc"]))
            label("intervertebral_discs", an.paints[-1][0])
    for k, name in enumerate(VERTEBRAE):
        c, rot, hh, ax, ay = vert[name]
        lumbar, cervical = name.startswith("l"), name == "c7"
        r_can = 9.0 if lumbar else (8.0 if cervical else 7.0)
        cc = c + rot @ [0, ay + r_can + 3, 0]
        canal_pts.append(cc)
        # body: elliptic cylinder with the posterior (canal-side) concavity, shell + endplates
        notch_c, notch = c + rot @ [0, ay * 1.3, 0], np.array([ax * 0.45, ay * 0.5, hh])
        shelled(Difference(sub.cyl(c, [ax, ay, hh / 2], rot), sub.cyl(notch_c, notch, rot)),
                Difference(sub.cyl(c, [ax - shell, ay - shell, hh / 2 - shell], rot), sub.cyl(notch_c, notch + shell, rot)),
                bone_c, bone_s)
        label("vertebrae_body", an.paints[-2][0])
        label(f"vertebrae_{name.upper()}", an.paints[-2][0])
        # pedicles + laminae (a ring around the canal), spinous and transverse processes
        shelled(sub.cyl(cc, [r_can + 5, r_can + 5, hh * 0.35], rot), sub.cyl(cc, [r_can + 3.5, r_can + 3.5, hh * 0.35 - 1.5], rot),
                post_c, bone_s + 60)
        label(f"vertebrae_{name.upper()}", an.paints[-2][0])
        sp_len, sp_drop, sp_r = (45, 12, 5) if cervical else ((30, 4, 6) if lumbar else (36, 24, 4.5))
        sp = [cc + rot @ [0, r_can + 3, 0], cc + rot @ [0, r_can + 3 + sp_len, -sp_drop]]
        shelled(sub.tube(sp, [sp_r + 1, sp_r]), sub.tube(sp, [sp_r - 0.5, sp_r - 1.5]), post_c, bone_s + 60)
        label(f"vertebrae_{name.upper()}", an.paints[-2][0])
        tp_len, tp_back = (20, 4) if cervical else ((38, 0) if lumbar else (24, 14))
        for sx in (-1, 1):
            tp = [cc + rot @ [sx * (r_can + 2), -2, 0], cc + rot @ [sx * (r_can + 2 + tp_len), tp_back, 0]]
            shelled(sub.tube(tp, [5, 4]), sub.tube(tp, [3.5, 2.5]), post_c, bone_s + 60)
            label(f"vertebrae_{name.upper()}", an.paints[-2][0])
    draft.bone_c, draft.bone_s, draft.canal_pts = bone_c, bone_s, canal_pts
    draft.post_c = post_c


def _draw_sacrum_and_canal(draft):
    """Sacrum, spinal canal and cord."""
    P, an, bone_c, bone_s = draft.P, draft.an, draft.bone_c, draft.bone_s
    canal_pts, hu, label, lm = draft.canal_pts, draft.hu, draft.label, draft.lm
    post_c, shelled, sub, ys = draft.post_c, draft.shelled, draft.sub, draft.ys
    zv = draft.zv
    # sacrum: S1 body like a vertebra tilted forward, then tapering segments
    s1_axis = _unit([0, -0.55, 1])
    s1_rot = _frame(s1_axis)
    s1_c = np.array([0, ys(0) + 8, -13])
    lm["sacral_promontory"] = P(s1_c + s1_rot @ [0, -15, 10])
    shelled(sub.cyl(s1_c, [26, 18, 13], s1_rot), sub.cyl(s1_c, [24.5, 16.5, 11.5], s1_rot), bone_c, bone_s)
    label("vertebrae_body", an.paints[-2][0])
    label("vertebrae_S1", an.paints[-2][0])
    # sacral alae (wings joining the ilia) and the curved, tapering sacrum-coccyx below S1
    for w, dz in ((52, -18), (44, -40)):
        cen = [0, ys(0) + 18 - 0.35 * dz, dz]
        shelled(sub.ell(cen, [w, 13, 16], rotation(-30, 0, 0)), sub.ell(cen, [w - 1.5, 11.5, 14.5], rotation(-30, 0, 0)),
                post_c, bone_s + 60)
        label("sacrum", an.paints[-2][0])
    sacral_curve = [[0, ys(0) + 18 - 0.35 * dz - 0.004 * dz ** 2, dz] for dz in (-20, -45, -68, -88, -108)]
    shelled(sub.tube(sacral_curve, [18, 15, 11, 8, 5], smooth=True), sub.tube(sacral_curve, [16.5, 13.5, 9.5, 6.5, 3.5], smooth=True),
            post_c, bone_s + 60)
    label("sacrum", an.paints[-2][0])
    canal_pts = [canal_pts[0] + [0, 0, 40]] + canal_pts + [s1_c + s1_rot @ [0, 30, 0], [0, ys(0) + 40, -60]]
    canal_pts = np.asarray(canal_pts)
    an.paints.append((sub.tube(canal_pts, np.r_[8, [9.0 if n.startswith("l") else (8 if n == "c7" else 7) for n in VERTEBRAE], 8, 5], smooth=True), hu["csf"]))
    label("spinal_cord", an.paints[-1][0])  # the whole canal, as TotalSegmentator's label reaches the sacrum
    cord = canal_pts[canal_pts[:, 2] > zv("l1")]
    an.paints.append((sub.tube(cord, 4.5, smooth=True), hu["cord"]))


def _draw_sternum(draft):
    """Manubrium, sternal body, xiphoid and the manubriosternal joint."""
    an, bone_s, front_y, hu = draft.an, draft.bone_s, draft.front_y, draft.hu
    label, lm, post_c, shelled = draft.label, draft.lm, draft.post_c, draft.shelled
    sub, u, zv = draft.sub, draft.u, draft.zv
    notch_z = zv("t2", -0.5) + u(-8, 8)
    man_c = np.array([0, front_y(notch_z - 25) + 2, notch_z - 26])
    manubrium = sub.ell(man_c, [26, 7, 26], rotation(-12, 0, 0))
    st_len = u(90, 110)
    body_c = np.array([0, front_y(notch_z - 52 - st_len / 2) + 2, notch_z - 52 - st_len / 2])
    st_body = sub.ell(body_c, [16, 7, st_len / 2 + 2], rotation(-15, 0, 0))
    xi_c = np.array([0, front_y(body_c[2] - st_len / 2 - 18) + 4, body_c[2] - st_len / 2 - 16])
    xiphoid = sub.ell(xi_c, [8, 4, 18], rotation(-20, 0, 0))
    lm["sternal_notch"] = manubrium.extreme([0, 0, 1])
    lm["xiphoid_tip"] = xiphoid.point([0, 0, -0.95])
    lm["sternal_angle"] = (manubrium.point([0, 0, -1]) + st_body.point([0, 0, 1])) / 2
    for e, semi, rot_ in ((manubrium, [26, 7, 26], rotation(-12, 0, 0)), (st_body, [16, 7, st_len / 2 + 2], rotation(-15, 0, 0))):
        shelled(e, Ellipsoid(e.centre, np.array(semi) - 1.5, sub.S @ rot_), post_c, bone_s + 40)
    an.paints.append((xiphoid, hu["cartilage"] + 100))
    label("sternum", manubrium, st_body, xiphoid)
    # manubriosternal joint over both bones
    an.paints.append((Ellipsoid(lm["sternal_angle"], [16, 7, 8], sub.S @ rotation(-14, 0, 0)), hu["cartilage"] + 150))
    draft.notch_z, draft.st_len = notch_z, st_len


def _draw_ribs(draft):
    """Ribs 1-12 and the costal cartilages."""
    P, an, bone_s, front_y, hu = draft.P, draft.an, draft.bone_s, draft.front_y, draft.hu
    label, lm, muscle_wall, notch_z = draft.label, draft.lm, draft.muscle_wall, draft.notch_z
    post_c, shelled, st_len, sub = draft.post_c, draft.shelled, draft.st_len, draft.sub
    u, vert, wall_at, ys = draft.u, draft.vert, draft.wall_at, draft.ys
    for k in range(1, 13):
        name = f"t{k}"
        c, rot, hh, ax, ay = vert[name]
        zk = c[2] + hh / 2
        drop = (25 + 5.5 * k if k <= 10 else 40) * u(0.9, 1.1)
        theta1 = np.deg2rad(150 if k <= 7 else (140 if k <= 10 else (110 if k == 11 else 95)))
        for sx in (-1, 1):
            pts = [[sx * (ax + 4), ys(zk) + 2, zk], [sx * (ax + 26), ys(zk) + 24, zk + 3]]
            for t in np.linspace(0, 1, 9):
                zt = zk + 4 - drop * t ** 1.3
                a, ba, bp = (v / s for v, s in zip(wall_at(zt * sub.S[2, 2]), (sub.S[0, 0], sub.S[1, 1], sub.S[1, 1])))
                a, ba, bp = a - muscle_wall / 2, ba - muscle_wall / 2, bp - muscle_wall / 2
                th = np.arcsin(min((ax + 42) / a, 0.99)) + t * (theta1 - np.arcsin(min((ax + 42) / a, 0.99)))
                y = np.cos(th) * (bp if np.cos(th) > 0 else ba)
                pts.append([sx * a * np.sin(th), y, zt])
            pts = np.asarray(pts)
            r = 6.5 if k == 1 else 4.8
            radii = np.r_[r, np.full(len(pts) - 2, r), 3.5]
            shelled(sub.tube(pts, radii, smooth=True), sub.tube(pts, radii - 1.5, smooth=True), post_c, bone_s + 40)
            label(f"rib_{side_name(sx)}_{k}", an.paints[-2][0])
            if k == 12:
                lm[f"rib12_tip_{side_name(sx)}"] = P(pts[-1])
            if k <= 7:
                st_z = notch_z - 15 if k == 1 else notch_z - 52 - (k - 2) * st_len / 5.5
                an.paints.append((sub.tube([pts[-1], [sx * 16, front_y(st_z) + 4, st_z]], 4.0), hu["cartilage"]))
                label("costal_cartilages", an.paints[-1][0])


def _draw_shoulder_girdle(draft):
    """Clavicles and scapulae."""
    an, body, bone_c, front_y = draft.an, draft.body, draft.bone_c, draft.front_y
    notch_z, post_c, sub, zv = draft.notch_z, draft.post_c, draft.sub, draft.zv
    clav_z = notch_z + 4
    for sx in (-1, 1):
        for seg in sub.tube([[sx * 20, front_y(clav_z) - 6, clav_z], [sx * 70, front_y(clav_z) - 4, clav_z + 10],
                             [sx * 140, 25, clav_z + 20]], 7, smooth=True):
            an.paints.append((Intersect(seg, body), post_c))
        an.paints.append((Intersect(sub.ell([sx * 92, 72, zv("t4")], [7, 50, 75], rotation(0, 0, -sx * 62)), body), bone_c * 0.6))


def _draw_pelvis(draft):
    """Iliac wings, femoral heads and necks, acetabula, rami and the pubic symphysis."""
    P, an, bone_c, bone_s, hu = draft.P, draft.an, draft.bone_c, draft.bone_s, draft.hu
    label, lm, post_c, shelled = draft.label, draft.lm, draft.post_c, draft.shelled
    sub, u = draft.sub, draft.u
    for side, sx in (("right", -1), ("left", 1)):
        wing_c = np.array([sx * 88, 10, 18])
        wing_rot = rotation(0, sx * 18, -sx * 58)
        wing_semi = np.array([60, 8, 50]) * u(0.9, 1.1)
        wing = sub.ell(wing_c, wing_semi, wing_rot)
        for name, direction in ((f"iliac_crest_top_{side}", [0, 0, 1]), (f"asis_{side}", [sx * 0.35, -1, 0.15])):
            lm[name] = wing.centre + 0.93 * (wing.extreme(direction) - wing.centre)
        shelled(wing, Ellipsoid(wing.centre, wing_semi - [1.5, 1.5, 1.5], sub.S @ wing_rot), post_c, bone_s)
        label(f"hip_{side}", wing)
        fh_r = u(22, 26)
        fh = np.array([sx * (88 + u(-5, 5)), -18 + u(-6, 6), -92 + u(-8, 8)])
        lm[f"femoral_head_{side}"] = P(fh)
        an.paints.append((sub.tube([wing_c + [0, -5, -20], fh + [0, 5, 20]], [22, 18]), textured(bone_s + 40, TEXTURE_BONE)))
        label(f"hip_{side}", an.paints[-1][0])
        for end, rr in (([sx * 14, -72, -95], 11), ([sx * 55, 25, -150], 13)):  # pubic and ischial rami
            ramus = [fh + [-sx * 5, 0, 0], end]
            shelled(sub.tube(ramus, rr), sub.tube(ramus, rr - 1.5), post_c, bone_s + 60)
            label(f"hip_{side}", an.paints[-2][0])
        # acetabulum (cancellous roof and medial wall, open laterally-inferiorly), joint space
        medial = sub.half(fh + [sx * 6, 0, 0], [-sx, 0, 0.6])
        shelled(Intersect(sub.ell(fh, [fh_r + 7] * 3), medial), Intersect(sub.ell(fh, [fh_r + 5.5] * 3), medial), post_c, bone_s + 80)
        label(f"hip_{side}", an.paints[-2][0])
        an.paints.append((Intersect(sub.ell(fh, [fh_r + 2.5] * 3), medial), hu["cartilage"] - 40))
        # femoral neck and trochanters (cortex + cancellous), shaft (thick cortex + fatty marrow)
        gt = fh + [sx * 40, 4, -22]
        neck = [fh + [sx * 12, 0, -5], gt, gt + [0, 0, -200]]
        shelled(sub.tube(neck, [13, 17, 15]), sub.tube(neck, [11.5, 15.5, 11]), bone_c * 0.8, bone_s + 40)
        label(f"femur_{side}", an.paints[-2][0])
        an.paints.append((sub.tube([gt + [0, 0, -70], gt + [0, 0, -200]], [9, 9]), hu["marrow"]))
        # head: thin cortex, trabecular interior
        shelled(sub.ell(fh, [fh_r] * 3), sub.ell(fh, [fh_r - 1.5] * 3), bone_c * 0.8, bone_s + 60)
        label(f"femur_{side}", an.paints[-2][0])
    sym_top = np.array([0, -76 + u(-6, 6), -88 + u(-6, 6)])
    lm["pubic_symphysis"] = P(sym_top)
    for sx in (-1, 1):
        shelled(sub.ell(sym_top + [sx * 11, 0, -18], [10, 9, 20]), sub.ell(sym_top + [sx * 11, 0, -18], [8.5, 7.5, 18.5]),
                post_c, bone_s + 60)
        label(f"hip_{side_name(sx)}", an.paints[-2][0])
    an.paints.append((sub.ell(sym_top + [0, 0, -18], [1.8, 8, 20]), hu["cartilage"]))


def _draw_airway_lumens(draft):
    """Airway lumens last, so no wall or vessel closes them."""
    airway_lumen, an = draft.airway_lumen, draft.an
    for t in airway_lumen:
        an.paints.append((t, -1000.0))


def _finish(draft):
    """Body extent, scan range and the landmark points."""
    P, an, body, c7_top, lm = draft.P, draft.an, draft.body, draft.c7_top, draft.lm
    u = draft.u
    lo, hi = body.bbox()
    an.extent = (lo, hi)
    top_lm = max(p[2] for p in lm.values())
    bot_lm = min(p[2] for p in lm.values())
    an.scan_z = (bot_lm - u(25, 60), max(top_lm, P(0, 0, c7_top)[2]) + u(25, 50))
    an.landmarks = {k: np.asarray(v, float) for k, v in lm.items()}


def side_name(sx):
    return "right" if sx < 0 else "left"
