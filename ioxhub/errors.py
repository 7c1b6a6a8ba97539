"""The base of every *expected* error: bad input, a server that is down, a malformed file.

The CLI prints these as one line naming what is wrong and where, exit code 2, never a traceback.
Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from pathlib import Path


class IoxhubError(Exception):
    """An expected mistake or condition, with a message fit for the user."""


def read_user_text(path: str | Path, error: type[IoxhubError], what: str) -> str:
    """The UTF-8 text of a file the user named; else `error` saying which file and what is wrong with it
    (missing, a directory, unreadable, not UTF-8), `what` naming the kind of file ("mapping file")."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read the {what} as UTF-8 text ({exc})") from None
