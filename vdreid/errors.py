"""Errors a user can act on.

Every message says what was received, what was expected and what to do.
The CLI prints these without a traceback and exits with code 2; anything
else escaping a command is a bug and keeps its traceback.
"""

from __future__ import annotations


class VdreidError(Exception):
    """Base class for errors caused by the user's input or environment."""


class BackendNotAvailable(VdreidError):
    """A backend was asked for that is not installed or fails to import."""


class SpecError(VdreidError):
    """A model or loss spec is inconsistent."""


class CheckpointError(VdreidError):
    """A checkpoint is missing, malformed or does not match the model."""


class DataError(VdreidError):
    """A dataset folder, split file, image or manifest is not as expected."""


class ConfigError(VdreidError):
    """A configuration value is out of range or of the wrong type."""


class NotSupported(ConfigError):
    """A backend was asked for something it does not do (training, an export,
    a trainer option): the message names the backend and what to use instead."""


class ExportError(VdreidError):
    """An exported model failed verification against the eager model."""


class NumericalError(VdreidError):
    """Training produced NaN or Inf values."""


class OutputError(VdreidError):
    """A file or folder vdreid must write cannot be written, or is not vdreid's to replace."""


class ExtraNotInstalled(VdreidError):
    """An optional dependency (a pip extra of vdreid) is needed and missing."""


class Interrupted(Exception):  # noqa: N818 - not an error: the user asked to stop
    """The user stopped a command (Ctrl-C); the message says what was kept and
    how to go on. The CLI prints it and exits 130, as a shell does after SIGINT."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when empty),
    for one-line error reports that quote another error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
