"""`edgetk run` (placeholder until implemented)."""

from __future__ import annotations

from toolkit.cli.common import cli_command
from toolkit.errors import ToolkitError


@cli_command
def command() -> None:
    """Not implemented yet."""
    raise ToolkitError("edgetk run is not implemented yet")
