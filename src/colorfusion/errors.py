"""The errors a user sees, their one-line form, and the catch-all every command runs under.

A batch job (a folder, a clip, a page of the studio) reports each failure as
one line naming the file and the reason, and goes on; a command ends in one
line and an exit code, never a traceback (`COLORFUSION_DEBUG=1` shows it).
Everything that turns an exception into that line lives here:

- the errors whose message is already the line for the user (`ModelLoadError`,
  `HintError`, `ImageReadError`, `TrainingError`, `UsageError`): shown as they
  are. A bare `ValueError` is not among them: the package raises it for a
  caller's misuse of its API (`ValueError(... Received: ...)`), and one
  escaping a library is a bug to report, not the user's doing;
- `first_line(error)`: "Type: first line" of any other exception, at most
  about 200 characters (Keras and TensorFlow messages can be pages long);
- `reason(error)`: the line for an error of either kind;
- `exit_code(result)`: the exit code a command's return value means;
- `run_reporting_errors(what, command, ...)`: the catch-all of `cli`, `demo`
  and the studio's command.
"""

from __future__ import annotations

import os
import sys

MAX_REASON = 200  # characters of a reason; the user needs the first line, not the page
DEBUG_VARIABLE = "COLORFUSION_DEBUG"  # set (to anything) to see tracebacks instead of one line
INTERRUPTED_EXIT = 130  # the shell's code for a command stopped by Ctrl-C


class ModelLoadError(Exception):
    """A model file or run folder could not be used; the message says which and why."""


class HintError(ValueError):
    """A colour hint that cannot be used; the message is one line naming it and why."""


class TrainingError(Exception):
    """A run cannot start or go on; the message is one line for the user."""


class ImageReadError(Exception):
    """An image file could not be read; the message names the file and why."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class VideoError(ImageReadError):
    """A clip cannot be read or colorized; like `ImageReadError`, its message names the file and why."""


class UsageError(ValueError):
    """Something the user gave (an option's value, a folder, a settings file) that cannot be used.

    The message is one line naming it and why. A `ValueError`, so that code
    catching the API's `ValueError` for a bad argument still catches it.
    """


# Errors whose message is written for the user: shown without their type.
USER_ERRORS = (ModelLoadError, HintError, TrainingError, ImageReadError, UsageError)


def _shorten(line: str) -> str:
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 3] + "..."


def first_line(error: BaseException) -> str:
    """`"Type: first line of the message"` (just the type for an empty message), at most ~200 characters."""
    text = str(error).strip()
    line = _shorten(text.splitlines()[0]) if text else ""
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def message_line(error: BaseException) -> str:
    """The first line of the message alone (the type for an empty message), at most ~200 characters."""
    text = str(error).strip()
    return _shorten(text.splitlines()[0]) if text else type(error).__name__


def reason(error: BaseException) -> str:
    """The one line for a user: a user error's own message (an image's: its reason), else `first_line`."""
    if isinstance(error, ImageReadError):
        return _shorten(error.reason)
    return message_line(error) if isinstance(error, USER_ERRORS) else first_line(error)


def print_error(message: str) -> int:
    """Write `error: message` to stderr; returns 1, the exit code of a failed command."""
    print(f"error: {message}", file=sys.stderr)
    return 1


def exit_code(result) -> int:
    """The exit code a command's return value means: the one rule of every command.

    None is 0; an int is itself; a result that says whether all went well
    (an `ok` attribute: `FolderReport`, `EvaluationReport`, the demo's
    result) is 0 when it did and 1 when something failed.

    Raises:
        TypeError: any other value (a command's bug, not the user's).
    """
    if result is None:
        return 0
    if isinstance(result, int) and not isinstance(result, bool):  # True / False would read as 1 / 0 backwards
        return result
    ok = getattr(result, "ok", None)
    if isinstance(ok, bool):
        return 0 if ok else 1
    raise TypeError(f"a command returns None, an exit code or a result with `ok`. Received: {type(result).__name__}")


def run_reporting_errors(what: str, command, *args, expected=(), **kwargs) -> int:
    """Run `command(*args, **kwargs)` as a command line program would: its exit code, never a traceback.

    Args:
        what: the command's name, for the line of an unexpected error
            ("colorize failed: ...").
        command: returns what `exit_code` reads: None, an exit code, or
            a result with `ok`.
        expected: exception types whose message is already the line for the
            user (besides `USER_ERRORS`), shown without "what failed".

    Returns:
        The command's code; 130 after Ctrl-C; 1 after an error, reported in
        one line on stderr (the traceback instead when COLORFUSION_DEBUG is set).
    """
    try:
        return exit_code(command(*args, **kwargs))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except (*USER_ERRORS, *expected) as e:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        return print_error(message_line(e))
    except Exception as e:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        return print_error(f"{what} failed: {first_line(e)} ({DEBUG_VARIABLE}=1 shows the traceback)")
