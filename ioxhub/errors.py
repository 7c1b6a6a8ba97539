"""The base of every *expected* error: bad input, a server that is down, a malformed file.

The CLI prints these as one line naming what is wrong and where, exit code 2, never a traceback.
Anything else is a bug and keeps its traceback.
"""


class IoxhubError(Exception):
    """An expected mistake or condition, with a message fit for the user."""
