"""The transfer comparison of the method: frozen MiniVGG25D features + AdaBoost, landmark vs CIFAR.

- :mod:`~lm_zoo.evaluation.backbones`: weight sets as frozen feature extractors (tf.data batched).
- :mod:`~lm_zoo.evaluation.data`: any TFDS dataset with ``patch``/``label``/``case_id``.
- :mod:`~lm_zoo.evaluation.curves`: AdaBoost with stumps, the AUC curve from one staged fit.
- :mod:`~lm_zoo.evaluation.statistics`: case-level paired bootstrap, bands and p-values.
- :mod:`~lm_zoo.evaluation.finetune`: the same backbones trained end to end with a new head.
- :mod:`~lm_zoo.evaluation.plots`, :mod:`~lm_zoo.evaluation.report`: PNG, CSV, JSON, Markdown.
- :mod:`~lm_zoo.evaluation.run`: :func:`evaluate` ties them together (``lm-zoo evaluate``).
"""
from lm_zoo.evaluation.errors import EvaluationError
from lm_zoo.evaluation.run import EvaluationConfig, EvaluationResult, compare_features, evaluate

__all__ = ["EvaluationConfig", "EvaluationError", "EvaluationResult", "compare_features", "evaluate"]
