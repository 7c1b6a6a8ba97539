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
        data = Path(path).read_bytes()
    except OSError as exc:
        raise unreadable(path, exc, error, what) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read the {what} as UTF-8 text ({byte_at(data, exc.start)}); "
                    "save it as UTF-8") from None


def unreadable(path: str | Path, exc: OSError, error: type[IoxhubError], what: str) -> IoxhubError:
    """`error` naming `path` and why it could not be opened: missing, a directory, or what the OS said."""
    if isinstance(exc, FileNotFoundError):
        return error(f"{path}: {what} not found")
    if isinstance(exc, IsADirectoryError):
        return error(f"{path}: is a directory, not a {what}")
    return error(f"{path}: cannot read the {what} ({exc.strerror})")


def not_utf8(data: bytes, start: int, first_line: int = 1) -> str:
    """'not UTF-8 text (byte 0xE9 at line 3, column 7); save it as UTF-8' for the byte `data[start]`."""
    return f"not UTF-8 text ({byte_at(data, start, first_line)}); save it as UTF-8"


def byte_at(data: bytes, start: int, first_line: int = 1) -> str:
    """'byte 0xE9 at line 3, column 7' for `data[start]`, `data` beginning at a line start that is line
    `first_line` of its file (the column counted in characters)."""
    line = first_line + data.count(b"\n", 0, start)
    column = len(data[data.rfind(b"\n", 0, start) + 1:start].decode("utf-8", "replace")) + 1
    return f"byte 0x{data[start]:02X} at line {line}, column {column}"
