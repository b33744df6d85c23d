"""Head-MRA phantom against the real TOF-MRA sample, measured with one instrument; and a montage of
aneurysms inserted into the real sample.

    python benchmarks/mra_calibration.py [--cases 6] [--out DIR]

Both the real sample (``$LM_ZOO_SHARED_DATA/mra/chris_MRA.nii.gz``, default ../shared/data) and
``--cases`` healthy phantom cases go through the detection pipeline's own vessel mask and candidate
points (:mod:`lm_zoo.vessels`), then:

- radius at the candidate points (:func:`lm_zoo.vessels.distance_inside`, reads digitised
  cylinders to -0.3..+0.2 mm) : percentiles;
- what the candidates are (:func:`lm_zoo.vessels.local_geometry`): shares of straight, curve,
  bifurcation, branch origin, widening, crossing, end; "hard" = curve + bifurcation + origin +
  widening + crossing (the look-alikes of an aneurysm);
- tortuosity proxy: bend (180 deg minus the angle between the two branches leaving a point,
  2-3 mm away) at 2-branch points: median and 90th percentile;
- profile across the wall: median ``normalize_mra`` value by signed depth (mm inside the mask
  boundary, negative outside), and the tissue level 2-4 mm outside the vessels (non-zero voxels);
- noise: neighbour-difference MAD in the vessel interior (>= 1.2 mm deep), relative to the scale
  (99.9th percentile of non-zero voxels), saturated voxels left out; share of vessel voxels at
  the maximum value (saturation / 8-bit clipping).

With ``--out DIR`` it also writes ``DIR/inserted_vs_normal.png``: 2.5D patches (axial, coronal,
sagittal, as the dataset makes them) of aneurysms inserted into the real sample by
:func:`lm_zoo.phantoms.insert_aneurysms`, the same points before insertion, and hard normal
candidates (bifurcations, origins, curves) of the same volume. The real sample is CC BY-NC 4.0:
the PNG is derived from it, so keep it out of the repository.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

DEPTHS_MM = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)


def measure(image, label: str) -> dict:
    import SimpleITK as sitk

    from lm_zoo import vessels
    from lm_zoo.intensity import normalize_mra
    from lm_zoo.phantoms import insertion

    mask = vessels.vessel_mask(image)
    points = vessels.candidate_points(image, mask, seed=0)
    depth = vessels.distance_inside(mask)
    geo = vessels.local_geometry(mask, points, depth)
    x = sitk.GetArrayFromImage(normalize_mra(image, clip_max=None))
    raw = sitk.GetArrayFromImage(image).astype(np.float64)
    sdepth = insertion.signed_depth(mask, depth)
    m = depth > 0
    near = (sdepth >= -2.5) & (sdepth <= 3.0)
    centres, med, counts = insertion.depth_profile(x, sdepth, near, lo=-2.5, hi=3.0, bin_mm=0.25)
    profile = {d: float(np.interp(d, centres, med)) for d in DEPTHS_MM}
    tissue_zone = (sdepth <= -2.0) & (sdepth >= -4.0) & (raw != 0)
    tissue = float(np.median(x[tissue_zone])) if tissue_zone.any() else float("nan")
    vmax = raw.max()
    saturated = float(np.mean(raw[m] >= vmax))
    scale = float(np.percentile(raw[raw != 0], 99.9))
    noise = insertion.noise_sigma(raw, depth > insertion.NOISE_DEPTH_MM, vmax if saturated > 0.01 else None) / scale
    kinds = {k: float(np.mean(geo["kind"] == k)) for k in vessels.POINT_KINDS}
    two = geo["n_branches"] == 2
    out = dict(label=label, n_points=len(points), vessel_fraction=float(m.mean()),
               radius=np.percentile(geo["radius_mm"], [10, 25, 50, 75, 90]), kinds=kinds,
               hard=float(np.isin(geo["kind"], vessels.HARD_KINDS).mean()),
               bend=np.percentile(geo["deviation_deg"][two], [50, 90]) if two.any() else np.full(2, np.nan),
               profile=profile, tissue=tissue, noise=noise, saturated=saturated,
               zero_fraction=float(np.mean(raw == 0)))
    return out


def _print(rows) -> None:
    print(f"{'':40s}" + "".join(f"{r['label']:>32s}" for r in rows))

    def line(name, fn):
        print(f"{name:40s}" + "".join(f"{fn(r):>32s}" for r in rows))

    line("candidates / vessel voxel share", lambda r: f"{r['n_points']} / {r['vessel_fraction']:.2%}")
    line("radius p10/25/50/75/90 (mm)", lambda r: "/".join(f"{v:.2f}" for v in r["radius"]))
    for k in r_kinds(rows):
        line(f"  share {k}", lambda r, k=k: f"{r['kinds'][k]:.3f}")
    line("hard share (curve,bif,orig,wid,cross)", lambda r: f"{r['hard']:.3f}")
    line("bend at 2-branch points p50/p90 deg", lambda r: "/".join(f"{v:.0f}" for v in r["bend"]))
    line("profile at depth -1/-.5/0/.5/1/1.5", lambda r: "/".join(f"{r['profile'][d]:.2f}" for d in DEPTHS_MM))
    line("tissue 2-4 mm outside (norm.)", lambda r: f"{r['tissue']:.2f}")
    line("noise sigma / p99.9", lambda r: f"{r['noise']:.3f}")
    line("vessel voxels at max value", lambda r: f"{r['saturated']:.3f}")
    line("zero voxels", lambda r: f"{r['zero_fraction']:.3f}")


def r_kinds(rows):
    from lm_zoo.vessels import POINT_KINDS

    return POINT_KINDS


def montage(image, out_dir: Path, seed: int = 3, n: int = 4) -> Path:
    from lm_zoo import vessels
    from lm_zoo.figures import new_figure, save_png
    from lm_zoo.intensity import normalize_mra
    from lm_zoo.patches import extract_25d
    from lm_zoo.phantoms import insert_aneurysms

    mask = vessels.vessel_mask(image)
    inserted, aneurysms = insert_aneurysms(image, vessel_mask=mask, n=n, seed=seed)
    centres = np.array([a.center_lps for a in aneurysms])
    points = vessels.candidate_points(image, mask, seed=0)
    geo = vessels.local_geometry(mask, points)
    rng = np.random.default_rng(seed)
    hard = np.flatnonzero(np.isin(geo["kind"], ("bifurcation", "branch_origin", "curve")) & (geo["radius_mm"] >= 0.8))
    hard = np.sort(rng.permutation(hard)[:n])
    rows = [("inserted", extract_25d(normalize_mra(inserted), centres, 32, 0.6),
             [f"{a.site} d={2 * a.radius_mm:.1f}mm" for a in aneurysms]),
            ("same point, before", extract_25d(normalize_mra(image), centres, 32, 0.6), [""] * n),
            ("normal (hard)", extract_25d(normalize_mra(image), points[hard], 32, 0.6), list(geo["kind"][hard]))]
    fig, axes = new_figure(3, 3 * n, figsize=(1.1 * 3 * n, 3.9))
    for r, (name, patches, titles) in enumerate(rows):
        for i in range(min(n, len(patches))):
            for c, plane in enumerate(("ax", "cor", "sag")):
                ax = axes[r, 3 * i + c]
                ax.imshow(patches[i, :, :, c], cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_title(f"{name}: {titles[i]}" if i == 0 else titles[i], fontsize=6, loc="left")
    fig.suptitle("real TOF-MRA sample (chris_MRA, CC BY-NC 4.0), 2.5D patches 32 px at 0.6 mm: aneurysms "
                 "inserted by lm_zoo.phantoms.insert_aneurysms vs normal vessel", fontsize=7)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    return save_png(fig, out_dir / "inserted_vs_normal.png", dpi=90)


def main(argv=None) -> int:
    import SimpleITK as sitk

    from lm_zoo.phantoms import head_mra

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=6, help="healthy phantom cases to measure")
    parser.add_argument("--out", type=Path, default=None, help="folder for inserted_vs_normal.png")
    args = parser.parse_args(argv)
    shared = Path(os.environ.get("LM_ZOO_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    real_path = shared / "mra" / "chris_MRA.nii.gz"
    rows = []
    t0 = time.perf_counter()
    if real_path.exists():
        real = sitk.ReadImage(str(real_path))
        rows.append(measure(real, "real chris_MRA"))
    else:
        real = None
        print(f"real sample {real_path} not found: phantom only")
    phantom = []
    for i in range(args.cases):
        seed, _ = head_mra.case_plan(1, i, 0.5)
        image, _, _ = head_mra.generate_case(seed, aneurysm=False)
        phantom.append(measure(image, f"phantom {i}"))
    if phantom:
        pooled = dict(label=f"phantom (mean of {len(phantom)})", n_points=int(np.mean([p["n_points"] for p in phantom])))
        for key in ("vessel_fraction", "hard", "tissue", "noise", "saturated", "zero_fraction"):
            pooled[key] = float(np.mean([p[key] for p in phantom]))
        for key in ("radius", "bend"):
            pooled[key] = np.mean([p[key] for p in phantom], axis=0)
        pooled["kinds"] = {k: float(np.mean([p["kinds"][k] for p in phantom])) for k in phantom[0]["kinds"]}
        pooled["profile"] = {d: float(np.mean([p["profile"][d] for p in phantom])) for d in DEPTHS_MM}
        rows.append(pooled)
    print(f"head MRA calibration (real sample vs healthy phantom cases, same vessel pipeline; "
          f"{time.perf_counter() - t0:.0f} s):")
    _print(rows)
    if args.out is not None and real is not None:
        print("montage (derived from CC BY-NC data, keep it out of the repository):", montage(real, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
