"""Inference forward pass of a layer chain with each BatchNormalization folded into the Conv2D or
Dense before it.

Keras runs inference-mode BatchNormalization as separate multiply and add passes over every
activation, which keeps oneDNN from fusing convolution, bias and ReLU into one kernel; folding
the moving statistics into the kernel and a bias gives the same numbers (float rounding aside)
in fewer passes over memory (measured by ``benchmarks/inference.py``). The folded kernel is
computed inside the traced function from the layers' live variables, so a model trained or
reloaded after tracing is never run on stale weights; the extra cost is one pass over the
weights per batch.

TensorFlow backend only (the caller's compiled path). Only plain chains are folded (each layer's single input is the previous layer's output, one
output, float32); anything else returns ``None`` and the caller uses the model as it is.
"""
from __future__ import annotations

__all__ = ["folded_forward"]


def folded_forward(model):
    """A function ``x -> model(x, training=False)`` with BatchNorms folded, or ``None`` when
    ``model`` is not a float32 chain with at least one foldable Conv2D/Dense + BatchNormalization."""
    import keras

    layers = list(getattr(model, "layers", []))
    if len(layers) < 2 or not isinstance(layers[0], keras.layers.InputLayer):
        return None
    try:
        chain = all(layer.input is prev.output for prev, layer in zip(layers, layers[1:]))
        ends = [model.inputs[0] is layers[0].output, len(model.inputs) == len(model.outputs) == 1,
                model.outputs[0] is layers[-1].output]  # the layers' first use is this model's
        chain = chain and all(ends)
    except (AttributeError, ValueError, TypeError):  # a layer used more than once, or a subclassed model
        return None
    if not chain or any(getattr(layer, "compute_dtype", "float32") != "float32" for layer in layers):
        return None
    steps, i = [], 1
    while i < len(layers):
        if i + 1 < len(layers) and _foldable(layers[i], layers[i + 1]):
            steps.append(_fused(layers[i], layers[i + 1]))
            i += 2
        else:
            layer = layers[i]
            steps.append(lambda x, layer=layer: layer(x, training=False))
            i += 1
    if len(steps) == len(layers) - 1:
        return None

    def forward(x):
        for step in steps:
            x = step(x)
        return x
    return forward


def _foldable(layer, bn) -> bool:
    import keras

    if not isinstance(bn, keras.layers.BatchNormalization) or bn.axis not in (-1, len(bn.input.shape) - 1):
        return False
    if isinstance(layer, keras.layers.Dense):
        plain = type(layer) is keras.layers.Dense and len(layer.input.shape) == 2
    else:
        plain = type(layer) is keras.layers.Conv2D and layer.groups == 1 and layer.data_format == "channels_last"
    # a LoRA or quantized layer's kernel is not the plain variable folded here
    return (plain and layer.activation is keras.activations.linear and not getattr(layer, "lora_enabled", False)
            and getattr(layer, "quantization_mode", None) is None)


def _fused(layer, bn):
    """``bn(layer(x))`` in inference mode as one layer with a folded kernel and bias."""
    import tensorflow as tf
    from keras import ops

    conv = not hasattr(layer, "units")

    def step(x):
        scale = ops.rsqrt(bn.moving_variance + bn.epsilon)
        if bn.scale:
            scale = scale * bn.gamma
        bias = -bn.moving_mean * scale
        if layer.use_bias:
            bias = bias + layer.bias * scale
        if bn.center:
            bias = bias + bn.beta
        kernel = layer.kernel * scale  # scale runs along the output channels, the kernel's last axis
        if conv:
            y = ops.conv(x, kernel, strides=layer.strides, padding=layer.padding, data_format="channels_last",
                         dilation_rate=layer.dilation_rate)
        else:
            y = ops.matmul(x, kernel)
        return tf.nn.bias_add(y, bias)  # BiasAdd (not Add) is what oneDNN fuses with the conv and ReLU
    return step
