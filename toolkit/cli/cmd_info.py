"""`edgetk info`: versions, backends, GPUs, CUDA, TensorRT, camera support."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json


def _yes(flag: bool) -> str:
    return "[green]yes[/green]" if flag else "[dim]no[/dim]"


def _v(x: Any) -> str:
    return escape(str(x)) if x is not None else "[dim]not installed[/dim]"


def _show(info: dict[str, Any]) -> None:
    cpu = info["cpu"]
    console.print(f"[bold]edgetk {escape(info['edgetk'])}[/bold]  python {info['python']}")
    console.print(f"platform    {escape(info['platform'])}")
    console.print(
        f"cpu         {escape(cpu['name'])} ({cpu['cores']} cores, "
        f"{cpu['logical_cores']} threads), {info['memory_gb']} GiB RAM"
    )
    i8 = cpu["int8"]
    dot = ", ".join(i8["dot_product"]) or "no int8 dot-product instructions"
    reduced = " (cpu-target int8 uses 7-bit weights)" if i8["isa"] == "avx2" else ""
    console.print(f"cpu int8    {i8['isa']}: {escape(dot)}{reduced}")
    _show_libraries(info)
    _show_gpu(info)
    _show_backends(info)


def _show_libraries(info: dict[str, Any]) -> None:
    torch = info["torch"]
    console.print(f"torch       {_v(torch and torch['version'])}")
    console.print(f"onnx        {_v(info['onnx'])}")
    ort = info["onnxruntime"]
    if ort:
        console.print(
            f"onnxruntime {escape(ort['version'])} (providers: {escape(', '.join(ort['providers']))})"
        )
    else:
        console.print(f"onnxruntime {_v(None)}")
    cv = info["opencv"]
    if cv:
        console.print(
            f"opencv      {escape(cv['version'])} (GStreamer {_yes(cv['gstreamer'])}, "
            f"V4L2 {_yes(cv['v4l2'])}, FFMPEG {_yes(cv['ffmpeg'])})"
        )
    else:
        console.print(f"opencv      {_v(None)}")
    console.print(f"numpy       {_v(info['numpy'])}")
    ov = info.get("openvino") or {}
    if ov.get("version"):
        devices = ", ".join(f"{k}: {v}" for k, v in ov["devices"].items())
        console.print(f"openvino    {escape(ov['version'])} (devices: {escape(devices)})")
    else:
        console.print(f"openvino    {_v(None)}")


def _show_gpu(info: dict[str, Any]) -> None:
    gpus = info["gpu"]
    if gpus:
        for g in gpus:
            console.print(
                f"gpu         {escape(g['name'])} (driver {escape(g['driver'])}, "
                f"{g['memory_mb']} MiB)"
            )
    else:
        console.print("gpu         [dim]none found (no nvidia-smi or no GPU)[/dim]")
    cuda = info["cuda"]
    built = f"CUDA {escape(cuda['version'])}" if cuda["version"] else "no CUDA (CPU build)"
    console.print(f"cuda        torch built with {built}, usable: {_yes(cuda['available'])}")
    console.print(f"tensorrt    {_v(info['tensorrt'])}")
    console.print(f"cuda-python {_v(info['cuda_python'])}")
    if info["jetson"]:
        j = info["jetson"]
        jp = f", JetPack {escape(j['jetpack'])}" if j.get("jetpack") else ""
        console.print(f"jetson      {_v(j['model'])}, L4T {_v(j['l4t'])}{jp}")


def _show_backends(info: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="backends", show_header=True, header_style="bold")
    table.add_column("backend")
    table.add_column("status")
    for name, b in info["backends"].items():
        status = (
            "[green]available[/green]"
            if b["available"]
            else f"[yellow]{escape(b['reason'])}[/yellow]"
        )
        table.add_row(name, status)
    console.print(table)


@cli_command
def command(json_out: opt.JsonOpt = False, verbose: opt.VerboseOpt = False) -> None:
    """Show versions, the backends that can run here, GPUs, CUDA, TensorRT and camera support."""
    from toolkit.info import collect_info

    info = collect_info()
    if json_out:
        print_json(info)
    else:
        _show(info)
