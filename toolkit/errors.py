"""Exception classes. Every error a user can act on is a ToolkitError with an exit code.

Exit codes: 2 for bad usage or bad input, 1 for a failure while running (README, docs/reliability.md).
"""

from __future__ import annotations


class ToolkitError(Exception):
    """Base class of the toolkit's errors; ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class BadInputError(ToolkitError):
    """The user gave something unusable: a missing file, a bad flag value, a corrupt model."""

    exit_code = 2


class ModelLoadError(BadInputError):
    """A model reference could not be resolved or its weights do not fit."""


class BackendUnavailableError(BadInputError):
    """A requested backend cannot run here; the message names what is missing."""


class MissingDependencyError(BadInputError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str | None = None, purpose: str = "") -> None:
        hint = f'pip install "edgetk[{extra}]"' if extra else f"pip install {module}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"{module} is not installed{what}: {hint}")
        self.module = module
        self.extra = extra


class ParityError(ToolkitError):
    """An exported or converted model disagrees with its reference beyond tolerance."""

    exit_code = 1


class OutputExistsError(BadInputError):
    """The output file exists and ``--force`` was not given."""
