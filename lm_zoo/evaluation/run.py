"""The transfer comparison end to end: dataset -> frozen features -> AdaBoost curves -> report."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from lm_zoo.evaluation import backbones as bb
from lm_zoo.evaluation import curves, data, statistics
from lm_zoo.evaluation.errors import EvaluationError

DEFAULT_MAX_LEARNERS = 200
DEFAULT_SEEDS = 3
DEFAULT_BOOTSTRAP = 1000
DEFAULT_FINETUNE_EPOCHS = 2
DEFAULT_OUTPUT = "lm_zoo_evaluation"
OUTPUT_BYTES = 5 * 2**20  # free space asked of --out's disk before the run starts


@dataclass
class EvaluationConfig:
    dataset: str = data.DEFAULT_DATASET
    data_dir: str | None = None
    manual_dir: str | None = None
    backbones: tuple = bb.DEFAULT_BACKBONES
    layer: str = bb.DEFAULT_LAYER
    max_learners: int = DEFAULT_MAX_LEARNERS
    seeds: int | list = DEFAULT_SEEDS
    bootstrap: int = DEFAULT_BOOTSTRAP
    alpha: float = 0.05
    finetune: bool = True
    finetune_epochs: int = DEFAULT_FINETUNE_EPOCHS
    batch_size: int = 512
    n_jobs: int = -1
    seed: int = 0  # test-case bootstrap, random backbone initialisation, fine-tuning
    output: str = DEFAULT_OUTPUT
    command: str = "lm-zoo evaluate"

    def validated(self) -> "EvaluationConfig":
        curves.check_learners(self.max_learners)
        self.seeds = curves.check_seeds(self.seeds)
        if isinstance(self.bootstrap, bool) or not isinstance(self.bootstrap, (int, np.integer)) or self.bootstrap < 1:
            raise EvaluationError(f"bootstrap (number of test-case resamples) must be an integer >= 1, got {self.bootstrap!r}")
        if not 0 < self.alpha < 1:
            raise EvaluationError(f"alpha must lie in (0, 1), got {self.alpha!r}")
        if self.finetune and (not isinstance(self.finetune_epochs, (int, np.integer)) or self.finetune_epochs < 1):
            raise EvaluationError(f"finetune_epochs must be an integer >= 1, got {self.finetune_epochs!r}")
        if self.manual_dir is not None and not Path(self.manual_dir).expanduser().is_dir():
            raise FileNotFoundError(f"manual_dir {str(self.manual_dir)!r} is not a folder")
        return self


@dataclass
class EvaluationResult:
    config: dict
    dataset: dict
    learners: np.ndarray
    curves: dict  # backbone -> statistics.CurveStats
    differences: list  # statistics.Difference, landmark-cifar (in given order) first
    backbone_weights: dict
    finetune: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    alpha: float = 0.05


def _progress(enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return lambda it, total=None: tqdm(it, total=total, desc=desc, unit="it", leave=True)


@contextmanager
def _timed(timings: dict, stage: str):
    start = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def compare_features(features: dict, train_labels, train_case_ids, test_labels, test_case_ids, *, max_learners: int,
                     seeds, bootstrap: int, seed: int = 0, alpha: float = 0.05, n_jobs: int = -1,
                     progress: bool = False, timings: dict | None = None):
    """The statistical core on any features.

    Args:
        features: backbone -> (train_features (n_train, d), test_features (n_test, d)), in the
            order comparisons should be made (the first pair is the headline difference).
    Returns:
        (learners (K,), backbone -> CurveStats, [Difference for every ordered pair]).
    """
    max_learners = curves.check_learners(max_learners)
    seeds = curves.check_seeds(seeds)
    timings = {} if timings is None else timings
    test_labels = np.asarray(test_labels)
    with _timed(timings, "adaboost fits"):
        scores = curves.fit_all(features, np.asarray(train_labels), np.asarray(train_case_ids),
                                max_learners=max_learners, seeds=seeds, n_jobs=n_jobs,
                                progress=_progress(progress, "AdaBoost fits (backbone x seed)"))
    with _timed(timings, "bootstrap"):
        _, index = statistics.case_index(test_case_ids)
        strata = statistics.case_strata(test_labels, index, int(index.max()) + 1)
        resamples = statistics.case_bootstrap(strata, bootstrap, seed)
        seed_of = statistics.replicate_seeds(bootstrap, len(seeds))
        names = list(features)
        stats = {}
        loop = _progress(progress, "bootstrap AUC curves")
        for name in (loop(names, total=len(names)) if loop else names):
            stats[name] = statistics.curve_stats(scores[name], test_labels, index, resamples, seed_of)
        diffs = [statistics.paired_difference(a, stats[a], b, stats[b], alpha) for a, b in combinations(names, 2)]
    return np.arange(1, max_learners + 1), stats, diffs


def _dataset_summary(d: data.PatchData) -> dict:
    return {
        "name": d.name,
        "version": d.version,
        "provenance": d.provenance,
        "data_folder": d.data_folder,
        "manual_dir": d.manual_dir or None,
        "built_now": d.built_now,
        "origin": d.origin,
        "negative_class": d.class_names[0],
        "positive_class": d.class_names[1],
        "train_cases": d.train.n_cases,
        "test_cases": d.test.n_cases,
        "train_positive_cases": d.train.n_positive_cases,
        "test_positive_cases": d.test.n_positive_cases,
        "train_patches": int(len(d.train.labels)),
        "test_patches": int(len(d.test.labels)),
        "train_positive_patches": int(d.train.labels.sum()),
        "test_positive_patches": int(d.test.labels.sum()),
        **dict(zip(("test_negative_repeated_in_train", "test_positive_repeated_in_train"),
                   data.repeated_in_train(d.train, d.test))),
    }


def _weights_label(b) -> str:
    """What a backbone's figures came from: weight set or file with its sha256 prefix (the shipped
    sets may be retrained: the hash tells which ones a report used), or the random seed."""
    from lm_zoo import pretrained

    if b.weights is None:
        return f"random init, seed {b.seed}"
    if b.weights in pretrained.WEIGHT_SETS and pretrained.WEIGHT_SETS[b.weights].sha256:
        return f"{b.weights}, sha256 {pretrained.WEIGHT_SETS[b.weights].sha256[:12]}"  # verified when loaded
    return f"{b.weights}, sha256 {pretrained.sha256_file(b.weights)[:12]}"


def _build_extractors(backbones, layer: str, batch_size: int):
    extractors = {}
    for b in backbones:
        try:
            extractors[b.name] = bb.feature_extractor(b, layer, batch_size)
        except EvaluationError:
            raise
        except (ValueError, FileNotFoundError) as err:
            raise EvaluationError(
                f"backbone {b.name!r} (weights {b.weights!r}) cannot be loaded: {err} — choose other "
                f"--backbones ('random' is always available, or a .weights.h5 path)"
            ) from err
    return extractors


def _finetune(backbones, d: data.PatchData, resamples, *, epochs: int, seed: int, alpha: float, progress: bool) -> dict:
    from lm_zoo.evaluation import finetune

    _, index = statistics.case_index(d.test.case_ids)
    full = np.ones((1, resamples.shape[1]))
    out = {}
    for b in backbones:
        # A fresh copy: the frozen feature extractor must not see the fine-tuned weights.
        base = bb.build_model(b)
        if progress:
            print(f"fine-tuning {b.name} end to end for {epochs} epoch(s)", flush=True)
        scores = finetune.finetune_scores(
            base, bb.preprocess(d.train.patches, b), d.train.labels, bb.preprocess(d.test.patches, b),
            epochs=epochs, seed=seed, verbose=finetune.fit_verbosity(progress),
        )
        auc = statistics.weighted_auc(scores, d.test.labels, index, full)[0]
        low, high = statistics.percentile_interval(statistics.weighted_auc(scores, d.test.labels, index, resamples), alpha)
        out[b.name] = {"auc": round(float(auc), 4), "ci_low": round(float(low), 4), "ci_high": round(float(high), 4),
                       "epochs": int(epochs), "learning_rate": finetune.LEARNING_RATE}
    return out


def evaluate(config: EvaluationConfig | None = None, *, progress: bool = True) -> EvaluationResult:
    """Run the comparison and write every output to ``config.output``."""
    from lm_zoo.evaluation import plots, report

    from lm_zoo.outputs import check_output_dir, output_lock, staged_output

    config = (config or EvaluationConfig()).validated()
    # Before any slow work: the output set (PNG, CSVs, JSON, Markdown) is well under 5 MiB.
    out = check_output_dir(config.output, argument="output folder (--out)", needed_bytes=OUTPUT_BYTES)
    # Held for the whole run: a second run into the same folder is refused at its start, not
    # left to replace this run's results minutes later.
    with output_lock(out, argument="output folder (--out)"):
        return _evaluate(config, out, progress)


def _evaluate(config: EvaluationConfig, out, progress: bool) -> EvaluationResult:
    from lm_zoo.evaluation import plots, report
    from lm_zoo.outputs import staged_output

    backbones = bb.resolve_all(config.backbones, config.seed)
    timings: dict = {}
    dataset_name = config.dataset
    data.get_builder(dataset_name, config.data_dir)  # bad dataset: fail before any slow work
    with _timed(timings, "load backbones"):
        extractors = _build_extractors(backbones, config.layer, config.batch_size)
    with _timed(timings, "load dataset"):
        d = data.load(dataset_name, config.data_dir, config.manual_dir)
        data.check_split(d.train, "train", dataset_name)
        data.check_split(d.test, "test", dataset_name)
    features = {}
    with _timed(timings, "extract features"):
        for b in backbones:
            features[b.name] = tuple(
                extractors[b.name].extract(split.patches, _progress(progress, f"{b.name} features ({role})"))
                for role, split in (("train", d.train), ("test", d.test))
            )
    learners, stats, diffs = compare_features(
        features, d.train.labels, d.train.case_ids, d.test.labels, d.test.case_ids,
        max_learners=config.max_learners, seeds=config.seeds, bootstrap=config.bootstrap, seed=config.seed,
        alpha=config.alpha, n_jobs=config.n_jobs, progress=progress, timings=timings,
    )
    ft = {}
    if config.finetune:
        with _timed(timings, "fine-tuning"):
            _, index = statistics.case_index(d.test.case_ids)
            strata = statistics.case_strata(d.test.labels, index, int(index.max()) + 1)
            resamples = statistics.case_bootstrap(strata, config.bootstrap, config.seed)
            ft = _finetune(backbones, d, resamples, epochs=config.finetune_epochs, seed=config.seed,
                           alpha=config.alpha, progress=progress)
    result = EvaluationResult(
        config={**asdict(config), "backbones": [b.name for b in backbones]},
        dataset=_dataset_summary(d),
        learners=learners,
        curves=stats,
        differences=diffs,
        backbone_weights={b.name: _weights_label(b) for b in backbones},
        finetune=ft,
        timings=timings,
        alpha=config.alpha,
    )
    # The whole output set is written aside and moved into place: a failed run leaves no folder
    # behind and never one mixing two runs.
    with staged_output(out, argument="output folder (--out)") as staging:
        with _timed(timings, "plot"):
            title = (f"{d.name} ({d.provenance} data): {d.test.n_cases} test cases, "
                     f"{len(config.seeds)} seed(s), {config.bootstrap} case bootstraps")
            curves_for_plot = {n: (s.auc, *s.interval(config.alpha)) for n, s in stats.items()}
            plots.plot_curves(staging / "auc_vs_weak_learners.png", learners, curves_for_plot,
                              diffs, title=title, alpha=config.alpha)
        report.write_all(result, staging)
    return result
