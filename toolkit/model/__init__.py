"""What an edgetk model file is: the spec (``spec``), the ONNX file and its embedded spec
(``modelfile``), and the engine's sidecar ``model.engine.json`` (``sidecar``).

Everything above reads and writes models through these three modules.
"""
