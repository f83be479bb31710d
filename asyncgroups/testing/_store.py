"""The fake server's in-memory account and the API's documented rules. No I/O.

Every operation returns the status and JSON body the real service would answer, so
the HTTP edge (`_server.py`) only routes, times and breaks things. The rules follow
the Groups API documentation (`groups-api.md`); where it is silent, the choice made is
written next to the code and in the docs (`docs/testing.md`).
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal

__all__ = ["CREDIT_EVERY", "PAGE_SIZE", "Reply", "Shape", "Store", "timestamp"]

#: The answer shapes: the documented list-wrapped read, or the newer bare object.
Shape = Literal["list", "object"]

#: Every n-th successful update costs the account one event credit.
CREDIT_EVERY: Final = 5
#: Groups in one page of `GET /group/all` ("GET Limit" in the service's documentation).
#: The fake spells the service's rules itself, so a client mistake cannot hide behind it.
PAGE_SIZE: Final = 800

#: A status and a JSON-able body.
Reply = tuple[int, Any]

NOT_FOUND: Final[Reply] = (404, {"message": "No entry found"})

_SUBSCRIPTIONS: Final = ("no", "external", "children")
_STATUSES: Final = ("published", "draft")
_OPTIONAL_STRINGS: Final = ("internal_note", "layout", "cta_block", "landingpage")
_OPTIONAL_FLAGS: Final = ("cta", "public_event_overview")
# The documented order of a read's fields (before `events`).
_READ_ORDER: Final = (
    "name", "status", "internal_note", "subscription", "subscription_cal_url",
    "layout", "cta", "cta_block", "date_updated", "date_created",
)  # fmt: skip
#: Writable fields the current documentation adds (a landing-page template id, and a
#: flag making the group's button list all its events): kept only once written, so the
#: documented list-shaped read shows them only then.
_NEWER: Final = ("landingpage", "public_event_overview")
#: The fields a create or update may carry: those of a read but the dates the server
#: keeps, and the newer ones (anything else is refused with a 400). Not the client's
#: `WRITABLE_FIELDS`: the fake plays the service, so it spells the service's rules
#: itself, and a client mistake in that list cannot hide behind it.
WRITABLE: Final = frozenset(_READ_ORDER + _NEWER) - {"date_updated", "date_created"}


def timestamp(moment: datetime | None = None) -> str:
    """A date as the API writes it: UTC, milliseconds, `Z` (`2023-11-24T15:05:14.079Z`).

    Deliberately not the package's own formatter (`asyncgroups._timestamp`): the fake
    plays the service, so it spells the service's format itself, and a change to the
    client's formatting cannot hide behind it.
    """
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Refused(Exception):
    """A request the rules refuse; carries the reply to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.reply: Reply = (status, {"message": message})


class Store:
    """One account: its groups, their linked events, its credits and update count."""

    __slots__ = ("_drafted", "_events", "_groups", "_ids", "credits", "updates")

    def __init__(self, *, credits: int, seed: int) -> None:
        self._groups: dict[str, dict[str, Any]] = {}
        self._events: dict[str, list[str]] = {}
        self._drafted: set[str] = set()
        # Keys come from their own seeded generator, so they replay with the seed
        # without shifting the fault decisions' random sequence.
        self._ids = random.Random(f"asyncgroups-fake-ids-{seed}")
        self.credits = credits
        self.updates = 0

    # Seeding and inspection ----------------------------------------------------------

    def new_key(self) -> str:
        """A fresh uuid4-shaped prokey, reproducible from the seed."""
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def add_group(self, fields: Mapping[str, Any], *, prokey: str | None = None) -> str:
        """Store a group as given (no validation beyond a string name) and return its key."""
        name = fields.get("name")
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, not {type(name).__name__}")
        key = prokey if prokey is not None else self.new_key()
        if key in self._groups:
            raise ValueError(f"a group {key} exists already")
        now = timestamp()
        record: dict[str, Any] = {
            "name": name,
            "status": "published",
            "internal_note": None,
            "subscription": "no",
            "subscription_cal_url": None,
            "layout": None,
            "cta": False,
            "cta_block": None,
            "date_updated": now,
            "date_created": now,
        }
        record.update(fields)
        self._groups[key] = record
        self._events[key] = []
        return key

    def link_event(self, group: str) -> str:
        """Link a new event to `group` and return the event's key."""
        if group not in self._groups:
            raise KeyError(f"no group {group}")
        key = self.new_key()
        self._events[group].append(key)
        return key

    def set_drafted_in_app(self, group: str) -> None:
        """Make `group` a draft set in the web app: the API may not publish it again."""
        if group not in self._groups:
            raise KeyError(f"no group {group}")
        self._groups[group]["status"] = "draft"
        self._drafted.add(group)

    def snapshot(self) -> Mapping[str, Mapping[str, Any]]:
        """A read-only copy: prokey -> stored fields, `events` as a tuple of event keys."""
        return MappingProxyType(
            {
                key: MappingProxyType({**fields, "events": tuple(self._events[key])})
                for key, fields in self._groups.items()
            }
        )

    def event_owners(self) -> Mapping[str, str]:
        """A read-only copy: event prokey -> the prokey of the group it is linked to."""
        return MappingProxyType(
            {event: group for group, events in self._events.items() for event in events}
        )

    # Operations -------------------------------------------------------------------

    def read(self, key: str, shape: Shape) -> Reply:
        """`GET /group/{key}`: one group, list-wrapped or bare, without its key."""
        fields = self._groups.get(key)
        if fields is None:
            return NOT_FOUND
        body = self._render(key, fields, shape)
        return 200, ([body] if shape == "list" else body)

    def latest(self, shape: Shape) -> Reply:
        """`GET /group/latest`: the newest group, carrying its key (`id` or `prokey`)."""
        if not self._groups:
            return NOT_FOUND
        key = next(reversed(self._groups))
        body = self._render(key, self._groups[key], shape)
        if shape == "list":
            return 200, [{"id": key, **body}]
        return 200, {"prokey": key, **body}

    def list_all(self, shape: Shape, *, page: str | None, page_size: int | None) -> Reply:
        """`GET /group/all[?page=N]`: one page of the account, in creation order.

        Items are `{"prokey", "name"}` objects, or plain ids in object shape. Pages count
        from 1 (no `page` is page 1); a page past the end is `[]`, and a `page` that is
        not a positive whole number is a 400. With `page_size=None` the account is not
        paged and `page` is ignored, as by a server that predates paging.
        """
        groups: Any = self._groups.items()
        if page_size is not None:
            number = 1 if page is None else _page_number(page)
            if number is None:
                return 400, {"message": f"page must be a positive whole number, not {page!r}"}
            start = (number - 1) * page_size
            groups = itertools.islice(groups, start, start + page_size)
        if shape == "object":
            return 200, [key for key, _ in groups]
        return 200, [{"prokey": key, "name": f["name"]} for key, f in groups]

    def create(self, body: Any, shape: Shape) -> Reply:
        """`POST /group`: validate, store as published, answer the new key in `shape`."""
        try:
            fields = _checked_fields(body)
            if "name" not in fields:
                raise _Refused(400, "The field name is required")
            subscription = fields.get("subscription", "no")
            url = fields.get("subscription_cal_url")
            _check_pair(subscription, url)
        except _Refused as refused:
            return refused.reply
        key = self.add_group(fields)
        if shape == "object":  # the service's current documentation
            return 201, {"status": "success", "message": "created", "prokey": key}
        return 201, {"success": "Created", "id": key}

    def update(self, key: str, body: Any) -> Reply:
        """`PATCH /group/{key}`: validate against the stored state, charge credits, apply."""
        stored = self._groups.get(key)
        if stored is None:
            return NOT_FOUND
        try:
            fields = _checked_fields(body)
            self._check_update(key, stored, fields)
        except _Refused as refused:
            return refused.reply
        if (self.updates + 1) % CREDIT_EVERY == 0:
            if self.credits <= 0:
                return 402, {
                    "message": "Not enough event credits: every 5th update costs one credit"
                }
            self.credits -= 1
        if "subscription" in fields and fields["subscription"] != "external":
            # Leaving "external" without naming a URL drops the stored one.
            fields.setdefault("subscription_cal_url", None)
        stored.update(fields)
        stored["date_updated"] = timestamp()
        self.updates += 1
        return 200, {"success": "Updated"}

    def delete(self, key: str) -> Reply:
        """`DELETE /group/{key}`: remove the group and every event linked to it."""
        if self._groups.pop(key, None) is None:
            return NOT_FOUND
        del self._events[key]
        self._drafted.discard(key)
        return 200, {"success": "Deleted"}

    # Helpers ----------------------------------------------------------------------

    def _check_update(self, key: str, stored: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
        subscription = fields.get("subscription", stored.get("subscription"))
        if "subscription_cal_url" in fields:
            url = fields["subscription_cal_url"]
        elif "subscription" in fields and subscription != "external":
            url = None  # dropped on apply, see update()
        else:
            url = stored.get("subscription_cal_url")
        _check_pair(subscription, url)
        linked = len(self._events[key])
        if linked and "subscription" in fields and subscription != stored.get("subscription"):
            raise _Refused(
                400,
                "The subscription setting cannot be changed while events are linked to "
                f"the group ({linked} events linked)",
            )
        if fields.get("status") == "published" and key in self._drafted:
            raise _Refused(
                403,
                "This group was set to draft in the application and cannot be published "
                "via the API",
            )

    def _render(self, key: str, fields: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
        body = {name: fields.get(name) for name in _READ_ORDER}
        events = self._events[key]
        if shape == "list":
            body["events"] = [{"prokey": [event]} for event in events]
        else:
            body["events"] = list(events)
            body["landingpage"] = fields.get("landingpage")
        for name, value in fields.items():
            if name not in body:
                body[name] = value
        return body


def _checked_fields(body: Any) -> dict[str, Any]:
    """The fields of a create/update body after the per-field rules, or `_Refused`."""
    if not isinstance(body, dict):
        raise _Refused(400, "The request body must be a JSON object")
    unknown = sorted(set(body) - WRITABLE)
    if unknown:
        raise _Refused(400, f"Unknown field(s): {', '.join(unknown)}")
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not name.strip():
            raise _Refused(400, "The field name must be a non-empty string")
    if "status" in body and body["status"] not in _STATUSES:
        raise _Refused(400, 'The field status must be "published" or "draft"')
    if "subscription" in body and body["subscription"] not in _SUBSCRIPTIONS:
        raise _Refused(400, 'The field subscription must be "no", "external" or "children"')
    for name in _OPTIONAL_STRINGS:
        if name in body and body[name] is not None and not isinstance(body[name], str):
            raise _Refused(400, f"The field {name} must be a string or null")
    for name in _OPTIONAL_FLAGS:
        if name in body and body[name] is not None and not isinstance(body[name], bool):
            raise _Refused(400, f"The field {name} must be true, false or null")
    if "subscription_cal_url" in body:
        url = body["subscription_cal_url"]
        if url is not None and (not isinstance(url, str) or not url.startswith("http")):
            raise _Refused(400, 'The field subscription_cal_url must start with "http"')
    return dict(body)


def _check_pair(subscription: Any, url: Any) -> None:
    """The subscription/URL rule on the state a request would leave behind."""
    if subscription == "external":
        if url is None:
            raise _Refused(400, 'subscription "external" requires a subscription_cal_url')
    elif url is not None:
        raise _Refused(400, 'subscription_cal_url is only allowed with subscription "external"')


def _page_number(page: str) -> int | None:
    """`page` as a page number (1 or more), or None when it is not one."""
    if not page.isascii() or not page.isdigit():
        return None
    number = int(page)
    return number if number >= 1 else None
