"""The rules a text value must follow to be sent as given: keys, names, calendar URLs.

Pure: each rule raises `ValidationError` naming the field, before any request.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final
from urllib.parse import urlsplit

from ._mask import redact_url
from .errors import ValidationError

__all__ = ["check_cal_url", "check_name", "check_text", "is_prokey", "show", "validate_prokey"]

_PROKEY = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def is_prokey(value: object) -> bool:
    """Whether `value` is UUID-shaped, as `validate_prokey` requires."""
    return isinstance(value, str) and _PROKEY.fullmatch(value) is not None


def validate_prokey(prokey: object, *, field: str = "prokey") -> str:
    """Return `prokey` if it is UUID-shaped (hex, 8-4-4-4-12), else raise `ValidationError`.

    This is what keeps a key from ever steering a URL: slashes, `..`, `%`, `?`, spaces,
    `all` and `latest` are all rejected here, before any request.
    """
    if not isinstance(prokey, str):
        raise ValidationError(
            f"{field} must be a string, not {type(prokey).__name__}", field=field
        )
    if _PROKEY.fullmatch(prokey) is None:
        raise ValidationError(
            f"{field} {show(prokey)} is not a prokey (expected 8-4-4-4-12 hex digits, "
            "like 31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa)",
            field=field,
        )
    return prokey


def show(value: str, limit: int = 60) -> str:
    """`value` quoted for a message, cut to `limit` characters."""
    text = value if len(value) <= limit else value[: limit - 1] + "…"
    return repr(text)


def check_text(field: str, value: str) -> None:
    """Refuse text no request can carry: the one rule for every text field that is sent.

    A lone surrogate (half of a UTF-16 pair, as `json.loads('"\\ud83d"')` yields from a
    string cut in the middle of an emoji, or Python from an undecodable byte in a
    command line) has no UTF-8 encoding, so sending it would fail after the requests
    before it were sent. Sync's keys, stored rather than sent, follow the same rule.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        char = value[err.start]
        raise ValidationError(
            f"{field} has {char!r} at position {err.start}: {_lone_surrogate(char)}",
            field=field,
        ) from None


def _lone_surrogate(char: str) -> str:
    """What is wrong with a lone surrogate, and where it most likely came from."""
    if "\udc80" <= char <= "\udcff":  # how Python keeps an undecodable byte (surrogateescape)
        return (
            "a lone surrogate, which has no UTF-8 form and cannot be sent; Python makes one "
            f"of a byte that is not UTF-8 (here 0x{ord(char) - 0xDC00:02x}) in a command line, "
            "a path or the environment: is the terminal's encoding UTF-8?"
        )
    return (
        "a lone surrogate (half of a UTF-16 pair, such as an emoji cut in two), which has "
        "no UTF-8 form and cannot be sent"
    )


#: What common trims remove from the ends of a text besides the whitespace of
#: `str.isspace()`: JavaScript's `trim()` also strips U+FEFF, PHP's `trim()` NUL.
_ALSO_TRIMMED: Final = frozenset("\ufeff\x00")


def check_name(value: object) -> None:
    """A name is sent exactly as given, so it must be one the service keeps as it is.

    The service may trim a name; then the name it keeps is not the name sent, and
    sync's lost-create lookup (which compares names exactly) would miss the group.
    """
    if not isinstance(value, str):
        raise ValidationError(f"name must be a string, not {type(value).__name__}", field="name")
    check_text("name", value)
    if not value.strip():
        raise ValidationError("name must not be empty", field="name")
    for position in (0, len(value) - 1):
        char = value[position]
        if char.isspace() or char in _ALSO_TRIMMED:
            raise ValidationError(
                f"name must not start or end with whitespace ({char!r} at position "
                f"{position} of {show(value)}): the service may trim it",
                field="name",
            )


#: Unicode categories no URL carries raw: controls (CR, LF, NUL, DEL, C1) and format
#: characters (bidi overrides, zero-width spaces: a URL that reads as another).
#: Whitespace of every kind is refused as well, and lone surrogates by `check_text`.
_NOT_IN_URL: Final = frozenset({"Cc", "Cf"})

#: What a host name (RFC 3986 reg-name) may hold besides letters and digits, which may be
#: non-ASCII (an internationalised name). A bracketed IP literal is checked by urlsplit.
_HOST_PUNCTUATION: Final = frozenset("-._~%!$&'()*+,;=")


def check_cal_url(value: object) -> None:
    """Refuse anything but an http(s) URL with a host, checked exactly as it will be sent.

    Nothing is stripped: a URL pasted with a trailing newline is refused, not sent as it
    came. Whitespace and control characters anywhere are refused (a space, CR/LF or NUL in
    the host would otherwise pass `urlsplit`), and so is a host with characters that no
    host name has.
    """
    field = "subscription_cal_url"
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, not {type(value).__name__}", field=field)
    check_text(field, value)
    for position, char in enumerate(value):
        if char.isspace() or unicodedata.category(char) in _NOT_IN_URL:
            raise ValidationError(
                f"{field} must not contain spaces or control characters: "
                f"{char!r} at position {position} of {show(redact_url(value))}",
                field=field,
            )
    try:
        parts = urlsplit(value)
        host = parts.hostname
        ok = parts.scheme.lower() in ("http", "https") and bool(host)
    except ValueError:  # urlsplit raises on a malformed host such as "http://[::1"
        ok, host = False, None
    if not ok:
        raise ValidationError(
            f"{field} must be an http(s) URL with a host, not {show(redact_url(value))}",
            field=field,
        )
    bracketed = parts.netloc.rpartition("@")[2].startswith("[")
    if host and not bracketed and not all(c.isalnum() or c in _HOST_PUNCTUATION for c in host):
        raise ValidationError(
            f"{field} has {show(host)} as its host, which is not a host name", field=field
        )
