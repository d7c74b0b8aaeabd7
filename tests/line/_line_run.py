"""``python _line_run.py MODEL SOURCE LINE_JSON [RUN_JSON]``: run_live with the line sinks of
LINE_JSON (LineOutputs fields) and run_live keywords from RUN_JSON; prints the summary JSON.

The tests run it as a process of its own to kill it (-9) mid-run."""

from __future__ import annotations

import json
import sys

from toolkit.line.options import LineOutputs, check_line_outputs, open_line_sinks
from toolkit.live.loop import LoopOptions
from toolkit.live.run import run_live


def main() -> None:
    model, source, line_json = sys.argv[1:4]
    run = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    line = LineOutputs(**json.loads(line_json))
    check_line_outputs(line)
    options = LoopOptions(
        max_frames=run.pop("max_frames", None), duration=run.pop("duration", None)
    )
    summary = run_live(model, source, backend="ort-cpu", options=options,
                       sinks=open_line_sinks(line), **run)  # fmt: skip
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
