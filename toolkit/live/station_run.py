"""A station file as a run: :func:`toolkit.live.station.load_station`'s settings over the
command line's (``edgetk run station.yaml``).

A setting the file gives wins; one it leaves out keeps the command line's value (or its
default). The line outputs (MQTT, OPC UA, the web view) come back under ``line`` for the
caller to open.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from toolkit.live.feeds import SourceSpec
from toolkit.live.open import SourceSettings


def _over(args: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        args[key] = value


def station_args(path: Path, args: dict[str, Any]) -> dict[str, Any]:
    """run_live's keywords (``loop_*`` for LoopOptions) from the station file at ``path``.

    Raises:
        BadInputError: the file is missing, does not parse or does not fit the schema.
    """
    from toolkit.live.station import load_station

    st = load_station(path)
    out = dict(args)
    out["model"] = str(st.model)
    if st.backend != "auto":
        out["backend"] = st.backend
    for key in ("batch", "conf", "iou", "reject", "classes"):
        _over(out, key, getattr(st, key))
    _over(out, "loop_batch_wait_ms", st.batch_wait_ms)
    if st.verdict != "frame":
        out["verdict"] = st.verdict
    if st.min_frames != 1:
        out["min_frames"] = st.min_frames
    out["loop_square"] = st.square or args.get("loop_square", False)
    if st.tiles is not None or st.tile is not None:
        from toolkit.tasks.tiles import TileGrid

        out["loop_tiles"] = TileGrid.parse(st.tiles, st.tile, st.overlap or 0.2)
    out["source"] = [_spec(s, args) for s in st.sources]
    out["outputs"] = _outputs(st, args["outputs"])
    o = st.outputs
    out["line"] = {"mqtt": o.mqtt, "opcua": o.opcua, "serve": o.serve, "serve_token": o.serve_token}
    return out


def _spec(s: Any, args: dict[str, Any]) -> SourceSpec:
    """One station source; what it leaves out comes from the command line."""
    capture = SourceSettings(
        s.loop or args.get("loop", False),
        args.get("fps"),
        s.width if s.width is not None else args.get("width"),
        s.height if s.height is not None else args.get("height"),
        s.reconnect_timeout if s.reconnect_timeout is not None else args.get("reconnect_timeout"),
    )
    return SourceSpec(
        s.source, name=s.name, roi=s.roi, reject=s.reject, conf=s.conf, max_fps=s.fps,
        capture=capture,
    )  # fmt: skip


def _outputs(st: Any, given: Any) -> Any:
    """The file outputs: the station's where it names them."""
    o = st.outputs
    changes: dict[str, Any] = {}
    for key in ("events", "snapshots", "save"):
        value = getattr(o, key)
        if value is not None:
            changes[key] = Path(value) if value != "-" else Path("-")
    if o.events_filter != "all":
        changes["events_filter"] = o.events_filter
    return replace(given, **changes)
