"""The adaptation recipe: landmark weights fine-tuned to unlabelled real CT (``lm-zoo train landmark
--adapt-to DIR``).

Starting from trained weights (``init_from``, default the phantom-only ``landmark_phantom`` set),
the network is fine-tuned on the labelled phantom training split and on patches of random body
points of the unlabelled scans, one scan at a time (:mod:`lm_zoo.training.unlabelled`), with
``method``:

- ``"dann"`` (default): domain-adversarial fine-tuning (:mod:`lm_zoo.training.dann`) with the
  real body points also trained as ``non_landmark``;
- ``"adabn"``: the label-free baseline (:mod:`lm_zoo.training.adapt`): BatchNorm statistics of the
  real patches, then the background logit recalibrated on them. No training.

Every scan is checked before anything is trained (an MR, a 2D image or an unreadable file is
refused, naming it). The run writes the same files as the other recipes (weights + sidecar,
``metrics.json`` naming every adapting scan, ``adaptation.csv`` logging the adversarial steps, the card).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from lm_zoo.training.dann import DannSettings
from lm_zoo.training.errors import TrainingDataError

__all__ = ["ADAPT_METHODS", "AdaptSettings", "adapt_landmark"]

ADAPT_METHODS = ("dann", "adabn")


@dataclasses.dataclass(frozen=True)
class AdaptSettings:
    """What the adaptation reads from the unlabelled scans; the training itself is ``dann``."""

    method: str = "dann"
    points_per_scan: int = 2000
    max_patches: int = 40_000        # all scans together: bounds memory (int16, ~250 MB) for large cohorts
    background_share: float = 0.95   # adabn: share of real body points called non_landmark afterwards
    dann: DannSettings = DannSettings(real_negative_weight=0.3)


def _real_patches(folders, settings: AdaptSettings, ws, progress: bool):
    """Raw-HU patches of random body points of every scan under ``folders`` and the scans' names."""
    from tqdm.auto import tqdm

    from lm_zoo.training.unlabelled import body_patches, check_scans, find_scans

    scans = check_scans(find_scans(folders), progress=progress)
    per_scan = max(1, min(settings.points_per_scan, settings.max_patches // len(scans)))
    stream = body_patches(scans, per_scan, seed=settings.dann.seed, patch_size=ws.patch_size, spacing_mm=ws.spacing_mm)
    # HU to the nearest unit as int16: half the memory of float32, far below the augmentation's noise.
    parts = [np.round(p).astype(np.int16) for _, p in tqdm(stream, total=len(scans), desc="patches of unlabelled scans",
                                                          unit="scan", disable=not progress)]
    return np.concatenate(parts), [str(s.path) for s in scans]


def _real_stream(x, batch_size, seed, prep):
    """Endless random, domain-randomised, preprocessed batches of real patches."""
    from lm_zoo.augment import randomize

    rng, k = np.random.default_rng([seed, 1]), 0
    while True:
        k += 1
        idx = rng.choice(len(x), min(batch_size, len(x)), replace=False)
        yield prep(randomize(x[idx], [seed, 1, k]))


def adapt_landmark(out_dir, adapt_to, *, init_from="landmark_phantom", settings: AdaptSettings = AdaptSettings(),
                   dataset: str = "landmark_ct_patches/phantom_lm60", data_dir=None, smoke: bool = False,
                   progress: bool = True, command: str | None = None) -> dict:
    """Adapt ``init_from`` to the unlabelled scans under ``adapt_to`` (folders or files); returns the
    metrics dict (also written, with the weights and card, into ``out_dir``)."""
    import keras
    from tqdm.auto import tqdm

    from lm_zoo.applications import MiniVGG25D, predict_batched, preprocess_input
    from lm_zoo.applications import check_weights
    from lm_zoo.pretrained import describe_weights
    from lm_zoo.training.adapt import adapt_batchnorm, recalibrate_background
    from lm_zoo.training.batches import landmark_batches
    from lm_zoo.training.dann import train_dann
    from lm_zoo.training.data import load_patch_splits
    from lm_zoo.training.loop import machine_description
    from lm_zoo.training.metrics import classification_metrics
    from lm_zoo.training.recipes import write_run_outputs

    if settings.method not in ADAPT_METHODS:
        raise TrainingDataError(f"adaptation method {settings.method!r}: choose one of {', '.join(ADAPT_METHODS)}")
    if smoke:  # seconds, for tests: a few patches per scan and a few steps
        settings = dataclasses.replace(settings, points_per_scan=64, dann=dataclasses.replace(settings.dann, steps=4))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        init_weights = check_weights(str(init_from))
    except ValueError as err:
        raise TrainingDataError(f"--init-from {init_from}: {err}") from None
    ws = describe_weights(init_weights)
    x_real, scans = _real_patches(adapt_to, settings, ws, progress)
    splits, class_names, info, sources = load_patch_splits(dataset, data_dir, splits=("train", "test"))
    if list(class_names) != list(ws.class_names):
        raise TrainingDataError(f"--init-from {init_from}: its classes differ from {dataset}'s; adapt weights "
                                f"trained on {dataset}")
    (x_tr, y_tr, _), (x_te, y_te, c_te) = splits["train"], splits["test"]
    if smoke:
        x_tr, y_tr = x_tr[:256], y_tr[:256]
    prep = lambda x: np.asarray(preprocess_input(x, weights="landmark", modality="ct"))  # noqa: E731
    keras.utils.set_random_seed(settings.dann.seed)
    model = MiniVGG25D(weights=init_weights)
    t_data = time.time() - t0
    log = []
    if settings.method == "adabn":
        x_real_p = prep(x_real)
        adapt_batchnorm(model, x_real_p)
        shift = recalibrate_background(model, x_real_p, class_names, share=settings.background_share)
        log.append({"step": 0, "background_shift": round(shift, 4)})
    else:
        dann = settings.dann
        # The recipes' phantom pipeline (shuffled, domain-randomised, one-hot), repeated without end.
        phantom = iter(landmark_batches(x_tr, y_tr, len(class_names), dann, prep, True, True).repeat())
        log = train_dann(model, phantom, _real_stream(x_real, dann.batch_size, dann.seed, prep), class_names, dann,
                         progress=(lambda r: tqdm(r, desc="adversarial fine-tuning", unit="step")) if progress else None)
    _write_log(out_dir / "adaptation.csv", log)
    scores = predict_batched(model, prep(x_te), 1024)
    metrics = {
        "weight_set": "landmark",
        "dataset": dataset,
        "data": f"{dataset} v{info.version} (source: {'+'.join(sources)}) + unlabelled real CT "
                f"({len(scans)} scans, labels never used)",
        "source": "+".join(sources),
        "adaptation": {"method": settings.method, "init_from": str(init_from), "scans": scans,
                       "n_real_patches": int(len(x_real)), "settings": dataclasses.asdict(settings), "log_tail": log[-3:]},
        "class_names": list(class_names),
        "n_train": int(len(x_tr)),
        "n_test": int(len(c_te)),
        "n_test_cases": int(len(np.unique(c_te))),
        **classification_metrics(scores, y_te, class_names, groups=c_te),
        "init_from": str(init_from),
        "recipe": {"name": f"landmark_adapt_{settings.method}", **({} if settings.method == "adabn" else
                   {k: v for k, v in dataclasses.asdict(settings.dann).items()}), "points_per_scan": settings.points_per_scan},
        "epochs_max": None,
        "seconds_data": round(t_data, 1),
        "seconds_train": round(time.time() - t0 - t_data, 1),
        "machine": machine_description(),
        "smoke": smoke,
    }
    return write_run_outputs(model, out_dir, metrics, command)


def _write_log(path: Path, rows: list[dict]) -> None:
    import csv
    import io

    from lm_zoo._atomic import atomic_write_text

    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[-1]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
