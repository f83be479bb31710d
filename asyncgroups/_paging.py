"""When a listing of the account is complete: the page-stop rules, with no I/O.

`GET /group/all` answers at most a page of groups (800, the service's documented "GET
Limit"); `?page=2` gives the next, and so on. The replies do not say the page size nor
how many pages there are, and the service does not promise an order, so the rules here
learn the page size from the first page and trust nothing they cannot check:

- an empty page ends the listing; so does a page shorter than the first one;
- a page that brings no group not already listed means the server ignores `page`. The
  first page was then the whole account (a server that predates paging) and the
  listing is complete when that page was shorter than the documented page size, or
  longer than it (which proves the server does not page at that size) and page 2
  lists exactly its groups again. Otherwise (a first page of exactly the page size,
  or a later page) the listing cannot be trusted, and it ends with an error rather
  than a silently partial result;
- a group listed twice (groups shift between pages while others are created or
  deleted) is given once;
- there are at most `MAX_PAGES` pages, whatever the server says.

An account of less than one page therefore costs two requests: the second, empty, is
what proves the first was all of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .models import GroupSummary

__all__ = ["MAX_PAGES", "PAGE_SIZE", "PageTracker", "PagingError", "page_path"]

#: Groups in one page of an `all` read, as the service documents it.
PAGE_SIZE: Final = 800
#: Pages read at most for one listing (4,000,000 groups at the documented page size).
MAX_PAGES: Final = 5_000

_LIST_PATH: Final = "/group/all"


class PagingError(Exception):
    """The pages cannot add up to a trustworthy listing; the message says why."""


def page_path(number: int) -> str:
    """The request path of page `number` (page 1 is asked for without a parameter)."""
    return _LIST_PATH if number == 1 else f"{_LIST_PATH}?page={number}"


class PageTracker:
    """Follows one listing page by page: which page to ask for next, and what is new.

    Feed each page to `take` in order; `next_page` is None once the listing is complete.
    """

    __slots__ = ("_first", "_max_pages", "_next", "_page_size", "_seen")

    def __init__(self, *, page_size: int = PAGE_SIZE, max_pages: int = MAX_PAGES) -> None:
        self._page_size = page_size
        self._max_pages = max_pages
        self._seen: set[str] = set()
        self._first: int | None = None
        self._next: int | None = 1

    @property
    def next_page(self) -> int | None:
        """The number of the page to read next, or None when the listing is complete."""
        return self._next

    @property
    def count(self) -> int:
        """Distinct groups listed so far."""
        return len(self._seen)

    def take(self, number: int, page: Iterable[GroupSummary]) -> list[GroupSummary]:
        """The groups of page `number` not listed before; raises `PagingError` when the
        pages stop making sense."""
        if number != self._next:
            raise PagingError(f"page {number} was read out of turn (expected {self._next})")
        items = list(page)
        fresh: list[GroupSummary] = []
        for summary in items:
            if summary.prokey not in self._seen:
                self._seen.add(summary.prokey)
                fresh.append(summary)
        if self._first is None:
            self._first = len(items)
            self._next = 2 if items else None
            return fresh
        if not items or len(items) < self._first:
            self._next = None
        elif not fresh:
            if self._unpaged(number, items):
                self._next = None  # the server ignores `page`: page 1 was the account
            else:
                raise PagingError(
                    f"page {number} of the account's groups listed no group that earlier "
                    "pages had not, so the server seems to ignore ?page=; the listing "
                    "cannot be trusted to be complete"
                )
        elif number >= self._max_pages:
            raise PagingError(
                f"the account's groups did not end within {self._max_pages} pages; the "
                "listing cannot be trusted to be complete"
            )
        else:
            self._next = number + 1
        return fresh

    def _unpaged(self, number: int, page: list[GroupSummary]) -> bool:
        """True when page `number`, which brought nothing new, proves that page 1 was
        the whole account (see the module docstring)."""
        assert self._first is not None
        if self._first < self._page_size:
            return True
        # Page 1 is everything seen before page 2; the order is not promised.
        repeat = number == 2 and {summary.prokey for summary in page} == self._seen
        return self._first > self._page_size and repeat
