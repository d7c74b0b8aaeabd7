"""TensorRT engines: ``edgetk build``.

- ``planning``: the build options, and what is decided before TensorRT is touched (the
  precision check, the optimization profile from the ONNX input shapes and the batch flags);
- ``precision``: the precision an ONNX file builds to (fp32, fp16, int8 QDQ and its target);
- ``network``: the TensorRT side: the network parsed from the ONNX file, the builder's config;
- ``builder``: ``build_engine(onnx, engine, BuildOptions(...))`` for TensorRT 10.3+ and 11.x.

The engine's sidecar (``model.engine.json``) is :mod:`toolkit.model.sidecar`; the lazy
tensorrt / cuda-python imports and the GPU's identity are :mod:`toolkit.platform.gpu`.
Nothing here imports tensorrt until a build or an engine needs it.
"""
