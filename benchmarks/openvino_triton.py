"""OpenVINO CPU vs ONNX Runtime CPU (fp32, int8), and Triton (PyTriton + ORT) for 1 and 4
clients, in one run (docs/benchmarks.md, "OpenVINO and Triton").

    python benchmarks/openvino_triton.py --out /tmp/ovt.json

Models: zoo ResNet-18 (224, random weights) and the demo's defect detector (zoo defect-det at
its own size). int8: ``edgetk quantize --target cpu`` with synthetic calibration. Latency rows
are interleaved in rounds (the machine is noisy in phases); each figure is the median of the
rounds' medians. The Triton rows serve the ORT session through PyTriton on loopback ports;
clients are threads of this process (the gRPC client releases the GIL while it waits).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from toolkit.backends import open_session


def _export(name: str, out: Path) -> Path:
    import torch

    from toolkit.export import export_onnx
    from toolkit.loading import LoadedModel
    from toolkit.zoo import create_model

    torch.manual_seed(0)
    module, spec = create_model(name, pretrained=False)
    path = out / f"{name}.onnx"
    export_onnx(LoadedModel(module, spec, f"zoo:{name}"), path)
    return path


def _int8(path: Path, target: str = "cpu") -> Path:
    from toolkit.quantize.api import quantize_model

    out = path.with_name(f"{path.stem}.int8-{target}.onnx")
    quantize_model(path, out, target=target, calib="synthetic", calib_size=16, min_agreement=0)
    return out


def _fp16(path: Path) -> Path:
    from toolkit.quantize.api import quantize_model

    out = path.with_name(f"{path.stem}.fp16.onnx")
    quantize_model(path, out, precision="fp16", calib="synthetic", calib_size=8)
    return out


def _openvino_extra(fp32: Path, rounds: int, iters: int) -> dict:
    """OpenVINO alone: which file layout it runs best (fp32, fp16, int8 of either target),
    and the latency vs throughput hint at batch 8."""
    files = {"fp32": fp32, "fp16": _fp16(fp32), "int8 cpu-target": _int8(fp32, "cpu"),
             "int8 tensorrt-target": _int8(fp32, "tensorrt")}  # fmt: skip
    sessions = {k: open_session(p, "openvino:CPU") for k, p in files.items()}
    c, h, w = sessions["fp32"].spec.input.shape[1:]
    x = np.random.default_rng(0).random((1, c, h, w), dtype=np.float32)
    out: dict = {"layouts_b1_ms": _latency(sessions, x, rounds, iters)}
    for s in sessions.values():
        s.close()
    hints = {h: open_session(fp32, "openvino:CPU", hint=h) for h in ("latency", "throughput")}
    x8 = np.random.default_rng(0).random((8, c, h, w), dtype=np.float32)
    ms = _latency(hints, x8, rounds, max(3, iters // 4))
    out["hints_b8_fps"] = {k: round(8000.0 / v, 1) for k, v in ms.items()}
    out["infer_requests"] = {k: s.nireq for k, s in hints.items()}
    for s in hints.values():
        s.close()
    return out


def _latency(sessions: dict[str, object], x: np.ndarray, rounds: int, iters: int) -> dict:
    per: dict[str, list[float]] = {k: [] for k in sessions}
    for s in sessions.values():
        for _ in range(5):
            s.infer(x)
    for _ in range(rounds):
        for k, s in sessions.items():
            t = []
            for _ in range(iters):
                t0 = time.perf_counter()
                s.infer(x)
                t.append(time.perf_counter() - t0)
            per[k].append(float(np.median(t)) * 1e3)
    return {k: round(float(np.median(v)), 2) for k, v in per.items()}


def _clients(make, n: int, x: np.ndarray, seconds: float) -> dict:
    sessions = [make() for _ in range(n)]
    lat: list[list[float]] = [[] for _ in range(n)]
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        s = sessions[i]
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            s.infer(x)
            lat[i].append(time.perf_counter() - t0)

    for s in sessions:
        s.infer(x)
    stop = time.perf_counter() + seconds
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in sessions:
        s.close()
    allv = np.array([v for li in lat for v in li]) * 1e3
    return {"clients": n, "calls": int(allv.size), "throughput_fps": round(allv.size / seconds, 1),
            "p50_ms": round(float(np.percentile(allv, 50)), 2),
            "p99_ms": round(float(np.percentile(allv, 99)), 2)}  # fmt: skip


def _triton(path: Path, seconds: float) -> dict:
    from toolkit.serve import ServeOptions, serve_triton

    spec_s = open_session(path, "ort-cpu")
    c, h, w = spec_s.spec.input.shape[1:]
    x = np.random.default_rng(0).random((1, c, h, w), dtype=np.float32)
    out: dict = {"model": path.stem}
    out["in_process_1"] = _clients(lambda: open_session(path, "ort-cpu"), 1, x, seconds)
    out["in_process_4"] = _clients(lambda: open_session(path, "ort-cpu", threads=1), 4, x, seconds)
    opts = ServeOptions(name="m", grpc_port=18411, http_port=18410, metrics_port=18412,
                        max_batch=8, queue_delay_us=2000)  # fmt: skip
    with serve_triton(spec_s, opts) as srv:
        for shm in (True, False):
            from toolkit.backends.triton import TritonSession

            for n in (1, 4):
                key = f"triton_{n}" + ("_shm" if shm else "_grpc")
                out[key] = _clients(
                    lambda shm=shm: TritonSession(srv.url, shared_memory=shm), n, x, seconds
                )
    spec_s.close()
    one = out["in_process_1"]["p50_ms"]
    out["overhead_per_call_ms"] = {k: round(v["p50_ms"] - one, 2)
                                   for k, v in out.items() if k.startswith("triton_1")}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--only-extra", action="store_true", help="OpenVINO layouts and hints only")
    a = ap.parse_args()
    from toolkit.platform.machine import cpu_name

    work = Path(tempfile.mkdtemp(prefix="ovt-"))
    report: dict = {"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d"), "latency_ms": {}}
    if a.only_extra:
        report["openvino_resnet18"] = _openvino_extra(_export("resnet18", work), a.rounds, a.iters)
        print(json.dumps(report, indent=1))
        if a.out:
            a.out.write_text(json.dumps(report, indent=1))
        return
    det = None
    for name in ("resnet18", "defect-det"):
        fp32 = _export(name, work)
        det = fp32 if name == "defect-det" else det
        for prec, path in (("fp32", fp32), ("int8", _int8(fp32, "cpu"))):
            sessions = {"ort-cpu": open_session(path, "ort-cpu"),
                        "openvino:CPU": open_session(path, "openvino:CPU")}  # fmt: skip
            c, h, w = sessions["ort-cpu"].spec.input.shape[1:]
            x = np.random.default_rng(0).random((1, c, h, w), dtype=np.float32)
            row = _latency(sessions, x, a.rounds, a.iters)
            report["latency_ms"][f"{name} {prec} b1"] = row
            print(name, prec, row, flush=True)
            for s in sessions.values():
                s.close()
    report["triton"] = _triton(det, a.seconds)
    print(json.dumps(report["triton"], indent=1))
    if a.out:
        a.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
