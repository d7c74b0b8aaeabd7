"""The bad-input table of docs/reliability.md: each case run through the real CLI.

Every row is a command a user could type with something wrong in it, the exit code it gets and
the one-line message it prints. ``tests/test_reliability_table.py`` runs the same cases, so the
table cannot drift from what the code does.

Usage: python scripts/bad_inputs.py            # print the table
       python scripts/bad_inputs.py --write    # rewrite it in docs/reliability.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- bad-inputs:start -->", "<!-- bad-inputs:end -->"

NET_PY = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
"""


@dataclass(frozen=True)
class Case:
    what: str
    argv: tuple[str, ...]
    code: int
    message: str  # a part of the message that must be there

    @property
    def command(self) -> str:
        return "edgetk " + " ".join(a if a and " " not in a else f"'{a}'" for a in self.argv)


@dataclass(frozen=True)
class Row:
    case: Case
    code: int
    message: str


# "{d}" is the scratch folder the cases run in; "net.onnx" is a 3-class classifier made there.
CASES: tuple[Case, ...] = (
    Case("model file missing", ("inspect", "missing.onnx"), 2, "model file not found"),
    Case("not an ONNX file", ("inspect", "notes.onnx"), 2, ""),
    Case("unknown zoo model", ("inspect", "zoo:no-such-net"), 2, "unknown zoo model"),
    Case("bad --imgsz", ("export", "net.py:Net", "--imgsz", "big", "-o", "a.onnx"), 2, "--imgsz"),
    Case("output exists", ("export", "net.py:Net", "--imgsz", "32", "-o", "net.onnx"), 2,
         "output exists"),
    Case("unknown backend", ("predict", "net.onnx", "good.png", "--backend", "nope"), 2,
         "backend"),
    Case("image source missing", ("predict", "net.onnx", "nothing/"), 2, ""),
    Case("val data missing", ("val", "net.onnx", "nothing/"), 2, ""),
    Case("quantize without -o", ("quantize", "net.onnx"), 2, "-o"),
    Case("unknown option", ("zoo", "--colour"), 2, "No such option"),
    Case("run: source missing", ("run", "net.onnx", "--source", "nothing.mp4", "--headless"), 2,
         ""),
    Case("empty .onnx file", ("inspect", "empty.onnx"), 2, "empty file"),
    Case("absurd --imgsz", ("inspect", "zoo:lenet5", "--imgsz", "100000"), 2, "1..8192"),
    Case("--labels count", ("predict", "net.onnx", "good.png", "--labels", "a,b"), 2,
         "2 labels for a model with 3 classes"),
    Case("metadata: string scale", ("inspect", "bad-scale.onnx"), 2,
         "invalid model metadata: preprocess.scale"),
    Case("metadata names code", ("predict", "payload.onnx", "good.png", "--backend", "torch"),
         2, "--model-source"),
    Case("class the model lacks", ("run", "net.onnx", "--source", "good.png", "--reject", "99",
                                   "--headless"), 2, "no such class"),
    Case("ROI outside the frame", ("run", "net.onnx", "--source", "good.png", "--roi",
                                   "100,100,10,10", "--headless"), 2, "--roi"),
    Case("NG impossible", ("run", "net.onnx", "--source", "good.png", "--reject", "",
                           "--headless"), 2, ""),
    Case("synthetic size 0x0", ("run", "net.onnx", "--source", "synthetic:size=0x0",
                                "--headless"), 2, "16 to 8192"),
    Case("--fps 0", ("run", "net.onnx", "--source", "synthetic", "--fps", "0", "--headless"),
         2, "--fps must be above 0"),
    Case("output under a file", ("export", "net.py:Net", "--imgsz", "32", "-o",
                                 "notes.onnx/out.onnx"), 2, "not a folder"),
    Case("demo --workdir is a file", ("demo", "--quick", "--workdir", "good.png"), 2,
         "not a folder"),
    Case("--save exists", ("run", "net.onnx", "--source", "synthetic", "--save", "old.mp4",
                           "--headless"), 2, "output exists"),
    Case("corrupt image, --strict", ("predict", "net.onnx", "imgs/", "--strict"), 2,
         "cannot decode"),
    Case("station: bad ROI", ("run", "bad-roi.yaml", "--headless"), 2, "sources[0].roi"),
    Case("station and --source", ("run", "station.yaml", "--source", "synthetic"), 2,
         "give no --source"),
    Case("two sources, one name", ("run", "dup-names.yaml", "--headless"), 2, "cam"),
    Case("--verdict unknown", ("run", "net.onnx", "-s", "synthetic", "--verdict", "often"), 2,
         "--verdict"),
    Case("--tiles bad", ("predict", "net.onnx", "good.png", "--tiles", "2y2"), 2, "--tiles"),
    Case("--mqtt not MQTT", ("run", "net.onnx", "-s", "synthetic", "--mqtt", "ftp://x"), 2,
         "mqtt://"),
    Case("--serve bad port", ("run", "net.onnx", "-s", "synthetic", "--serve", "1.2.3.4:0"), 2,
         "--serve"),
    Case("--explain without --snapshots", ("run", "net.onnx", "-s", "synthetic", "--explain",
                                           "occlusion", "--headless"), 2, "--snapshots"),
)


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A folder with what the cases refer to: a model, its source, an image, a text file."""
    import cv2
    import numpy as np

    import toolkit

    with tempfile.TemporaryDirectory(prefix="edgetk-bad-inputs-") as tmp:
        d = Path(tmp)
        (d / "net.py").write_text(NET_PY)
        (d / "notes.onnx").write_text("not a model\n")
        cv2.imwrite(str(d / "good.png"), np.full((32, 32, 3), 120, np.uint8))
        (d / "empty.onnx").write_bytes(b"")
        (d / "old.mp4").write_bytes(b"an earlier recording")
        (d / "imgs").mkdir()
        cv2.imwrite(str(d / "imgs" / "a.png"), np.full((32, 32, 3), 60, np.uint8))
        (d / "imgs" / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
        (d / "payload.py").write_text("open('PWNED', 'w').write('ran')\n" + NET_PY)
        src = "sources:\n  - {name: cam, source: synthetic"
        (d / "station.yaml").write_text(f"model: net.onnx\n{src}}}\n")
        (d / "bad-roi.yaml").write_text(f"model: net.onnx\n{src}, roi: [1, 2]}}\n")
        (d / "dup-names.yaml").write_text(f"model: net.onnx\n{src}}}\n{src[9:]}}}\n")
        old = Path.cwd()
        os.chdir(d)
        try:
            toolkit.export_onnx("net.py:Net", "net.onnx", imgsz=32)
            _edited("net.onnx", "payload.onnx", source="payload.py:Net")
            _edited("net.onnx", "bad-scale.onnx", preprocess={"scale": "1/255"})
            yield d
        finally:
            os.chdir(old)


def _edited(src: str, dst: str, **changes: object) -> None:
    """A copy of ``src`` whose edgetk metadata has ``changes`` merged in (as an attacker or a
    broken tool would write it, with the onnx package)."""
    import json

    import onnx

    model = onnx.load(src)
    for prop in model.metadata_props:
        if prop.key == "edgetk":
            spec = json.loads(prop.value)
            for key, value in changes.items():
                spec[key] = {**spec[key], **value} if isinstance(value, dict) else value
            prop.value = json.dumps(spec)
    onnx.save(model, dst)


def run_case(case: Case, folder: Path) -> Row:
    """Run one case through the Typer app in-process; the message is stderr's last line."""
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    result = CliRunner().invoke(app, list(case.argv))
    return Row(case, result.exit_code, _message(result.stderr, folder))


def _message(stderr: str, folder: Path) -> str:
    """The command's ``error:`` line, or the text of the parser's error box."""
    lines = [ln.strip(" │╭╮╰╯─") for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Usage:", "Try ", "Error"))]
    errors = [ln for ln in lines if ln.startswith("error:")]
    message = (errors or lines or [""])[-1].removeprefix("error:")
    message = message.replace(str(folder.resolve()), "<dir>").replace(str(folder), "<dir>")
    return re.sub(r"\s+", " ", message).strip()


def run_cases(cases: tuple[Case, ...] = CASES) -> list[Row]:
    with scratch() as folder:
        return [run_case(c, folder) for c in cases]


def render(rows: list[Row]) -> str:
    out = ["| input | command | exit | message |", "| --- | --- | ---: | --- |"]
    for r in rows:
        msg = r.message.replace("|", "\\|")
        out.append(f"| {r.case.what} | `{r.case.command}` | {r.code} | {msg} |")
    return "\n".join(out)


def write_doc(table: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")


def doc_table() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.partition(START)[2].partition(END)[0].strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite docs/reliability.md's table")
    args = ap.parse_args()
    table = render(run_cases())
    if args.write:
        write_doc(table)
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
