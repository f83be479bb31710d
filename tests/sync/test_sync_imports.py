"""Sync is built on the client's public API only, and knows nothing of aiohttp. Checked
on the source, so a new import cannot slip in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import asyncgroups

SYNC = Path(asyncgroups.__file__).parent / "sync"
MODULES = sorted(SYNC.glob("*.py"))

#: Core names sync may use although they are not public, with the reason.
#: `PartialNewGroup`: models.py keeps it private on purpose (sync's creates send only the
#: fields a record manages). `check_text` (in `_text`, with the other text rules):
#: the one rule for text that can be sent, which sync applies to the keys it stores.
#: `_filelock` and `_timestamp`: the package's own plumbing (one file lock, one date
#: format) shared with the CLI's journal; neither is part of the client's API.
#: `_telemetry`: `sync.plan` and `sync.apply` are operations of the client's, recorded
#: under spans of their own like the client's operations.
NOT_PUBLIC_ALLOWED = {
    ("asyncgroups.models", "PartialNewGroup"),
    ("asyncgroups._text", "check_text"),
    ("asyncgroups._filelock", "try_lock"),
    ("asyncgroups._filelock", "unlock"),
    ("asyncgroups._timestamp", "iso_utc"),
    ("asyncgroups._telemetry", "Attributes"),
    ("asyncgroups._telemetry", "traced"),
}


def _core_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every name a sync module imports from outside asyncgroups.sync."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                continue  # a sibling in asyncgroups.sync
            if node.level == 2:
                module = "asyncgroups" + (f".{node.module}" if node.module else "")
            else:
                module = node.module or ""
            found += [(module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return [(m, n) for m, n in found if m.split(".")[0] in {"asyncgroups", "aiohttp"}]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_sync_module_imports_only_public_core_names(path: Path) -> None:
    for module, name in _core_imports(path):
        if (module, name) in NOT_PUBLIC_ALLOWED:
            continue
        assert module == "asyncgroups", f"{path.name} imports {name} from {module}"
        assert name in asyncgroups.__all__, f"{path.name} imports non-public {name}"
