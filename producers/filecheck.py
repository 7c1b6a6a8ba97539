"""Is a file a partner names fit to be read as text? The checks run before any reader opens it (and so
before anything is sent), and the wording of the same faults when a reader meets them further in.

`check_file(path, line_format)` -> (size, first 64 KB); `head_problem(head, line_format, whole)` the same
check on bytes; `Utf8Scan` the UTF-8 check of a whole file, fed by the hashing pass; `long_line(...)` the
message for a line no reader should buffer. What is refused, where, and the costs: docs/partner-files.md.
"""
from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pyarrow as pa

from ioxhub.errors import IoxhubError, not_utf8, unreadable

HEAD_BYTES = 64 << 10               # sniffed before anything else; also the longest header line
MAX_LINE_BYTES = 16 << 20           # a longer line (record) is not CSV / JSON Lines data
UTF8_BOM = b"\xef\xbb\xbf"
_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32", "FF FE 00 00"), (b"\x00\x00\xfe\xff", "UTF-32", "00 00 FE FF"),
         (b"\xff\xfe", "UTF-16", "FF FE"), (b"\xfe\xff", "UTF-16", "FE FF"))
_SIGNATURES = ((b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)"), (b"\xd0\xcf\x11\xe0", "an Office document (.xls?)"),
               (b"\x1f\x8b", "gzip-compressed"), (b"%PDF", "a PDF document"), (b"PAR1", "a Parquet file"))


class SourceError(IoxhubError, ValueError):
    """A file that cannot be read as the stated format; the message names the file and what is wrong."""


def check_file(path: Path, line_format: str | None, error: type[IoxhubError] = SourceError) -> tuple[int, bytes]:
    """(size, first 64 KB) of `path`, or `error` naming the file and its fault; `line_format` (the title
    of a line-based format, or None) requires line 1 to end within the sample."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        raise unreadable(path, exc, error, "data file") from None
    if not head:
        raise error(f"{path}: is empty (0 bytes)")
    problem = head_problem(head, line_format, whole=len(head) < HEAD_BYTES)
    if problem:
        raise error(f"{path}: {problem}")
    return info.st_size, head


def head_problem(head: bytes, line_format: str | None, whole: bool) -> str | None:
    """What makes `head` (the first bytes of a file; `whole`: the entire file) unfit, or None."""
    for bom, encoding, shown in _BOMS:
        if head.startswith(bom):
            return f"is {encoding} (BOM {shown}); save it as UTF-8"
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            return f"is {what}, not text"
    if b"\x00" in head:
        sample = head[:4096]
        if sample[1::2].count(0) > 0.9 * len(sample[1::2]) or sample[0::2].count(0) > 0.9 * len(sample[0::2]):
            return "is UTF-16 without a BOM (a NUL byte beside every character); save it as UTF-8"
        return f"looks binary (NUL bytes, the first at byte {head.index(0)}), not text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if whole or exc.reason != "unexpected end of data":   # not just a character cut at the sample's end
            control = sum(b < 9 or 13 < b < 32 for b in head[:4096])
            return "looks binary (control bytes), not text" if control > 8 else not_utf8(head, exc.start)
    if line_format and not whole and b"\n" not in head:
        return f"line 1 is longer than {HEAD_BYTES >> 10} KB: not a {line_format} file?"
    return None


def long_line(name: str, line: int, limit: int, line_format: str) -> str:
    return f"{name}: line {line} is longer than {limit / (1 << 20):g} MB: not a {line_format} file?"


class Utf8Scan:
    """Feed a file's bytes in order (`feed`, then `finish`); raises `SourceError` naming the line and
    column of the first byte that is not UTF-8. An ASCII piece costs one `isascii` (~0.08 ms/MB);
    another is validated by Arrow's UTF-8 validator (~0.2 ms/MB, against ~1.7 ms/MB for Python's
    incremental decoder), a character cut between two pieces checked on its own."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0                     # bytes fed so far
        self._carry = b""                   # the start of a character cut at the end of the last piece

    def feed(self, piece: bytes | bytearray) -> None:
        n = len(piece)
        if not self._carry and piece.isascii():
            self.offset += n
            return
        start = 0
        if self._carry:
            seam = self._carry + bytes(piece[:max(0, _sequence_length(self._carry[0]) - len(self._carry))])
            if len(seam) < _sequence_length(seam[0]) and len(seam) == len(self._carry) + n:
                self._carry, self.offset = seam, self.offset + n        # a piece shorter than the character
                return
            self._validate(seam, self.offset - len(self._carry))
            start, self._carry = len(seam) - len(self._carry), b""
        end = n
        for back in range(1, min(4, n - start) + 1):                  # a character cut at the piece's end
            lead = piece[n - back]
            if lead & 0xC0 != 0x80:
                if _sequence_length(lead) > back:
                    end = n - back
                break
        self._carry = bytes(piece[end:])
        if end > start:
            buffer = pa.py_buffer(piece).slice(start, end - start)
            offsets = pa.py_buffer(np.array([0, end - start], np.int32))
            try:
                pa.Array.from_buffers(pa.string(), 1, [None, offsets, buffer]).validate(full=True)
            except pa.ArrowInvalid:
                self._validate(bytes(piece[start:end]), self.offset + start)
        self.offset += n

    def finish(self) -> None:
        if self._carry:                     # the file ends inside a character
            self._validate(self._carry, self.offset - len(self._carry))

    def _validate(self, data: bytes, offset: int) -> None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{self.path}: {self._describe(offset + exc.start)}") from None

    def _describe(self, offset: int) -> str:
        """The message for the byte at `offset`: the lines before it are counted on this error path only."""
        line, start, done = 1, 0, 0
        with open(self.path, "rb") as fh:
            while done < offset:
                data = fh.read(min(1 << 20, offset - done))
                if not data:
                    break
                line += data.count(b"\n")
                if (last := data.rfind(b"\n")) >= 0:
                    start = done + last + 1
                done += len(data)
            if offset - start > 1 << 20:        # a line of over 1 MB: no character column
                fh.seek(offset)
                byte = fh.read(1)[:1] or b"\0"
                return (f"not UTF-8 text (byte 0x{byte[0]:02X} at line {line}, byte {offset - start + 1:,} of the "
                        "line); save it as UTF-8")
            fh.seek(start)
            text = fh.read(offset - start + 1)
        return not_utf8(text, len(text) - 1, line)


def _sequence_length(lead: int) -> int:
    """Bytes of the UTF-8 sequence a lead byte starts (1 for anything that cannot start one)."""
    return 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 1
