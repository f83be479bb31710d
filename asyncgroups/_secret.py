"""`Secret`: a string that never shows itself in a repr, for the API key. Performs no I/O."""

from __future__ import annotations

from typing import Final, SupportsIndex

__all__ = ["MASK", "Secret"]

#: What a secret looks like wherever it is shown: in reprs and in cleaned error text.
MASK: Final = "***"


class Secret(str):
    """The API key, as the pipeline holds it and hands it to aiohttp as a header value.

    It is a `str`, so it is sent exactly: aiohttp and multidict keep header values as the
    objects they are given (copies of a header mapping hold this same object), and the
    request writer serialises a `str` subclass from its characters. Only what renders
    frame locals differs: `traceback` with `capture_locals=True`, pytest's `-l`, rich's
    and structlog's `show_locals` all call `repr`, which shows `'***'`; rich and
    structlog first cut strings longer than their limit, so a slice is a `Secret` too.
    `str(secret)` and f-strings still give the key: that is how it is sent.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)

    def __getitem__(self, index: SupportsIndex | slice, /) -> str:
        return Secret(str.__getitem__(self, index))
