"""Option groups (toolkit/cli/options.py): flags declared once, listed where the group's
parameter stands, handed to the command as one object."""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from toolkit.cli.common import cli_command, print_json
from toolkit.cli.options import GROUP, SPEC_FLAGS, JsonOpt, option_group, spec_options
from toolkit.model.spec import SpecOverrides

CountOpt = Annotated[int, typer.Option("--count", help="How many.")]
NameOpt = Annotated[str, typer.Option("--name", help="Who.")]


def _pair(count: CountOpt = 1, name: NameOpt = "x") -> dict[str, Any]:
    return {"count": count, "name": name}


def _app(command: Any) -> typer.Typer:
    app = typer.Typer()
    app.command("cmd")(command)
    app.command("other")(lambda: None)  # two commands: "cmd" stays a subcommand
    return app


def _names(func: Any) -> list[str]:
    return list(inspect.signature(func).parameters)


def test_spec_flags_take_the_place_of_spec() -> None:
    @cli_command
    @spec_options()
    def command(
        first: Annotated[int, typer.Option("--first")] = 0,
        spec: SpecOverrides = GROUP,
        json_out: JsonOpt = False,
    ) -> None:
        print_json({"first": first, "imgsz": spec.imgsz, "labels": spec.labels})

    assert _names(command) == ["first", *SPEC_FLAGS, "json_out", "_edgetk_ctx"]
    result = CliRunner().invoke(
        _app(command), ["cmd", "--imgsz", "32,48", "--labels", "a,b", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"first": 0, "imgsz": [32, 48], "labels": ["a", "b"]}
    bad = CliRunner().invoke(_app(command), ["cmd", "--color", "purple", "--json"])
    assert bad.exit_code == 2 and "--color must be one of" in bad.stdout


def test_some_flags_and_a_flag_moved() -> None:
    @spec_options("imgsz", "channels", "task", before={"imgsz": "last"})
    def command(spec: SpecOverrides = GROUP, last: int = 0) -> SpecOverrides:
        return spec

    assert _names(command) == ["channels", "task", "imgsz", "last"]
    spec = command(imgsz="8", channels=1, task=None, last=3)
    assert spec == SpecOverrides(imgsz=(8, 8), channels=1)


def test_a_subset_of_a_builder() -> None:
    @option_group(only=(_pair, ("name",)))
    def command(only: dict[str, Any] = GROUP) -> Any:
        return only

    assert _names(command) == ["name"]
    assert command(name="z") == {"count": 1, "name": "z"}  # the others keep their defaults


def test_group_values_reach_the_builder() -> None:
    @option_group(pair=_pair)
    def command(pair: dict[str, Any] = GROUP, other: int = 0) -> Any:
        return pair, other

    assert _names(command) == ["count", "name", "other"]
    assert command(count=3, name="y", other=1) == ({"count": 3, "name": "y"}, 1)
    assert command(other=2) == ({"count": 1, "name": "x"}, 2)  # builder defaults


def test_a_group_needs_its_parameter() -> None:
    with pytest.raises(TypeError, match="no parameter"):
        option_group(pair=_pair)(lambda other=0: other)
    with pytest.raises(TypeError, match="not spec flags"):
        spec_options("imgsz", "nope")
    with pytest.raises(TypeError, match="not options of a group"):
        option_group(before={"nope": "other"}, pair=_pair)(lambda pair=GROUP, other=0: other)
