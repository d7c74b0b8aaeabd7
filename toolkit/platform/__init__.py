"""The machine the toolkit runs on: CPU cores and int8 features (``cpu``), the CPU name,
memory and library versions (``machine``), NVIDIA GPUs, CUDA and TensorRT imports (``gpu``).

Probes only: nothing here imports tensorrt or cuda-python until asked to.
"""
