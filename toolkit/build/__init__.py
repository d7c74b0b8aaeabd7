"""TensorRT engines: ``edgetk build``.

- ``planning``: the optimization profile from the ONNX input shapes and the batch flags;
- ``precision``: the precision an ONNX file builds to (fp32, fp16, int8 QDQ and its target);
- ``builder``: ``build_engine(onnx, engine, BuildOptions(...))`` for TensorRT 10.3+ and 11.x;
- ``sidecar``: ``model.engine.json`` (spec, TensorRT, GPU, ONNX hash, options) and its check;
- ``gpu``: lazy tensorrt / cuda-python imports and the GPU's identity.

Nothing here imports tensorrt until a build or an engine needs it.
"""
