"""ResNet-18 at 224, batch 1, ONNX Runtime CPU: fp32 vs int8 (cpu target, 8-bit and 7-bit weights).

    python benchmarks/quantize_resnet18.py [--out DIR] [--calib-size 32] [--rounds 3] [--iters 60]

Exports ``zoo:resnet18`` (random init: latency does not depend on the weights), quantizes it for
the cpu target with synthetic calibration (with this CPU's weight range and with the 7-bit
weights an AVX2-only CPU gets), then measures the models with
``toolkit.bench.runner.benchmark``. The runner interleaves backends, not models, so the three
models are measured in alternating rounds (fp32, cpu, trt, fp32, cpu, trt...) and each model's
p50 is the median of its rounds' p50s: a noisy phase of the machine hits all three alike.
Prints (and with ``--json`` writes) the latencies and the ratios to fp32.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/quantize_resnet18", help="work folder")
    parser.add_argument("--calib-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--json", dest="json_path", default=None, help="write results here")
    args = parser.parse_args()

    from toolkit.bench.runner import benchmark
    from toolkit.export import export_onnx
    from toolkit.platform.cpu import int8_features
    from toolkit.quantize import quantize_model

    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / "resnet18.onnx"
    if not fp32.exists():
        export_onnx("zoo:resnet18", fp32)
    models = {"fp32": fp32}
    quant: dict[str, dict[str, object]] = {}
    # Random weights: agreement means nothing here, so the label-free gate is off
    # (min_agreement=0). The tensorrt target is left out: on a CPU it runs emulated (Q/DQ as
    # float), and that latency is not int8 latency. Both cpu variants are measured: 8-bit
    # weights for this CPU when it has VNNI, and 7-bit (reduce_range, what an AVX2-only CPU
    # gets) so that the cost of reduce_range is a number from the same run.
    host = int8_features()["isa"]
    variants = {"cpu": None, "cpu-avx2": "avx2"} if host != "avx2" else {"cpu": None}
    for name, cpu in variants.items():
        out = work / f"resnet18.{name}-int8.onnx"
        t0 = time.perf_counter()
        report = quantize_model(
            fp32, out, target="cpu", cpu=cpu, calib="synthetic", calib_size=args.calib_size,
            min_agreement=0, force=True,
        )  # fmt: skip
        quant[name] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "cpu_isa": report.spec.extra["quantization"]["cpu_isa"],
            "reduce_range": report.spec.extra["quantization"]["reduce_range"],
            "size_mb": round(report.sizes["quantized_bytes"] / 1e6, 2),
        }
        models[f"int8-{name}"] = out

    p50s: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, path in models.items():
            rep = benchmark([str(path)], ["ort-cpu"], [1], warmup=10, iters=args.iters)
            row = rep.results[0]
            assert row.ok and row.latency_ms, row.status
            p50s[name].append(row.latency_ms["p50"])
    machine = rep.machine
    result = {
        "model": "zoo:resnet18 224x224 batch 1, ONNX Runtime CPU",
        "machine": {"cpu": machine.get("cpu"), "cores": machine.get("cores")},
        "calibration": f"synthetic, {args.calib_size} samples, minmax",
        "p50_ms": {k: round(statistics.median(v), 2) for k, v in p50s.items()},
        "p50_ms_rounds": {k: [round(x, 2) for x in v] for k, v in p50s.items()},
        "quantize": quant,
        "fp32_size_mb": round(fp32.stat().st_size / 1e6, 2),
    }
    base = result["p50_ms"]["fp32"]
    result["ratio_to_fp32"] = {k: round(v / base, 3) for k, v in result["p50_ms"].items()}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_path:
        Path(args.json_path).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
