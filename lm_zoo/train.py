"""Training recipes for the shipped weight sets ("landmark" and "cifar").

Each recipe is seeded, logged (``history.csv``), resumable (``keras.callbacks.BackupAndRestore``)
and writes ``<name>.weights.h5`` (model weights only, no optimizer state), ``metrics.json`` and a
model card ``<name>.md`` into its output folder. ``smoke=True`` runs a few steps for tests.

The code is backend-agnostic Keras 3: inputs are NumPy arrays fed through a
``keras.utils.PyDataset`` (CIFAR, augmentation on the fly) or ``tf.data`` when TensorFlow is the
backend (landmarks), so the CIFAR recipe also runs on JAX or PyTorch.
"""
from __future__ import annotations

import dataclasses
import io
import os
import platform
import tarfile
import time
from pathlib import Path

import numpy as np

from lm_zoo._atomic import atomic_path, atomic_write_json, atomic_write_text
from lm_zoo.errors import LmZooError

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


class TrainingDataError(LmZooError, ValueError):
    """The training data given to a recipe is missing or malformed."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one recipe; written verbatim into the model card."""

    name: str
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    warmup_epochs: int = 1
    early_stopping_patience: int | None = None
    seed: int = 0
    intensity_augmentation: bool = False  # lm_zoo.augment.randomize on raw-HU training batches


CIFAR_RECIPE = Recipe(name="cifar", epochs=80, batch_size=128, learning_rate=0.05)
LANDMARK_RECIPE = Recipe(
    name="landmark", epochs=20, batch_size=128, learning_rate=0.05, label_smoothing=0.05,
    early_stopping_patience=8, intensity_augmentation=True,
)
# Second stage: the phantom-trained weights (init_from) adapted to real CT patches mixed into the
# phantom ones (train_landmark(real_dataset=...)). A short, low-rate run: the real patches are few
# and their landmarks were derived from segmentations, so the phantom keeps every class in view.
LANDMARK_REAL_RECIPE = Recipe(
    name="landmark_real", epochs=4, batch_size=128, learning_rate=0.01, label_smoothing=0.05,
    warmup_epochs=0, intensity_augmentation=True,
)
RECIPES = {"landmark": LANDMARK_RECIPE, "landmark_real": LANDMARK_REAL_RECIPE}
# Default share of each epoch's examples drawn (with repetition) from the real dataset.
REAL_SHARE = 0.15


# ----------------------------------------------------------------------------- CIFAR-10 data
def load_cifar10(archive: str | os.PathLike | None = None, data_dir: str | None = None):
    """CIFAR-10 as ``((x_train, y_train), (x_test, y_test), provenance)``, uint8 RGB 32x32.

    With ``archive`` None, ``tfds.load("cifar10")`` is used (it must already be prepared in
    ``data_dir``: nothing is downloaded). Otherwise ``archive`` is a tar of JPEG/PNG files laid out
    as ``train/<class>/*`` and ``test/<class>/*`` (class folder names as in ``CIFAR10_CLASSES``).
    """
    if archive is None:
        import tensorflow_datasets as tfds

        builder = tfds.builder("cifar10", data_dir=data_dir)
        if not builder.is_prepared():
            raise TrainingDataError(
                f"cifar10 is not prepared in TFDS data_dir {builder.data_dir!r} and lm_zoo never "
                "downloads; pass archive=PATH (a tar with train/<class>/*.jpg and test/<class>/*.jpg)"
            )
        out = []
        for split in ("train", "test"):
            ds = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
            out.append((ds["image"], ds["label"].astype("int64")))
        return out[0], out[1], f"tfds cifar10 ({builder.data_dir})"
    return _load_cifar10_tar(Path(archive))


def _load_cifar10_tar(path: Path):
    from PIL import Image

    if not path.exists():
        raise FileNotFoundError(f"CIFAR-10 archive not found: {path}")
    images = {"train": [], "test": []}
    labels = {"train": [], "test": []}
    class_index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    try:
        tar = tarfile.open(path)
    except tarfile.TarError as err:
        raise TrainingDataError(f"{path}: not a readable tar archive ({err})") from err
    with tar:
        members = sorted((m for m in tar if m.isfile()), key=lambda m: m.name)
        for member in members:
            parts = Path(member.name).parts
            if len(parts) < 3 or parts[-3] not in images:
                continue
            split, cls = parts[-3], parts[-2]
            if cls not in class_index:
                raise TrainingDataError(f"{path}: unknown class folder {cls!r} in {member.name}")
            data = tar.extractfile(member).read()
            img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            if img.shape != (32, 32, 3):
                raise TrainingDataError(f"{path}: {member.name} is {img.shape}, expected 32x32 RGB")
            images[split].append(img)
            labels[split].append(class_index[cls])
    for split in images:
        if not images[split]:
            raise TrainingDataError(f"{path}: no images under {split}/<class>/")
    as_arrays = [(np.stack(images[s]), np.asarray(labels[s], "int64")) for s in ("train", "test")]
    return as_arrays[0], as_arrays[1], f"CIFAR-10 JPEG archive {path.name}"


class _AugmentedImages:
    """Random crop (4 px reflect padding) + horizontal flip, seeded per epoch."""

    def __new__(cls, *args, **kwargs):
        import keras

        class _Dataset(keras.utils.PyDataset):
            def __init__(self, x, y, batch_size, seed, augment):
                super().__init__()
                self.x, self.y = x, y
                self.batch_size, self.seed, self.augment = batch_size, seed, augment
                self.epoch = 0
                self._order()

            def _order(self):
                rng = np.random.default_rng([self.seed, self.epoch])
                self.order = rng.permutation(len(self.x)) if self.augment else np.arange(len(self.x))

            def __len__(self):
                return int(np.ceil(len(self.x) / self.batch_size))

            def on_epoch_end(self):
                self.epoch += 1
                self._order()

            def __getitem__(self, i):
                idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
                x = self.x[idx]
                if self.augment:
                    rng = np.random.default_rng([self.seed, self.epoch, i])
                    x = _crop_flip(x, rng)
                return x, self.y[idx]

        return _Dataset(*args, **kwargs)


def _crop_flip(x: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    n, h, w = x.shape[:3]
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    return out


# ----------------------------------------------------------------------------- shared pieces
def _compile(model, recipe: Recipe, steps_per_epoch: int, total_epochs: int):
    import keras

    total = max(1, steps_per_epoch * total_epochs)
    warmup = min(total // 2, steps_per_epoch * recipe.warmup_epochs)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.learning_rate / 10 if warmup else recipe.learning_rate,
        decay_steps=total - warmup,
        warmup_target=recipe.learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.SGD(
        schedule, momentum=recipe.momentum, nesterov=True, weight_decay=recipe.weight_decay
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy", keras.metrics.TopKCategoricalAccuracy(k=5, name="top5")],
    )


def bootstrap_ci(correct: np.ndarray, groups: np.ndarray | None = None, n_boot: int = 2000, seed: int = 0):
    """95 % percentile-bootstrap CI of the mean of ``correct``; resamples ``groups`` (e.g. cases) whole."""
    correct = np.asarray(correct, float)
    rng = np.random.default_rng(seed)
    if groups is None:
        stats = rng.choice(correct, (n_boot, len(correct))).mean(axis=1)
    else:
        uniq, inv = np.unique(groups, return_inverse=True)
        sums = np.bincount(inv, weights=correct, minlength=len(uniq))
        counts = np.bincount(inv, minlength=len(uniq))
        picks = rng.integers(0, len(uniq), (n_boot, len(uniq)))
        stats = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def classification_metrics(probs: np.ndarray, labels: np.ndarray, class_names, groups=None) -> dict:
    """Top-1 with a 95 % bootstrap CI (over ``groups``, e.g. cases, when given), top-5, per class."""
    correct = probs.argmax(1) == labels
    top5 = (np.argsort(probs, axis=1)[:, -5:] == labels[:, None]).any(axis=1)
    ci_key = "test_top1_ci95" if groups is None else "test_top1_ci95_case_bootstrap"
    return {
        "test_top1": float(correct.mean()),
        ci_key: bootstrap_ci(correct, groups),
        "test_top5": float(top5.mean()),
        "per_class_accuracy": {
            c: float(correct[labels == i].mean()) for i, c in enumerate(class_names) if np.any(labels == i)
        },
    }


def machine_description() -> str:
    import keras

    desc = f"{platform.machine()} {os.cpu_count()} CPU cores, keras {keras.__version__} ({keras.backend.backend()} backend)"
    try:
        if keras.backend.backend() == "jax":
            import jax

            devs = [d.device_kind for d in jax.devices() if d.platform != "cpu"]
        elif keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            devs = [d.name for d in tf.config.list_physical_devices("GPU")]
        elif keras.backend.backend() == "torch":
            import torch

            devs = [torch.cuda.get_device_name(0)] if torch.cuda.is_available() else []
        else:
            devs = []
    except Exception:  # device probing is informational only
        devs = []
    return desc + (f", accelerator: {', '.join(devs)}" if devs else ", no accelerator")


def _fit(model, train, val, recipe: Recipe, epochs: int, out_dir: Path, callbacks_extra=(), verbose=2):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        # Runs before CSVLogger, so history.csv records how long each epoch took.
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["epoch_seconds"] = round(time.time() - self._start, 2)

    backup = out_dir / "backup"
    callbacks = [
        EpochTimer(),
        keras.callbacks.BackupAndRestore(str(backup)),
        keras.callbacks.CSVLogger(str(out_dir / "history.csv"), append=True),
        *callbacks_extra,
    ]
    if val is not None and recipe.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=recipe.early_stopping_patience, restore_best_weights=True
            )
        )
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=verbose)
    return history


GENERATED_NOTE = (
    "<!-- Generated by lm_zoo.train.model_card from this run's metrics.json and history.csv; "
    "do not edit (shipped cards: edit the .preamble.md, then run `python -m lm_zoo.train --regenerate-cards`). -->"
)


def _source_phrase(metrics: dict) -> str:
    """Which data the figures came from, as the run recorded it (never guessed from a name)."""
    source = metrics.get("source")
    if source is None and "(source: " in metrics.get("data", ""):
        source = metrics["data"].rsplit("(source: ", 1)[1].rstrip(")")
    if source is None:
        return "natural images (CIFAR-10), not medical data" if metrics.get("weight_set") == "cifar" else "not recorded"
    words = {"phantom": "**phantom** (synthetic data generated by lm_zoo, not clinical)",
             "user": "**user data** (read from the user's manual folder)"}
    return " + ".join(words.get(s, s) for s in source.split("+"))


def read_history(path) -> list[dict]:
    """Rows of a Keras CSVLogger ``history.csv`` (numbers as float, ``NA``/empty as None)."""
    import csv

    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.append({k: (None if v in ("", "NA") else float(v)) for k, v in row.items()})
    return rows


def _history_lines(history: list[dict], metrics: dict) -> list[str]:
    if not history:
        return []
    epochs_max = metrics.get("epochs_max", metrics.get("epochs"))
    lines = [f"| epochs run | {len(history)} of at most {epochs_max}"
             + (" (early stopping stopped the run)" if epochs_max and len(history) < epochs_max else "") + " |"]
    seconds = [r["epoch_seconds"] for r in history if r.get("epoch_seconds") is not None]
    if seconds:
        lines.append(f"| seconds per epoch | median {float(np.median(seconds)):.1f} (min {min(seconds):.1f}, "
                     f"max {max(seconds):.1f}) |")
    val = [(r["val_accuracy"], int(r["epoch"])) for r in history if r.get("val_accuracy") is not None]
    if val:
        best, epoch = max(val, key=lambda t: (t[0], -t[1]))
        lines.append(f"| best validation top-1 | {best:.4f} at epoch {epoch + 1} (of {len(history)}) |")
    last = history[-1]
    if last.get("accuracy") is not None:
        lines.append(f"| last epoch training top-1 / loss | {last['accuracy']:.4f} / {last['loss']:.4f} |")
    return lines


def model_card(metrics: dict, command: str | None = None, history: list[dict] | None = None,
               weights_sha256: str | None = None) -> str:
    """A model card (Markdown) for a training run: every figure comes from ``metrics`` (the run's
    metrics.json) and ``history`` (its history.csv rows, see :func:`read_history`).

    ``command``: the command line of the run (default: ``metrics["command"]``, which the recipes
    record from the real argv). The shipped cards in ``pretrained/`` are this text with a
    hand-written preamble after the title (:func:`shipped_card`).
    """
    name = metrics["weight_set"]
    recipe = metrics["recipe"]
    command = command or metrics.get("command")
    lo, hi = metrics.get("test_top1_ci95_case_bootstrap") or metrics["test_top1_ci95"]
    ci_kind = "case-level bootstrap" if "test_top1_ci95_case_bootstrap" in metrics else "bootstrap over images"
    per_class = metrics.get("per_class_accuracy", {})
    examples = (f"{metrics['n_train']} train"
                + (f", {metrics['n_validation']} validation" if "n_validation" in metrics else "")
                + f", {metrics['n_test']} test"
                + (f" ({metrics['n_test_cases']} test cases)" if "n_test_cases" in metrics else ""))
    hyper = ", ".join(f"{k}={v}" for k, v in recipe.items() if k not in ("name", "epochs"))
    lines = [
        f"# Model card: `MiniVGG25D(weights=\"{name}\")`" + (" (smoke run)" if metrics.get("smoke") else ""),
        "",
        GENERATED_NOTE,
        "",
        "## Figures from the training run",
        "",
        "| | |",
        "|---|---|",
        f"| data the numbers come from | {_source_phrase(metrics)}: {metrics['data']} |",
        *([f"| weights file | `mini_vgg25d_{name}.weights.h5`, sha256 `{weights_sha256}` |"] if weights_sha256 else []),
        f"| examples | {examples} |",
        "| command | " + (f"`{command}`" if command else
                          "not recorded (this run predates the recording of its command line)") + " |",
        f"| hyper-parameters | {hyper}; epochs at most {metrics.get('epochs_max', metrics.get('epochs'))} |",
        *([f"| initialised from | `{metrics['init_from']}` |"] if metrics.get("init_from") else []),
        *_real_training_lines(metrics.get("real_training")),
        *_history_lines(history or [], metrics),
        f"| test top-1 | **{metrics['test_top1']:.4f}** (95 % CI {lo:.4f}–{hi:.4f}, {ci_kind}) |",
        f"| test top-5 | {metrics['test_top5']:.4f} |",
        f"| time | {metrics['seconds_train']} s training + {metrics['seconds_data']} s data on {metrics['machine']} |",
        "",
    ]
    if per_class:
        lines += [
            "Test top-1 per class, lowest first: "
            + ", ".join(f"{k} {v:.3f}" for k, v in sorted(per_class.items(), key=lambda kv: (kv[1], kv[0]))) + ".",
            "",
        ]
    for entry in metrics.get("real_ct", []):  # benchmarks/sim_to_real.py --json results, added after the run
        lines += _real_ct_lines(entry)
    if metrics.get("detection"):  # benchmarks/detect.py --update-metrics, added after the run
        lines += _detection_lines(metrics["detection"])
    return "\n".join(lines)


def _real_training_lines(real: dict | None) -> list[str]:
    if not real:
        return []
    return [f"| real training patches | {real['n_patches']} patches of {real['data']} from case(s) "
            f"{', '.join(real['cases'])}, repeated {real['repeats']}x (share {real['share']:.3f} of each epoch's examples); "
            f"{len(real['classes_present']) - ('non_landmark' in real['classes_present'])} landmark classes "
            "had real patches. Figures on these cases are training-data figures, not held-out ones |"]


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _real_ct_lines(entry: dict) -> list[str]:
    """Markdown of one ``benchmarks/sim_to_real.py --json`` result: real-CT figures, stated as such."""
    per = entry.get("per_landmark", [])
    ranks = ", ".join(f"{r['landmark']} {r['rank_of_truth']}" for r in per)
    return [
        f"### Real CT: {entry.get('title', entry.get('case', ''))}",
        f"- **Data:** {entry['data']}",
        f"- **Top-1:** {_fmt(entry['real_top1'])}, **top-5:** {_fmt(entry['real_top5'])} on {entry['n_landmarks']} landmarks; "
        f"**non-landmark recall:** {_fmt(entry['non_landmark_recall'])} ({entry['n_non_landmark']} points)",
        f"- **Rank of the true class per landmark** (1 = top-1): {ranks or 'no landmark derivable on this scan'}",
        "",
    ]


def _mm(value) -> str:
    return "n/a" if value is None else f"{value:.1f} mm"


def _detection_summary_lines(summary: dict) -> list[str]:
    o = summary["overall"]
    share = "n/a" if o["within_10mm"] is None else f"{o['within_10mm']:.3f}"
    lines = [f"- **Data:** {summary['data']}",
             f"- **Overall:** median error {_mm(o['median_error_mm'])} (found landmarks in view); within 10 mm "
             f"**{share}** ({o['n_within_10mm']} of {o['in_view']} in-view landmark instances); misses "
             f"{o['misses']}; false detections {o['false_detections']} (found > 10 mm away or outside the view)"
             + (f"; of {o['outside_view']} landmark instances outside the view, {o['found_outside_view']} reported "
                "found" if o.get("outside_view") else "")]
    rows = [(n, r) for n, r in summary["per_landmark"].items() if r["in_view"]]
    rows.sort(key=lambda nr: (nr[1]["within_10mm"], nr[0]))
    lines.append("- **Per landmark** (within 10 mm / median error / misses / false detections, lowest first): "
                 + "; ".join(f"{n} {_fmt(r['within_10mm'])} / {_mm(r['median_error_mm'])} / {r['misses']} / "
                             f"{r['false_detections']}" for n, r in rows) + ".")
    if summary.get("found_without_reference"):
        lines.append("- **Found where the reference has no landmark to check against** (outside the field of view, "
                     "cut by it or not derivable from the segmentation; not counted above): "
                     + ", ".join(summary["found_without_reference"]) + ".")
    return lines


def _detection_lines(entry: dict) -> list[str]:
    """Markdown of ``benchmarks/detect.py --update-metrics`` results: whole-volume detection
    (``lm_zoo.detection``) on held-out phantom cases and on real CT, each stated as such."""
    calibration = entry.get("calibration", {})
    lines = ["## Whole-volume detection (`lm_zoo.detection.detect_landmarks`, `lm-zoo detect`)", "",
             f"Command: `{entry['command']}`. Found/not-found threshold {entry['threshold']:g}"
             + (f", shape weight {entry['shape_weight']:g}" if "shape_weight" in entry else "")
             + (f", calibrated on {calibration['data']} ({calibration['objective']})" if calibration else
                " (not calibrated)") + "; search: "
             + ", ".join(f"{k}={v}" for k, v in entry.get("search", {}).items()) + ".", ""]
    lines += ["### Held-out phantom cases (synthetic data)", *_detection_summary_lines(entry["phantom"]), ""]
    if entry.get("phantom_partial"):
        lines += ["### Held-out phantom cases cut to a chest or abdomen-pelvis view (synthetic data)",
                  *_detection_summary_lines(entry["phantom_partial"]), ""]
    if entry.get("real"):
        lines += ["### Real CT (detection)", *_detection_summary_lines(entry["real"]), ""]
    speed = entry.get("speed")
    if speed:
        t = speed["timings"]
        load = speed.get("load_average_1min")
        lines += ["### Speed", f"- **Data:** {speed['data']}; {speed['cpu_count']} CPU cores"
                  + (f" (1-minute load average {load:.1f} at the start: the cores were shared)" if load else ""),
                  f"- {speed['seconds_per_volume']:.1f} s per volume ({speed['patches']} patches; extraction "
                  f"{t['extract_s']:.1f} s, inference {t['inference_s']:.1f} s); naive dense scan "
                  f"{speed['dense_seconds_extrapolated']:.0f} s ({speed['dense_patches']} patches, extrapolated)", ""]
    return lines


def _write_run_outputs(model, out_dir: Path, metrics: dict, command: str | None) -> dict:
    """``mini_vgg25d_<set>.weights.h5``, ``metrics.json`` (with the command line) and the model card
    of a finished run."""
    stem = f"mini_vgg25d_{metrics['weight_set']}"
    metrics["command"] = command
    weights_file = _save_weights(model, out_dir, stem + ".weights.h5")
    # The sidecar carries the file's sha256 (checked whenever the file is loaded by path), its
    # preprocessing and class names, so the file is usable and verifiable outside the registry.
    from lm_zoo import pretrained

    classes = metrics.get("class_names") or (CIFAR10_CLASSES if metrics["weight_set"] == "cifar" else ())
    pretrained.write_sidecar(weights_file, preprocessing=metrics["weight_set"], class_names=classes,
                             data=str(metrics.get("data", "")))
    atomic_write_json(out_dir / "metrics.json", metrics)
    history = read_history(out_dir / "history.csv") if (out_dir / "history.csv").exists() else []
    card = model_card(metrics, command, history, pretrained.sha256_file(weights_file))
    atomic_write_text(out_dir / (stem + ".md"), card)
    return metrics


# ----------------------------------------------------------------------------- shipped cards
SHIPPED_SETS = ("cifar", "landmark", "landmark_phantom")


def shipped_card(weight_set: str, folder=None) -> str:
    """The card of a shipped weight set, regenerated: :func:`model_card` of
    ``<folder>/mini_vgg25d_<set>.metrics.json`` + ``.history.csv`` with the hand-written
    ``.preamble.md`` (no figures: those all come from the run) inserted after the title."""
    import json

    from lm_zoo import pretrained
    from lm_zoo.pretrained import sha256_file

    folder = Path(folder) if folder is not None else Path(pretrained.__file__).parent
    stem = folder / f"mini_vgg25d_{weight_set}"

    metrics = json.loads(Path(f"{stem}.metrics.json").read_text(encoding="utf-8"))
    history_path = Path(f"{stem}.history.csv")
    history = read_history(history_path) if history_path.exists() else []
    weights = Path(f"{stem}.weights.h5")
    card = model_card(metrics, metrics.get("command"), history=history, weights_sha256=sha256_file(weights) if weights.exists() else None)
    title, rest = card.split("\n", 1)
    preamble = Path(f"{stem}.preamble.md").read_text(encoding="utf-8").strip("\n")
    return f"{title}\n\n{preamble}\n{rest}"


def regenerate_shipped_cards(folder=None, sets=SHIPPED_SETS) -> list[Path]:
    """Rewrite ``mini_vgg25d_<set>.md`` of every shipped set from its run files and preamble."""
    from lm_zoo import pretrained

    folder = Path(folder) if folder is not None else Path(pretrained.__file__).parent
    return [atomic_write_text(folder / f"mini_vgg25d_{s}.md", shipped_card(s, folder)) for s in sets]


def _save_weights(model, out_dir: Path, filename: str) -> Path:
    final = out_dir / filename
    with atomic_path(final) as tmp:
        model.save_weights(str(tmp))
    return final


# ----------------------------------------------------------------------------- recipes
def train_cifar(
    out_dir,
    archive=None,
    data_dir=None,
    recipe: Recipe = CIFAR_RECIPE,
    epochs: int | None = None,
    smoke: bool = False,
    verbose=2,
    command: str | None = None,
) -> dict:
    """Train MiniVGG25D on CIFAR-10 (the "cifar" weight set). Returns the metrics dict."""
    import keras

    from lm_zoo.applications import MiniVGG25D, preprocess_input

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(recipe.seed)
    t0 = time.time()
    (x_train, y_train), (x_test, y_test), provenance = load_cifar10(archive, data_dir)
    if smoke:  # a class-mixed subset: the archive is sorted by class
        rng = np.random.default_rng(recipe.seed)
        tr, te = rng.choice(len(x_train), 512, replace=False), rng.choice(len(x_test), 256, replace=False)
        x_train, y_train, x_test, y_test = x_train[tr], y_train[tr], x_test[te], y_test[te]
    epochs = 1 if smoke else (epochs or recipe.epochs)
    x_train = np.asarray(preprocess_input(x_train.astype("float32"), weights="cifar"))
    x_test = np.asarray(preprocess_input(x_test.astype("float32"), weights="cifar"))
    y_train_1h = keras.utils.to_categorical(y_train, 10)
    train = _AugmentedImages(x_train, y_train_1h, recipe.batch_size, recipe.seed, True)
    model = MiniVGG25D(weights=None, classes=10)
    _compile(model, recipe, len(train), epochs)
    t_data = time.time() - t0
    _fit(model, train, None, recipe, epochs, out_dir, verbose=verbose)
    t_train = time.time() - t0 - t_data
    metrics = {
        "weight_set": "cifar",
        "data": provenance,
        "n_train": int(len(x_train)),
        "n_test": int(len(x_test)),
        **classification_metrics(model.predict(x_test, batch_size=1024, verbose=0), y_test, CIFAR10_CLASSES),
        "epochs": epochs,
        "recipe": dataclasses.asdict(recipe),
        "seconds_data": round(t_data, 1),
        "seconds_train": round(t_train, 1),
        "machine": machine_description(),
        "smoke": smoke,
    }
    return _write_run_outputs(model, out_dir, metrics, command)


def load_patch_splits(dataset: str, data_dir=None, splits=("train", "validation", "test"), manual_dir=None):
    """A TFDS patch dataset as NumPy: ``{split: (patches, labels, case_ids)}``, the class names, the
    DatasetInfo and the sorted set of its ``source`` values ("phantom", "user"; read from the data,
    not guessed from the name). ``splits=None``: every split the dataset has.

    The dataset is built locally (offline) when it is not prepared yet (``lm_zoo.tfds_loader``).
    """
    from lm_zoo import tfds_loader

    builder = tfds_loader.prepare(tfds_loader.get_builder(dataset, data_dir, error=TrainingDataError), manual_dir)
    if splits is None:  # every split it has (a cohort of one or two cases has no validation/test)
        splits = tuple(builder.info.splits.keys())
    has_source = "source" in builder.info.features
    out, sources = {}, set()
    for split in splits:
        arrays = tfds_loader.split_arrays(
            builder, split, ["patch", "label", "case_id", *(["source"] if has_source else [])], error=TrainingDataError
        )
        out[split] = (arrays["patch"], arrays["label"].astype("int64"), arrays["case_id"])
        sources |= set(arrays["source"].tolist()) if has_source else {"unknown"}
    return out, builder.info.features["label"].names, builder.info, sorted(sources)


def train_landmark(
    out_dir,
    dataset: str = "landmark_ct_patches/phantom_lm60",
    data_dir=None,
    recipe: Recipe = LANDMARK_RECIPE,
    epochs: int | None = None,
    init_from=None,
    smoke: bool = False,
    verbose=2,
    command: str | None = None,
    real_dataset: str | None = None,
    real_manual_dir=None,
    real_share: float = REAL_SHARE,
    real_data_dir=None,
) -> dict:
    """Train MiniVGG25D to classify landmark patches (the "landmark" weight set).

    ``init_from``: a ``.weights.h5`` of an earlier stage (e.g. the 20-class model) whose
    convolutional blocks initialise this one, as in the method's 20 → 60 class progression.

    ``real_dataset``: a patch dataset of real CT (e.g. ``landmark_ct_patches/manual_adapt`` on a
    folder of CTs with TotalSegmentator segmentations, ``real_manual_dir``) mixed into the training
    split: every split of it is training data, repeated so that about ``real_share`` of each epoch
    is real; it is prepared in ``real_data_dir`` (default ``data_dir``). Its classes are matched to
    ``dataset``'s by name. Validation and test stay on
    ``dataset``, so figures on the real cases are training-data figures, and the metrics say so.
    """
    import keras
    import tensorflow as tf

    from lm_zoo.applications import MiniVGG25D, preprocess_input

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(recipe.seed)
    t0 = time.time()
    splits, class_names, info, sources = load_patch_splits(dataset, data_dir)
    (x_tr, y_tr, _), (x_va, y_va, _), (x_te, y_te, c_te) = (splits[s] for s in ("train", "validation", "test"))
    if smoke:
        x_tr, y_tr, x_va, y_va = x_tr[:256], y_tr[:256], x_va[:128], y_va[:128]
    real = None
    if real_dataset:
        if not 0.0 < real_share < 1.0:
            raise TrainingDataError(f"real_share must be between 0 and 1 (exclusive), got {real_share}")
        real = real_training_patches(real_dataset, class_names, real_data_dir or data_dir, real_manual_dir)
        xr, yr = (real.pop("x"), real.pop("y"))
        if smoke:
            xr, yr = xr[:64], yr[:64]
        repeats = max(1, int(np.ceil(real_share * len(x_tr) / ((1.0 - real_share) * len(xr)))))
        x_tr = np.concatenate([x_tr, *([xr] * repeats)])
        y_tr = np.concatenate([y_tr, *([yr] * repeats)])
        real.update(repeats=repeats, share=round(repeats * len(xr) / len(x_tr), 4), n_patches=int(len(xr)))
        sources = sorted(set(sources) | set(real["sources"]))
    epochs = 1 if smoke else (epochs or recipe.epochs)
    n_classes = len(class_names)
    prep = lambda x: np.asarray(preprocess_input(x, weights="landmark", modality="ct"))  # noqa: E731
    x_va, x_te = prep(x_va), prep(x_te)
    augment = recipe.intensity_augmentation
    if not augment:
        x_tr = prep(x_tr)

    def randomized(x, seed):
        # raw HU in, network input out: domain randomisation first, then the weights' preprocessing
        from lm_zoo.augment import randomize

        return prep(randomize(x, [recipe.seed, int(seed)]))

    def pipeline(x, y, shuffle, randomize_batches=False):
        ds = tf.data.Dataset.from_tensor_slices((x, keras.utils.to_categorical(y, n_classes))).cache()
        if shuffle:
            ds = ds.shuffle(len(x), seed=recipe.seed, reshuffle_each_iteration=True)
        ds = ds.batch(recipe.batch_size)
        if randomize_batches:
            # one seed per batch from a seeded stream that differs per epoch: deterministic runs
            seeds = tf.data.Dataset.random(seed=recipe.seed, rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip((ds, seeds)).map(
                lambda xy, s: (tf.ensure_shape(tf.numpy_function(randomized, [xy[0], s], tf.float32), xy[0].shape), xy[1]),
                num_parallel_calls=1, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    train, val = pipeline(x_tr, y_tr, True, augment), pipeline(x_va, y_va, False)
    model = MiniVGG25D(weights=None, classes=n_classes)
    head_kept = bool(init_from) and _load_backbone(model, init_from, class_names)
    _compile(model, recipe, int(np.ceil(len(x_tr) / recipe.batch_size)), epochs)
    t_data = time.time() - t0
    _fit(model, train, val, recipe, epochs, out_dir, verbose=verbose)
    t_train = time.time() - t0 - t_data
    metrics = {
        "weight_set": "landmark",
        "dataset": dataset,
        "data": f"{dataset} v{info.version} (source: {'+'.join(sorted(set(sources) - set(real['sources']) if real else sources))})"
        + (f" + real training patches {real['data']}" if real else ""),
        "source": "+".join(sources),
        **({"real_training": real} if real else {}),
        "class_names": list(class_names),
        "n_train": int(len(x_tr)),
        "n_validation": int(len(x_va)),
        "n_test": int(len(x_te)),
        "n_test_cases": int(len(np.unique(c_te))),
        **classification_metrics(model.predict(x_te, batch_size=1024, verbose=0), y_te, class_names, groups=c_te),
        "epochs_max": epochs,
        "recipe": dataclasses.asdict(recipe),
        "init_from": str(init_from) if init_from else None,
        **({"init_head_kept": head_kept} if init_from else {}),
        "seconds_data": round(t_data, 1),
        "seconds_train": round(t_train, 1),
        "machine": machine_description(),
        "smoke": smoke,
    }
    return _write_run_outputs(model, out_dir, metrics, command)


def real_training_patches(real_dataset: str, class_names, data_dir=None, manual_dir=None) -> dict:
    """Every split of ``real_dataset`` as training arrays ``x`` (raw HU) and ``y`` (indices into
    ``class_names``, matched by name), with the cases, version and sources it came from."""
    splits, real_names, info, real_sources = load_patch_splits(real_dataset, data_dir, splits=None, manual_dir=manual_dir)
    names = list(class_names)
    unknown = sorted(set(real_names) - set(names))
    if unknown:
        raise TrainingDataError(
            f"real dataset {real_dataset}: class(es) {unknown} are not classes of the training dataset "
            f"({len(names)} classes); rename them or leave them out of its classes.txt"
        )
    remap = np.array([names.index(n) for n in real_names], dtype="int64")
    x = np.concatenate([v[0] for v in splits.values()])
    y = remap[np.concatenate([v[1] for v in splits.values()])]
    if len(x) == 0:
        raise TrainingDataError(f"real dataset {real_dataset}: no patches")
    cases = sorted({str(c.decode() if isinstance(c, bytes) else c) for v in splits.values() for c in v[2]})
    return {"x": x, "y": y, "dataset": real_dataset, "data": f"{real_dataset} v{info.version} (source: {'+'.join(real_sources)})",
            "sources": real_sources, "cases": cases,
            "classes_present": sorted({names[i] for i in np.unique(y)})}


def _load_backbone(model, weights_file, class_names=None):
    """Copy every layer except the classifier from a model of the same family; the classifier too
    when the earlier stage had the same classes in the same order (a second stage on new data)."""
    from lm_zoo.applications import MiniVGG25D
    from lm_zoo.pretrained import describe_weights

    donor = MiniVGG25D(weights=str(weights_file))  # class count read from the file's head
    same_head = class_names is not None and list(describe_weights(str(weights_file)).class_names) == list(class_names)
    for layer in model.layers:
        if layer.weights and (layer.name != "predictions" or same_head):
            layer.set_weights(donor.get_layer(layer.name).get_weights())
    return same_head


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="lm_zoo.train maintenance")
    parser.add_argument("--regenerate-cards", action="store_true",
                        help="rewrite pretrained/mini_vgg25d_*.md from their metrics.json, history.csv and preamble")
    parser.add_argument("--folder", default=None, help="folder of the shipped sets (default: lm_zoo.pretrained)")
    cli_args = parser.parse_args()
    if cli_args.regenerate_cards:
        for written in regenerate_shipped_cards(cli_args.folder):
            print(written)
