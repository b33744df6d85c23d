"""``lm-zoo weights calibrate NAME``: calibrate the detector for a landmark weight set on phantoms.

Writes the set's detection file (``<weights stem>.detection.json`` in its preset, read by
:func:`lm_zoo.detection.detection_config`): the atlas of the shape prior from the training
cohort's landmarks (``case_seed(0, 0..59)``, :data:`TRAINING_SEED`: the cases the shipped
weights were trained on), and the threshold and shape weight calibrated on the calibration cases
``case_seed(2, 0..N-1)`` (:data:`CALIBRATION_SEED`; never the training seed, never the held-out
seed 1 the figures report), each whole and cut to a chest or abdomen-pelvis field of view (see
:mod:`lm_zoo.detection.calibration`).

With ``--metrics`` it then measures quality (held-out phantom cases ``case_seed(1, i)``, whole and
partial views, and the real TotalSegmentator example of the shared data) and speed (a phantom
resampled to a clinical 512x512x300 grid), writes them as the ``detection`` entry of the set's
metrics file and regenerates the shipped cards; ``--keep-calibration`` recalibrates first only
when the detection file is missing or was made for other weights. About 40 min on 2 CPU cores.

The phantom cases are drawn here, so the detection library itself never imports the phantoms.
"""
from __future__ import annotations

import os
from pathlib import Path

TRAINING_SEED = 0      # the landmark_ct_patches phantom cohort the weights were trained on
HELD_OUT_SEED = 1      # reported quality
CALIBRATION_SEED = 2   # threshold calibration
ATLAS_CASES = 60


def add_arguments(parser) -> None:
    parser.add_argument("name", help="landmark weight set: registered name or a .weights.h5 with a sidecar")
    parser.add_argument("--cases", type=int, default=8, help="calibration phantom cases (default 8)")
    parser.add_argument("--seed", type=int, default=CALIBRATION_SEED,
                        help=f"calibration cohort seed (default {CALIBRATION_SEED})")
    parser.add_argument("--atlas-cases", type=int, default=ATLAS_CASES,
                        help=f"training-cohort cases averaged into the atlas (default {ATLAS_CASES})")
    parser.add_argument("--metrics", action="store_true",
                        help="also measure quality and speed, write them to the set's metrics file, regenerate cards")
    parser.add_argument("--keep-calibration", action="store_true",
                        help="with --metrics: recalibrate only when the detection file is missing or stale")
    parser.add_argument("--held-out-cases", type=int, default=8, help="held-out phantom cases of --metrics")
    parser.add_argument("--held-out-seed", type=int, default=HELD_OUT_SEED, help="held-out cohort seed of --metrics")
    parser.add_argument("--dense-sample", type=int, default=2048, help="patches timed for the dense-scan baseline")
    parser.add_argument("--shared-data", default=os.environ.get("LM_ZOO_SHARED_DATA"),
                        help="folder holding totalseg_example/ for the real-CT figures (default $LM_ZOO_SHARED_DATA)")


class PhantomCases:
    """Phantom cases ``case_seed(seed, 0..n-1)`` as a sequence of (image, truth Landmarks), each
    drawn when read (so calibration can iterate them twice without holding all volumes)."""

    def __init__(self, seed: int, n: int, **kwargs):
        self.seed, self.n, self.kwargs = int(seed), int(n), kwargs

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        from lm_zoo.phantoms.torso_ct import case_seed, generate_case

        if not 0 <= i < self.n:
            raise IndexError(i)
        return generate_case(case_seed(self.seed, i), **self.kwargs)


def training_atlas(n_cases: int = ATLAS_CASES, seed: int = TRAINING_SEED):
    """Atlas of the 60 phantom landmarks from the training cohort (landmark positions do not
    depend on the voxel size, so the cases are drawn at 6 mm for speed)."""
    from lm_zoo.anatomy import LM60
    from lm_zoo.detection import build_atlas

    sets = [truth.subset(LM60).points for _, truth in PhantomCases(seed, n_cases, spacing_mm=6.0)]
    return build_atlas(sets, LM60, source=f"generalised-Procrustes (similarity) mean of the landmarks of the training "
                                          f"cohort's phantom cases case_seed({seed}, 0..{n_cases - 1})")


def calibration_data(seed: int, n: int) -> str:
    return (f"synthetic phantom CT, calibration cases case_seed({seed}, 0..{n - 1}) (not the training seed "
            f"{TRAINING_SEED}, not the held-out seed {HELD_OUT_SEED}), each whole and cut to a chest or "
            "abdomen-pelvis field of view")


def clinical_sized_case(seed: int = 12345):
    """One phantom torso resampled onto a 512x512x300 grid at 0.8 x 0.8 x 1.5 mm (a clinical CT size)."""
    from lm_zoo.phantoms.torso_ct import generate_case

    image, truth = generate_case(seed)
    return on_clinical_grid(image, truth.points.mean(0))


def on_clinical_grid(image, centre, size=(512, 512, 300), spacing=(0.8, 0.8, 1.5), nearest: bool = False):
    """``image`` resampled onto an axis-aligned ``size`` grid (x, y, z voxels) of ``spacing`` mm
    centred on ``centre`` (LPS mm): a CT-sized copy of a phantom. Linear, int16, -1024 HU outside;
    ``nearest``: nearest neighbour in the image's own pixel type, 0 outside (a label map)."""
    import numpy as np
    import SimpleITK as sitk

    ref = sitk.Image([int(n) for n in size], sitk.sitkInt16)
    spacing = np.asarray(spacing, float)
    ref.SetSpacing(spacing.tolist())
    ref.SetOrigin((np.asarray(centre, float) - spacing * (np.asarray(size) - 1) / 2).tolist())
    if nearest:
        return sitk.Resample(image, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, image.GetPixelID())
    return sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkInt16)


def held_out_quality(name, model, search, n: int, seed: int, shared_data=None, log=print) -> dict:
    """Quality figures on held-out phantom cases and, when the shared data holds it, the real CT."""
    from lm_zoo.detection import calibration

    if seed in (TRAINING_SEED, CALIBRATION_SEED):
        raise ValueError(f"held-out seed {seed} is the {'training' if seed == TRAINING_SEED else 'calibration'} "
                         f"seed; use another one (default {HELD_OUT_SEED})")
    views = calibration.PARTIAL_VIEWS
    result = calibration.quality(
        name, PhantomCases(seed, n), model=model, search=search, log=log,
        data=f"synthetic phantom CT (lm_zoo.phantoms.torso_ct), held-out cases case_seed({seed}, 0..{n - 1}); "
             f"training cohort seed {TRAINING_SEED}, calibration seed {CALIBRATION_SEED}",
        partial_data=f"synthetic phantom CT, the same held-out cases cut to a clinical field of view (even cases "
                     f"{views[0]}, odd cases {views[1]}; lm_zoo.detection.calibration.partial_view)")
    real = real_ct_figures(name, model, search, shared_data, log) if shared_data else None
    if real is not None:
        result["real"] = real
    return result


def real_ct_figures(name, model, search, shared_data, log=print):
    """Figures on the TotalSegmentator example against its segmentation's landmarks (None when absent)."""
    import warnings

    from lm_zoo.detection import calibration
    from lm_zoo.io import read_image
    from lm_zoo.landmarks import landmarks_from_segmentation

    folder = Path(shared_data) / "totalseg_example"
    ct, seg = folder / "example_ct.nii.gz", folder / "example_seg_fast_force_split.nii.gz"
    if not (ct.exists() and seg.exists()):
        log(f"real CT: skipped ({ct} or {seg} absent)")
        return None
    image = read_image(ct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = landmarks_from_segmentation(str(seg), image=image)
    return calibration.evaluate_real(
        image, reference, name, model=model, search=search, log=log,
        data=f"real CT (TotalSegmentator example, shared/data): totalseg_example/{ct.name}, reference "
             f"lm_zoo.landmarks.landmarks_from_segmentation(totalseg_example/{seg.name}); "
             f"{len(reference)} reference landmarks")


def _command_line(args) -> str:
    line = f"lm-zoo weights calibrate {args.name} --metrics --cases {args.cases} --held-out-cases {args.held_out_cases}"
    return line + (" --keep-calibration" if args.keep_calibration else "")


def run(args) -> int:
    from lm_zoo.cli import quiet_tensorflow

    quiet_tensorflow(verbose=getattr(args, "verbose", False))  # `weights` itself needs no TensorFlow
    from lm_zoo import pretrained
    from lm_zoo.applications import MiniVGG25D
    from lm_zoo.detection import SearchParams, calibration, detection_config, landmark_weight_set

    ws = landmark_weight_set(args.name)  # refuse non-landmark weights before drawing any case
    if args.cases < 1 or args.atlas_cases < 2:
        raise ValueError(f"--cases must be >= 1 and --atlas-cases >= 2, got {args.cases} and {args.atlas_cases}")
    metrics_file = pretrained.preset_file(ws, "metrics")
    if args.metrics and not metrics_file.is_file():
        raise FileNotFoundError(f"--metrics: weights {args.name!r} have no metrics file {metrics_file} to add the "
                                "detection figures to")
    model, search = MiniVGG25D(weights=args.name), SearchParams()
    config = detection_config(ws)
    if not (args.metrics and args.keep_calibration and config.path and config.weights_sha256 == ws.sha256):
        atlas = training_atlas(args.atlas_cases)
        print(f"atlas of {len(atlas.names)} landmarks from {args.atlas_cases} training cases")
        entry = calibration.calibrate(args.name, PhantomCases(args.seed, args.cases), atlas, model=model,
                                      search=search, data=calibration_data(args.seed, args.cases), log=print)
        path = calibration.write_detection_settings(args.name, entry)
        print(f"wrote {path} (threshold {entry['threshold']:g}, shape_weight {entry['shape_weight']:g})")
    if args.metrics:
        result = held_out_quality(args.name, model, search, args.held_out_cases, args.held_out_seed, args.shared_data)
        result["speed"] = calibration.measure_speed(
            clinical_sized_case(), args.name, model=model, search=search, dense_sample=args.dense_sample, log=print,
            data="synthetic phantom resampled to 512x512x300 at 0.8x0.8x1.5 mm")
        path = calibration.write_detection_metrics(args.name, result, _command_line(args))
        print(f"wrote the detection entry of {path}")
        from lm_zoo.training.cards import write_card
        from lm_zoo.training.recipe import SHIPPED_SETS

        if args.name in SHIPPED_SETS:
            print(f"regenerated {write_card(args.name)}")
    return 0
