"""The values the command's options take: each parses one string or says why not.

Pure functions for argparse's `type=`: each returns the value or raises
`argparse.ArgumentTypeError` with a message naming what it expected, which the parser
turns into one usage line (exit 2). The same functions read environment variables.
"""

from __future__ import annotations

import argparse
import math

__all__ = [
    "host",
    "number",
    "port",
    "positive_float",
    "positive_int",
    "rate",
    "whole_number",
]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port to bind: 0 (any free one) to 65535; anything else is a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, not {text!r}")
    return value


def host(text: str) -> str:
    """An address or host name to bind, checked before anything starts.

    An empty one (every interface, printed as the unusable URL `http://:PORT`) and one
    the IDNA codec refuses (a label over 63 characters) are usage errors.
    """
    host = text.strip()
    if not host:
        raise argparse.ArgumentTypeError("expected a host name or address, not ''")
    try:
        host.encode("idna")
    except UnicodeError:
        raise argparse.ArgumentTypeError(f"not a valid host name: {text!r}") from None
    return host


def positive_float(text: str) -> float:
    """A finite number above 0: `-1`, `inf` and `nan` are refused in the words `0` is."""
    value = _float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def rate(text: str) -> float:
    """A rate limit in requests per second; `none` (or any spelling of 0) is 0.0: no limit."""
    if text.strip().lower() == "none":
        return 0.0
    try:
        return 0.0 if number(text) == 0 else positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected requests per second (a positive number) or none, not {text!r}"
        ) from None


def number(text: str) -> float:
    value = _float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, not {text!r}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
