"""Claims a scenario proves against the fake server's state: plain records, no I/O."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = ["Check", "Finding", "failed_claims"]


@attrs.frozen
class Check:
    """One claim proved against the server's state, and whether it held."""

    claim: str
    holds: bool


@attrs.define
class Finding:
    """What a step did (one line) and the checks it proved."""

    said: str
    checks: list[Check] = attrs.Factory(list)

    @property
    def holds(self) -> bool:
        """True when every check held."""
        return all(check.holds for check in self.checks)


def failed_claims(checks: Iterable[Check]) -> list[str]:
    """The claims that did not hold, for `assert failed_claims(...) == []` in a test."""
    return [check.claim for check in checks if not check.holds]
