"""Station files: a full file round-trip, relative paths, and a table of bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from toolkit.errors import BadInputError
from toolkit.live.station import (
    SCHEMA_PATH,
    Station,
    StationOutputs,
    StationSource,
    field_path,
    is_station_file,
    load_station,
)

FULL = """\
model: models/det.onnx
backend: ort-cpu
batch: 4
batch_wait_ms: 5
verdict: per-part
min_frames: 2
square: true
tile: 640
overlap: 0.2
conf: 0.3
iou: 0.5
reject: [scratch, 2]
classes: "scratch,spot,crack"
sources:
  - {name: top, source: "rtsp://user:pw@cam1/stream", roi: [0, 40, 640, 400], fps: 15,
     reconnect_timeout: 30}
  - name: lane1
    source: videos/lane1.mp4
    loop: true
    conf: 0.4
    reject: crack
    roi: "10,20,100,50"
  - {name: usb, source: 0, width: 1280, height: 720}
  - {name: belt, source: "synthetic:fps=10"}
  - {name: abs, source: /data/images/*.jpg}
outputs:
  events: events.jsonl
  events_filter: ng
  snapshots: ng/
  save: out.mp4
  mqtt: mqtt://127.0.0.1:1883/line1
  opcua: opc.tcp://127.0.0.1:4840
  serve: 127.0.0.1:8080
  serve_token: secret
"""

MINIMAL = "model: m.onnx\nsources: [{name: a, source: synthetic}]\n"


@pytest.fixture
def station_dir(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "det.onnx").write_bytes(b"x")
    (tmp_path / "m.onnx").write_bytes(b"x")
    return tmp_path


def _write(folder: Path, text: str, name: str = "station.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_file_round_trips(station_dir: Path):
    path = _write(station_dir, FULL)
    st = load_station(path)
    assert st == Station(
        path=path,
        model=(station_dir / "models" / "det.onnx").resolve(),
        backend="ort-cpu", batch=4, batch_wait_ms=5, verdict="per-part", min_frames=2,
        square=True, tile=640, overlap=0.2, conf=0.3, iou=0.5, reject="scratch,2",
        classes="scratch,spot,crack",
        sources=(
            StationSource("top", "rtsp://user:pw@cam1/stream", roi="0,40,640,400", fps=15,
                          reconnect_timeout=30),
            StationSource("lane1", str(station_dir.resolve() / "videos/lane1.mp4"),
                          roi="10,20,100,50", reject="crack", conf=0.4, loop=True),
            StationSource("usb", "0", width=1280, height=720),
            StationSource("belt", "synthetic:fps=10"),
            StationSource("abs", "/data/images/*.jpg"),
        ),
        outputs=StationOutputs("events.jsonl", "ng", "ng/", "out.mp4",
                               "mqtt://127.0.0.1:1883/line1", "opc.tcp://127.0.0.1:4840",
                               "127.0.0.1:8080", "secret"),
    )  # fmt: skip


def test_defaults_and_paths_relative_to_the_file_not_the_cwd(station_dir: Path, monkeypatch):
    sub = station_dir / "cfg"
    sub.mkdir()
    (sub / "m.onnx").write_bytes(b"x")
    path = _write(sub, MINIMAL.replace("synthetic", "frames/"))
    monkeypatch.chdir(station_dir)
    st = load_station(Path("cfg/station.yaml"))
    assert st.model == (sub / "m.onnx").resolve()
    assert st.sources == (StationSource("a", str(sub.resolve() / "frames")),)
    assert (st.backend, st.verdict, st.min_frames, st.batch, st.outputs) == (
        "auto", "frame", 1, None, StationOutputs(),
    )  # fmt: skip
    assert path.exists()


def test_the_schema_ships_as_package_data_and_is_valid():
    from jsonschema import Draft202012Validator

    assert SCHEMA_PATH.parent.name == "assets"
    Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))


@pytest.mark.parametrize(
    ("arg", "expected"),
    [("station.yaml", True), ("a/B.YML", True), ("model.onnx", False), ("zoo:x", False)],
)
def test_is_station_file(arg, expected):
    assert is_station_file(arg) is expected


def test_field_path():
    assert field_path(["sources", 2, "roi"]) == "sources[2].roi"
    assert field_path([]) == "(top level)"


SRC = "sources: [{name: a, source: synthetic}]\n"
BAD = [
    ("missing model", SRC, r"\(top level\): missing 'model'"),
    ("missing sources", "model: m.onnx\n", r"\(top level\): missing 'sources'"),
    ("no sources", "model: m.onnx\nsources: []\n", r"sources: expected at least 1 item"),
    ("unknown key", MINIMAL + "bacth: 4\n", r"unknown key 'bacth' \(allowed: backend, batch,"),
    (
        "unknown source key",
        "model: m.onnx\nsources: [{name: a, source: x, cof: 1}]\n",
        r"sources\[0\]: unknown key 'cof' \(allowed: conf, fps, height, loop, name,",
    ),
    (
        "bad roi",
        "model: m.onnx\nsources: [{name: a, source: x}, {name: b, source: y, roi: [1, 2]}]\n",
        r"sources\[1\]\.roi: expected x, y, w, h in pixels",
    ),
    (
        "zero-size roi",
        "model: m.onnx\nsources: [{name: a, source: x, roi: '0,0,0,5'}]\n",
        r"sources\[0\]\.roi: --roi needs x,y >= 0 and w,h > 0",
    ),
    ("bad verdict", MINIMAL + "verdict: part\n", r"verdict: expected one of frame, per-part, got"),
    ("batch type", MINIMAL + "batch: four\n", r"batch: expected an integer, got a string"),
    ("batch zero", MINIMAL + "batch: 0\n", r"batch: expected a number >= 1, got a number \(0\)"),
    ("conf range", MINIMAL + "conf: 1.5\n", r"conf: expected a number <= 1"),
    (
        "fps zero",
        "model: m.onnx\nsources: [{name: a, source: x, fps: 0}]\n",
        r"sources\[0\]\.fps: expected a number > 0",
    ),
    (
        "duplicate names",
        "model: m.onnx\nsources: [{name: a, source: x}, {name: b, source: y}, {name: a, source: z}]\n",
        r"sources\[2\]\.name: 'a' is already the name of sources\[0\]",
    ),
    (
        "bad name",
        "model: m.onnx\nsources: [{name: 'top cam', source: x}]\n",
        r"sources\[0\]\.name: expected 1 to 40 letters",
    ),
    ("missing model file", "model: nope.onnx\n" + SRC, r"model: file not found: .*nope\.onnx"),
    ("tiles and tile", MINIMAL + "tiles: 2x2\ntile: 640\n", r"tiles, tile: give one of them"),
    ("overlap alone", MINIMAL + "overlap: 0.2\n", r"overlap: only applies with tile"),
    ("bad tiles", MINIMAL + "tiles: 2by2\n", r"tiles: expected COLSxROWS, such as 2x2"),
    ("reject type", MINIMAL + "reject: {a: 1}\n", r"reject: expected class names or ids"),
    ("bad filter", MINIMAL + "outputs: {events_filter: bad}\n", r"events_filter: expected one of"),
    ("unknown output", MINIMAL + "outputs: {webhook: x}\n", r"outputs: unknown key 'webhook'"),
    ("not a mapping", "- a\n- b\n", r"expected a mapping of settings .*got a list"),
    ("bad yaml", "model: [\n", r"not valid YAML at line 2"),
]


@pytest.mark.parametrize(("text", "message"), [r[1:] for r in BAD], ids=[r[0] for r in BAD])
def test_bad_station_files(station_dir: Path, text: str, message: str):
    path = _write(station_dir, text)
    with pytest.raises(BadInputError) as info:
        load_station(path)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"{path}: ")
    assert re.search(message, line), line


def test_a_missing_station_file(tmp_path: Path):
    with pytest.raises(BadInputError, match="station file not found"):
        load_station(tmp_path / "nope.yaml")
