"""The training loop the recipes share: SGD with warm-up and cosine decay, a logged, resumable
``fit``, and a description of the machine for the run's metrics."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from lm_zoo._atomic import atomic_path
from lm_zoo.training.recipe import Recipe

__all__ = ["compile_model", "fit", "machine_description", "save_weights"]


def compile_model(model, recipe: Recipe, steps_per_epoch: int, total_epochs: int):
    """SGD (Nesterov) with ``recipe``'s warm-up then cosine decay, label-smoothed cross-entropy, top-1/top-5."""
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

def machine_description() -> str:
    """CPU, Keras version and backend, and the accelerator if any: the card says where the run ran."""
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


def fit(model, train, val, recipe: Recipe, epochs: int, out_dir: Path, callbacks_extra=(), verbose=2):
    """``model.fit`` logging ``history.csv`` (with epoch times) and resumable from ``out_dir/backup``;
    early stopping on validation top-1 when the recipe asks for it."""
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


def save_weights(model, out_dir: Path, filename: str) -> Path:
    """``model``'s weights as ``out_dir/filename``, written aside and moved into place."""
    final = out_dir / filename
    with atomic_path(final) as tmp:
        model.save_weights(str(tmp))
    return final
