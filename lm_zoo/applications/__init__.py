"""Keras applications of lm_zoo (shaped after ``keras.applications``)."""
from lm_zoo.applications.inference import predict_batched
from lm_zoo.applications.mini_vgg25d import (
    FEATURE_LAYER,
    MiniVGG25D,
    WeightsLoadError,
    check_weights,
    classes_in_weights_file,
    decode_predictions,
    preprocess_input,
)

__all__ = ["MiniVGG25D", "preprocess_input", "decode_predictions", "FEATURE_LAYER", "WeightsLoadError",
           "classes_in_weights_file", "check_weights", "predict_batched"]
