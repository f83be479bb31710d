"""One rule for a public namespace: its classes show its path, as httpx's do."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

__all__ = ["publish"]


def publish(namespace: MutableMapping[str, object], names: Iterable[str]) -> None:
    """Give the classes among `names` the namespace's own `__module__`.

    Reprs, tracebacks and docs then show `asyncgroups.GroupsClient`, not the private
    module it is defined in. `namespace` is the package's `globals()`.
    """
    public = str(namespace["__name__"])
    for name in names:
        obj = namespace[name]
        if isinstance(obj, type) and obj.__module__.startswith(f"{public}."):
            obj.__module__ = public
