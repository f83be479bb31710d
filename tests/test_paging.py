"""The page-stop rules of a listing, as tables: no I/O."""

from __future__ import annotations

import pytest

from asyncgroups import GroupSummary
from asyncgroups._paging import MAX_PAGES, PAGE_SIZE, PageTracker, PagingError, page_path


def _page(start: int, count: int) -> list[GroupSummary]:
    return [GroupSummary(prokey=f"k{n}") for n in range(start, start + count)]


def _follow(pages: list[list[GroupSummary]], **options: int) -> tuple[list[str], int]:
    """Feed `pages` in turn; return the keys listed and how many pages were asked for."""
    tracker = PageTracker(**options)
    keys: list[str] = []
    asked = 0
    while (number := tracker.next_page) is not None:
        asked += 1
        page = pages[number - 1] if number <= len(pages) else []
        keys += [summary.prokey for summary in tracker.take(number, page)]
    return keys, asked


def test_page_path_asks_for_page_one_without_a_parameter() -> None:
    assert page_path(1) == "/group/all"
    assert page_path(2) == "/group/all?page=2"
    assert page_path(17) == "/group/all?page=17"


@pytest.mark.parametrize(
    ("sizes", "listed", "asked"),
    [
        ([], 0, 1),  # an empty account: one request
        ([10], 10, 2),  # a short first page: the empty second proves the end
        ([800], 800, 2),
        ([800, 800], 1600, 3),
        ([800, 800, 150], 1750, 3),  # a page shorter than the first ends it
        ([500, 500, 200], 1200, 3),  # a smaller page size is learnt from page 1
        ([800, 1, 5], 801, 2),  # the first short page ends it, whatever follows
    ],
)
def test_page_tracker_stops_at_an_empty_or_short_page(
    sizes: list[int], listed: int, asked: int
) -> None:
    pages, start = [], 0
    for size in sizes:
        pages.append(_page(start, size))
        start += size
    keys, pages_asked = _follow(pages)
    assert keys == [f"k{n}" for n in range(listed)]
    assert pages_asked == asked


def test_page_tracker_gives_a_group_listed_twice_once() -> None:
    # A group created meanwhile pushed k799 from page 1 onto page 2 as well.
    pages = [_page(0, 800), _page(799, 800), _page(1599, 3)]
    keys, _ = _follow(pages)
    assert keys == [f"k{n}" for n in range(1602)]


def test_page_tracker_refuses_a_full_page_that_brings_nothing_new() -> None:
    # A server that ignores ?page= answers page 1 again: the account may be larger.
    tracker = PageTracker()
    tracker.take(1, _page(0, PAGE_SIZE))
    with pytest.raises(PagingError, match=r"page 2 .* ignore \?page="):
        tracker.take(2, _page(0, PAGE_SIZE))


@pytest.mark.parametrize(
    ("first", "second", "listed"),
    [
        (_page(0, PAGE_SIZE + 1), _page(0, PAGE_SIZE + 1), PAGE_SIZE + 1),
        (_page(0, 1000), _page(0, 1000), 1000),
        (_page(0, 5000), _page(0, 5000), 5000),
        # The service promises no order: the same groups, reordered, are still a repeat.
        (_page(0, 1000), _page(0, 1000)[::-1], 1000),
    ],
)
def test_page_tracker_takes_a_first_page_over_the_page_size_repeated_as_the_account(
    first: list[GroupSummary], second: list[GroupSummary], listed: int
) -> None:
    # More than 800 at once proves the server does not page at 800; the same groups
    # again for ?page=2 prove it ignores `page`: page 1 was the whole account.
    keys, asked = _follow([first, second])
    assert keys == [f"k{n}" for n in range(listed)]
    assert asked == 2


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # Exactly the page size, repeated: the account may hold more than that page.
        (_page(0, PAGE_SIZE), _page(0, PAGE_SIZE)),
        # Longer than the page size, then a page of the same length listing some
        # groups twice: not a repeat of page 1, so no proof of anything.
        (_page(0, 1000), _page(0, 999) + _page(0, 1)),
    ],
)
def test_page_tracker_refuses_a_repeat_that_proves_nothing(
    first: list[GroupSummary], second: list[GroupSummary]
) -> None:
    tracker = PageTracker()
    tracker.take(1, first)
    with pytest.raises(PagingError, match=r"ignore \?page="):
        tracker.take(2, second)


def test_page_tracker_refuses_a_later_page_that_brings_nothing_new() -> None:
    # Pages of 1,000 that did page (page 2 was new), then page 3 repeats page 2.
    tracker = PageTracker()
    tracker.take(1, _page(0, 1000))
    tracker.take(2, _page(1000, 1000))
    with pytest.raises(PagingError, match="page 3"):
        tracker.take(3, _page(1000, 1000))


def test_page_tracker_takes_a_short_page_repeated_as_an_unpaged_account() -> None:
    # A server from before paging: everything at once, and ?page= ignored.
    keys, asked = _follow([_page(0, 40), _page(0, 40)])
    assert keys == [f"k{n}" for n in range(40)]
    assert asked == 2


def test_page_tracker_ends_after_max_pages_with_an_error() -> None:
    tracker = PageTracker(max_pages=3)
    tracker.take(1, _page(0, 10))
    tracker.take(2, _page(10, 10))
    with pytest.raises(PagingError, match="did not end within 3 pages"):
        tracker.take(3, _page(20, 10))


def test_page_tracker_refuses_a_page_out_of_turn() -> None:
    tracker = PageTracker()
    with pytest.raises(PagingError, match="out of turn"):
        tracker.take(2, _page(0, 1))


def test_page_tracker_counts_distinct_groups_and_bounds_pages() -> None:
    tracker = PageTracker()
    tracker.take(1, _page(0, 3) + _page(0, 1))
    assert tracker.count == 3
    assert MAX_PAGES * PAGE_SIZE >= 4_000_000
