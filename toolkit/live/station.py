"""Station files: ``edgetk run station.yaml``, several named cameras, one model, one set of sinks.

The file (YAML) is checked against ``toolkit/assets/station.schema.json`` and then for what a
schema cannot say; every problem is one line naming the file, the field (``sources[2].roi``)
and what was expected. Example::

    model: models/defect-det.onnx        # relative to this file
    backend: auto
    batch: 4
    batch_wait_ms: 5
    verdict: per-part                    # frame | per-part
    min_frames: 2
    conf: 0.3
    reject: [scratch, crack]             # or "scratch,crack"
    sources:
      - {name: top, source: "rtsp://cam1/stream", roi: [0, 40, 640, 400], fps: 15}
      - {name: lane1, source: videos/lane1.mp4, loop: true, conf: 0.4}
    outputs: {events: events.jsonl, snapshots: ng/, serve: "127.0.0.1:8080"}

Paths: ``model`` and a source that names a file, folder or glob are taken relative to the
station file (a camera index, ``/dev/video*``, a URL, ``gst:``, ``csi://`` and ``synthetic``
are left as they are). Output paths are returned as written: the run checks them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.live.sources import STREAM_SCHEMES
from toolkit.live.verdict import parse_roi
from toolkit.model.spec_schema import value_kind

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "assets" / "station.schema.json"
SUFFIXES = (".yaml", ".yml")
MAX_BYTES = 1_000_000  # a station file is a page of settings, not data


@dataclass(frozen=True)
class StationSource:
    """One camera of the station; None fields take the station's (or the CLI's) default."""

    name: str
    source: str  # the --source text; a relative file path made relative to the station file
    roi: str | None = None  # "x,y,w,h" (the --roi text)
    reject: str | None = None  # "scratch,crack" (the --reject text)
    conf: float | None = None
    fps: float | None = None  # the cap on this source's frame rate
    loop: bool = False
    width: int | None = None
    height: int | None = None
    reconnect_timeout: float | None = None


@dataclass(frozen=True)
class StationOutputs:
    """The sinks, as their options would be given (``events_filter``: all | ng)."""

    events: str | None = None
    events_filter: str = "all"
    snapshots: str | None = None
    save: str | None = None
    mqtt: str | None = None
    opcua: str | None = None
    serve: str | None = None
    serve_token: str | None = None


@dataclass(frozen=True)
class Station:
    """A checked station file. ``model`` is an absolute path; None means the CLI default."""

    path: Path
    model: Path
    sources: tuple[StationSource, ...]
    backend: str = "auto"
    batch: int | None = None
    batch_wait_ms: float | None = None
    verdict: str = "frame"
    min_frames: int = 1
    square: bool = False
    tiles: str | None = None
    tile: int | None = None
    overlap: float | None = None
    conf: float | None = None
    iou: float | None = None
    reject: str | None = None
    classes: str | None = None
    outputs: StationOutputs = field(default_factory=StationOutputs)


def is_station_file(arg: str) -> bool:
    """True for a ``.yaml`` / ``.yml`` argument (a station file, not a model)."""
    return str(arg).lower().endswith(SUFFIXES)


def load_station(path: Path) -> Station:
    """Read and check a station file.

    Raises:
        BadInputError: one line: ``station.yaml: sources[2].roi: expected ...``.
    """
    data = _read(path)
    _validate(data, path)
    base = path.resolve().parent
    model = (base / data["model"]).resolve()
    if not model.exists():
        raise BadInputError(f"{path}: model: file not found: {model}")
    sources = tuple(_source(s, i, base, path) for i, s in enumerate(data["sources"]))
    names = [s.name for s in sources]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise BadInputError(
                f"{path}: sources[{i}].name: '{name}' is already the name of "
                f"sources[{names.index(name)}] (source names must be unique)"
            )
    if "tiles" in data and "tile" in data:
        raise BadInputError(f"{path}: tiles, tile: give one of them (a grid or a tile size)")
    if "overlap" in data and "tile" not in data:
        raise BadInputError(f"{path}: overlap: only applies with tile (a tile size)")
    top = {k: data[k] for k in ("backend", "batch", "batch_wait_ms", "verdict", "min_frames",
                                "square", "tiles", "tile", "overlap", "conf", "iou") if k in data}  # fmt: skip
    for key in ("reject", "classes"):
        if key in data:
            top[key] = _class_text(data[key])
    return Station(
        path=path, model=model, sources=sources,
        outputs=StationOutputs(**data.get("outputs", {})), **top,
    )  # fmt: skip


def _read(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise BadInputError(f"station file not found: {path}")
    if path.stat().st_size > MAX_BYTES:
        raise BadInputError(f"{path}: over {MAX_BYTES // 1000} kB: not a station file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: not a text file (expected YAML)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BadInputError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise BadInputError(
            f"{path}: expected a mapping of settings (model, sources, ...), got {value_kind(data)}"
        )
    return data


def schema() -> dict[str, Any]:
    """The station file's JSON Schema (``toolkit/assets/station.schema.json``)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _validate(data: dict[str, Any], path: Path) -> None:
    """The first schema error (in file order), as one line."""
    from jsonschema import Draft202012Validator

    sch = schema()
    errors = list(Draft202012Validator(sch).iter_errors(data))
    if not errors:
        return
    # The shallowest, then earliest, error: the one a person fixes first.
    err = min(errors, key=lambda e: (len(e.absolute_path), [str(p) for p in e.absolute_path]))
    where = field_path(list(err.absolute_path))
    raise BadInputError(f"{path}: {where}: {_expected(err)}")


def field_path(parts: list[str | int]) -> str:
    """``["sources", 2, "roi"]`` -> ``sources[2].roi`` (the top level is ``(top level)``)."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _expected(err: Any) -> str:
    """What the schema wanted there, in words."""
    v, got = err.validator, value_kind(err.instance)
    rule = err.schema
    if v == "additionalProperties":
        allowed = sorted(rule.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        return f"unknown key {', '.join(map(repr, extra))} (allowed: {', '.join(allowed)})"
    if v == "required":
        return f"missing {err.message.split(' is a required')[0]}"
    if v == "enum":
        return f"expected one of {', '.join(map(str, err.validator_value))}, got {got}"
    if v == "type":
        kinds = err.validator_value
        kinds = kinds if isinstance(kinds, list) else [kinds]
        return f"expected {' or '.join(_TYPE_WORDS.get(k, k) for k in kinds)}, got {got}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if v in bounds:
        return f"expected a number {bounds[v]} {err.validator_value}, got {got}"
    if v in ("minItems", "maxItems"):
        word = "at least" if v == "minItems" else "at most"
        return f"expected {word} {err.validator_value} item(s), got {len(err.instance)}"
    if v == "minLength":
        return f"expected a non-empty string, got {got}"
    hint = rule.get("description") or _parent_description(err)
    return f"expected {hint}, got {got}" if hint else str(err.message)


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
}


def _parent_description(err: Any) -> str | None:
    """The description of the rule a failed ``oneOf`` branch belongs to."""
    node: Any = err
    while node is not None:
        desc = node.schema.get("description") if isinstance(node.schema, dict) else None
        if desc:
            return desc
        node = node.parent
    return None


def _source(raw: dict[str, Any], i: int, base: Path, path: Path) -> StationSource:
    text = str(raw["source"]).strip()
    roi = None
    if "roi" in raw:
        value = raw["roi"]
        text_roi = value if isinstance(value, str) else ",".join(f"{float(n):g}" for n in value)
        try:
            x, y, w, h = parse_roi(text_roi)  # type: ignore[misc]
        except BadInputError as e:
            raise BadInputError(f"{path}: sources[{i}].roi: {e}") from None
        roi = f"{x},{y},{w},{h}"
    fields = {k: raw[k] for k in ("conf", "fps", "loop", "width", "height",
                                   "reconnect_timeout") if k in raw}  # fmt: skip
    return StationSource(
        name=str(raw["name"]), source=_resolve_source(text, base), roi=roi,
        reject=_class_text(raw["reject"]) if "reject" in raw else None, **fields,
    )  # fmt: skip


def _resolve_source(text: str, base: Path) -> str:
    """A relative file, folder or glob -> the same under the station file's folder."""
    lower = text.lower()
    if (
        text.isdigit()
        or lower.startswith((*STREAM_SCHEMES, "csi://", "gst:", "/dev/video"))
        or text == "synthetic"
        or text.startswith("synthetic:")
        or Path(text).is_absolute()
    ):
        return text
    if text.startswith("~"):
        return str(Path(text).expanduser())
    return str(base / text)


def _class_text(value: str | list[str | int]) -> str:
    """A list of class names or ids, or a comma string -> the comma text of --reject."""
    if isinstance(value, str):
        return value
    return ",".join(str(v) for v in value)
