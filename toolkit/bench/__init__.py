"""Benchmarks: latency statistics (``stats``), the machine (``machine``), the side-by-side
runner (``runner.benchmark``) and its reports (``report``)."""
