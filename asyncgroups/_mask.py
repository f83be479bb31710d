"""Masking secrets in server text, in errors and in URLs. Pure: no I/O, no asyncio.

The secrets are what the project sends: the API key as the `Authorization` header, raw
(it is not wrapped in `Bearer` or `Basic`); a proxy's password in the proxy URL, which
aiohttp sends as `Proxy-Authorization: Basic <base64 of user:password>`, so that token is
a secret too (`url_secrets` lists both); a Redis password, in its URL's user-info or a
`password=` query value. `redact_url` is how every URL the project echoes is shown: its
user-info (all before the last `@`) masked.

A server can echo a secret in many spellings: raw, JSON-escaped (`\\/`, `\\"`, or any
character as `\\uXXXX`, in either case of hex), percent-encoded (`%4D`, `+` for a
space), or as HTML character references (`&#77;`, `&#x4d;`, and every named one of
HTML5: `&amp;`, `&sol;`, `&lowbar;`), and can mix them character by character, in
either case of letters (a server that upper-cases what it echoes: `8F14E45F-…` is the
same UUID key as `8f14e45f-…`). It can
also echo part of it: a header line cut at 100 bytes, a key with its last character
dropped. So a run of at least half the secret's characters (and at least 8) that starts
it is masked too: what is left unseen is still a secret. (Cuts come at the end of a
limit; a pattern for fragments that end the secret would cost every mask a pass that
cannot start at a known character.) `SecretMasker` matches every such spelling of each secret, and
`scrub` applies it to an error and to every exception chained to it (`__cause__`,
`__context__`, the members of a group), so no attribute, note or traceback of an error
asyncgroups raises shows the key. All of this runs on the error path only.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html.entities
import re
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, unquote_plus

__all__ = ["MASK", "SecretMasker", "redact_url", "url_secrets", "without_request_head"]

#: What a secret is replaced with.
MASK = "***"

#: JSON's short escapes (RFC 8259, section 7).
_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n"}
_JSON_SHORT |= {"\r": "\\r", "\t": "\\t"}
#: The fewest characters of a secret that count as showing it, at a start or an end.
_LEAST_FRAGMENT = 8
#: How deep `scrub` follows chained exceptions; a longer chain is cut there.
_MAX_CHAIN = 64
#: An RFC 3986 scheme and `://`: where a URL's authority starts.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: A user name as a URL may hold it unencoded; anything else is not shown.
_PLAIN_USER = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]*")
#: A query parameter and its value, up to the next `&` (a `#` in a password included).
_QUERY_PARAM = re.compile(r"([?&])([^=&#]*)=([^&]*)")


def _hex(number: int, width: int) -> str:
    """A regex for `number` in hex of at least `width` digits, in either case."""
    digits = f"{number:0{width}x}"
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def _spellings(char: str) -> str:
    """A regex alternation matching `char` in every spelling a server may echo it in."""
    code = ord(char)
    options = []
    # JSON: \uXXXX (a surrogate pair past the BMP), and a short escape where there is one.
    if code > 0xFFFF:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        options.append(rf"\\u{_hex(high, 4)}\\u{_hex(low, 4)}")
    else:
        options.append(rf"\\u{_hex(code, 4)}")
    if char in _JSON_SHORT:
        options.append(re.escape(_JSON_SHORT[char]))
    # Percent-encoding of the UTF-8 bytes, and a form-encoded space.
    options.append("".join(f"%{_hex(byte, 2)}" for byte in char.encode("utf-8", "surrogatepass")))
    if char == " ":
        options.append(r"\+")
    # HTML: decimal and hex character references, and a named one where there is one.
    options.append(f"&#0*{code};")
    options.append(f"&#[xX]0*{_hex(code, 1)};")
    options += (re.escape(f"&{name}") for name in _html_names().get(char, ()))
    options.append(re.escape(char))
    return "(?:" + "|".join(options) + ")"


@functools.cache
def _html_names() -> dict[str, tuple[str, ...]]:
    """Every HTML5 named reference of each single character (`"/"`: `sol;`), longest
    first, so `&amp;` is matched whole and not as the legacy `&amp`."""
    names: dict[str, list[str]] = {}
    for name, char in html.entities.html5.items():
        if len(char) == 1:
            names.setdefault(char, []).append(name)
    return {char: tuple(sorted(found, key=len, reverse=True)) for char, found in names.items()}


def _secret_pattern(secret: str) -> str:
    """A regex for `secret` whole, or a run of at least half of it (and at least
    `_LEAST_FRAGMENT` characters) that starts it, each character in any spelling."""
    spelled = [_spellings(char) for char in secret]
    count = len(spelled)
    least = max(min(_LEAST_FRAGMENT, count), -(-count // 2))
    # The first `least` characters, then each further one as long as the one before was.
    rest = "".join(f"(?:{s}" for s in spelled[least:]) + ")?" * (count - least)
    return "".join(spelled[:least]) + rest


def _split_userinfo(url: str) -> tuple[str, str | None, str]:
    """`url` as (its scheme and `://`, its user-info or None, the rest).

    The user-info is everything between `://` (or the start, without a scheme) and the
    LAST `@` of the whole text, not where a URL parser would end it: a password with a
    raw `/`, `?`, `#` or `@` ends the parser's authority early and leaves the rest of
    the password in the host, path, query or fragment. An `@` that belongs to a path or
    query makes more of the URL masked, never less.
    """
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    at = url.rfind("@")
    if at < start:
        return url[:start], None, url[start:]
    return url[:start], url[start:at], url[at + 1 :]


def _is_password_param(name: str) -> bool:
    return unquote_plus(name).lower() == "password"


def _user_and_password(userinfo: str) -> tuple[str | None, str]:
    """The user name (None when it may be a secret) and the password of a user-info.

    A user-info without a `:` is taken as a password: it is as often a token
    (`https://TOKEN@host`) as a user name. A user name that a URL could not hold
    unencoded is part of something else, and not shown either.
    """
    user, colon, password = userinfo.partition(":")
    if not colon:
        return None, user
    return (user if _PLAIN_USER.fullmatch(user) else None), password


def redact_url(url: str) -> str:
    """`url` as messages show it: the password in its user-info (the whole user-info
    when it has no `:`) and any `password=` query value replaced by `***`."""
    head, userinfo, rest = _split_userinfo(url)
    if userinfo is not None:
        user, _ = _user_and_password(userinfo)
        head += f"{MASK}@" if user is None else f"{user}:{MASK}@"
    return head + _QUERY_PARAM.sub(
        lambda m: f"{m[1]}{m[2]}={MASK}" if _is_password_param(m[2]) else m[0], rest
    )


def url_secrets(url: str) -> list[str]:
    """The secrets `url` carries, in each spelling the project sends them.

    The password of its user-info as written and decoded (all of a user-info without a
    `:`), any `password=` query value, and the token of `Basic <token>` (base64 of the
    decoded `user:password`, as aiohttp sends for a proxy URL, in Latin-1 and in UTF-8)
    when there is a user-info at all.
    """
    _, userinfo, rest = _split_userinfo(url)
    found: list[str] = []
    if userinfo is not None:
        user, _, password = userinfo.partition(":")
        secret = _user_and_password(userinfo)[1]
        found += [secret, unquote(secret)]
        credentials = f"{unquote(user)}:{unquote(password)}"
        for encoding in ("latin-1", "utf-8"):
            with contextlib.suppress(UnicodeEncodeError):
                found.append(base64.b64encode(credentials.encode(encoding)).decode("ascii"))
    for match in _QUERY_PARAM.finditer(rest):
        if _is_password_param(match[2]):
            found += [match[3], unquote_plus(match[3])]
    return list(dict.fromkeys(secret for secret in found if secret))


class SecretMasker:
    """Replaces every spelling of some secrets (see the module docstring) with `***`.

    The pattern is built on first use, so a client that never meets an error never
    pays for it.
    """

    __slots__ = ("_pattern", "secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        #: The secrets masked; empty strings are left out (they would match everywhere).
        self.secrets = tuple(dict.fromkeys(s for s in secrets if s))
        self._pattern: re.Pattern[str] | None = None

    def _compiled(self) -> re.Pattern[str] | None:
        if self._pattern is None and self.secrets:
            # Longest first: a secret that contains another is masked whole.
            ordered = sorted(self.secrets, key=len, reverse=True)
            alternatives = "|".join(_secret_pattern(secret) for secret in ordered)
            self._pattern = re.compile(alternatives, re.IGNORECASE)
        return self._pattern

    def mask(self, text: str) -> str:
        """`text` with every spelling of every secret replaced by `***`."""
        pattern = self._compiled()
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def leaks(self, text: str) -> bool:
        """True when `text` holds a spelling of a secret."""
        pattern = self._compiled()
        return pattern is not None and pattern.search(text) is not None

    def mask_value(self, value: Any) -> Any:
        """`value` masked if it is text (str, bytes, or a tuple or list of them)."""
        if isinstance(value, str):
            masked = self.mask(value)
            return value if masked == value else masked  # keeps a str subclass untouched
        if isinstance(value, bytes | bytearray):
            text = bytes(value).decode("utf-8", "surrogateescape")
            masked = self.mask(text)
            return value if masked == text else masked.encode("utf-8", "surrogateescape")
        if type(value) in (tuple, list):  # not a named tuple: it could not be rebuilt so
            masked_items = [self.mask_value(item) for item in value]
            if any(new is not old for new, old in zip(masked_items, value, strict=True)):
                return type(value)(masked_items)
        return value

    def scrub(self, error: BaseException) -> BaseException:
        """Mask `error` and every exception chained to it, in place; return `error`.

        Text is masked where it is kept: `args`, string attributes, `__notes__`. A
        chained exception that still shows a secret after that (an aiohttp error
        holding the request's headers, say) is cut from the chain: a cause is worth
        less than the key.
        """
        if self.secrets:
            self._scrub(error, set(), 0)
        return error

    def _scrub(self, error: BaseException, seen: set[int], depth: int) -> bool:
        """Scrub `error` and its chain; False when it still leaks and must be cut."""
        if id(error) in seen:
            return True
        seen.add(id(error))
        self._mask_in_place(error)
        for name in ("__cause__", "__context__"):
            linked = getattr(error, name)
            if linked is not None and (
                depth >= _MAX_CHAIN or not self._scrub(linked, seen, depth + 1)
            ):
                setattr(error, name, None)
                error.__suppress_context__ = True
        if isinstance(error, BaseExceptionGroup):
            # A group's members cannot be swapped out; one that leaks sinks the group.
            for member in error.exceptions:
                if not self._scrub(member, seen, depth + 1):
                    return False
        return not self._still_leaks(error)

    def _mask_in_place(self, error: BaseException) -> None:
        with contextlib.suppress(AttributeError, TypeError):  # a type refusing new args
            error.args = self.mask_value(error.args)
        for name, value in list(getattr(error, "__dict__", {}).items()):
            masked = self.mask_value(value)
            if masked is not value:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(error, name, masked)
        notes = getattr(error, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [self.mask_value(note) for note in notes]

    def _still_leaks(self, error: BaseException) -> bool:
        texts: list[object] = [error.args, *getattr(error, "__notes__", ())]
        texts += getattr(error, "__dict__", {}).values()
        try:
            texts.append(str(error))
            return any(self.leaks(repr(text)) or self.leaks(str(text)) for text in texts)
        except Exception:  # a __str__ or __repr__ that raises cannot be checked: cut it
            return True


def without_request_head(err: BaseException) -> BaseException:
    """`err` with the locals of aiohttp's request-writer frames in its tracebacks cleared.

    The writer serialises the request head, the Authorization header among it, to bytes
    and holds them in a local while it writes; a write to a connection that closed
    meanwhile (a stale keep-alive) raises there, and the bytes would be shown by any
    traceback rendered with locals. Every exception chained to `err` is searched, as
    `__cause__` and as `__context__`: on Python 3.13 aiohttp's reset error reaches the
    caller as the cause, not the context. Those frames keep their names and line numbers.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            if frame.f_globals.get("__name__") == "aiohttp.http_writer":
                with contextlib.suppress(RuntimeError):  # a frame still running
                    frame.clear()
        todo += (exc.__cause__, exc.__context__)
    return err
