"""The distribution's metadata: extras the documentation names exist, and the licence ships.

Pure file reads (pyproject.toml with tomllib, README.md, docs/, LICENSE); nothing is built.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The README and every page of the documentation site, as one text.
DOCS = "\n".join(
    path.read_text(encoding="utf-8")
    for path in [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]
)

#: An extra named in an install line: `asyncgroups[a,b]` or `-e ".[a,b]"`.
_EXTRAS_IN_INSTALL = re.compile(r"pip install[^\n`]*?(?:asyncgroups|\.)\[([A-Za-z0-9_,\- ]+)\]")


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _extras() -> dict[str, list[str]]:
    extras: dict[str, list[str]] = _pyproject()["project"]["optional-dependencies"]
    return extras


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() for req in requirements}


def test_install_lines_of_the_docs_name_only_real_extras() -> None:
    named = {
        extra.strip() for group in _EXTRAS_IN_INSTALL.findall(DOCS) for extra in group.split(",")
    }
    assert {"cli", "test", "fastapi", "testing", "starlette", "redis", "docs"} <= named
    assert named <= set(_extras())


def test_fastapi_extra_installs_what_the_docs_example_runs() -> None:
    assert {"fastapi", "uvicorn"} <= _names(_extras()["fastapi"])
    example = (ROOT / "examples" / "fastapi_app.py").read_text(encoding="utf-8")
    web_apps = (ROOT / "docs" / "web-apps.md").read_text(encoding="utf-8")
    assert "uvicorn examples.fastapi_app:app" in web_apps
    assert "from fastapi import" in example
    assert 'pip install -q -e ".[fastapi]"' in web_apps



def test_web_apps_install_line_installs_what_its_examples_import() -> None:
    web_apps = (ROOT / "docs" / "web-apps.md").read_text(encoding="utf-8")
    intro = web_apps.split("\n## ", 1)[0]
    installed = {
        word.strip('"') for line in re.findall(r"`pip install ([^`]*)`", intro)
        for word in line.split()
    }
    code = "\n".join(re.findall(r"```python\n(.*?)```", web_apps, flags=re.S))
    imported = set(re.findall(r"^(?:from|import) ([\w.]+)", code, flags=re.M))
    # FastAPI's TestClient runs on httpx2; the async test drives the app with httpx.
    needs = {"fastapi": "asyncgroups[fastapi]", "fastapi.testclient": "httpx2", "httpx": "httpx"}
    assert {needs[module] for module in imported & needs.keys()} <= installed
    assert {"fastapi.testclient", "httpx"} <= imported


def test_testing_page_sets_the_pytest_asyncio_options_the_project_sets() -> None:
    testing = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    [snippet] = re.findall(r"```toml\n(.*?)```", testing, flags=re.S)
    users = tomllib.loads(snippet)["tool"]["pytest"]["ini_options"]
    ours = _pyproject()["tool"]["pytest"]["ini_options"]
    # Without the loop scope, pytest-asyncio warns on every run of the user's suite.
    asyncio_options = {name for name in ours if name.startswith("asyncio_")}
    assert {name: users.get(name) for name in asyncio_options} == {
        name: ours[name] for name in asyncio_options
    }

def test_testing_extra_is_slim_and_covers_the_plugin() -> None:
    testing = _names(_extras()["testing"])
    assert testing == {"pytest", "pytest-asyncio", "trustme"}
    # The project's own tools stay in `test`, out of users' test environments.
    assert {"ruff", "mypy", "fastapi"} <= _names(_extras()["test"])
    assert testing <= _names(_extras()["test"])


def test_install_hints_of_the_testing_kit_name_the_testing_extra() -> None:
    for module in ("plugin.py", "_tls.py"):
        source = (ROOT / "asyncgroups" / "testing" / module).read_text(encoding="utf-8")
        assert "asyncgroups[testing]" in source
        assert "asyncgroups[test]" not in source


def test_license_file_exists_and_is_declared_for_the_wheel() -> None:
    project = _pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 asyncgroups developers" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    # hatchling reads `license-files` (PEP 639) from 1.27 on.
    requires = _pyproject()["build-system"]["requires"]
    assert any(re.fullmatch(r"hatchling>=1\.(2[7-9]|[3-9]\d)(\.\d+)*", r) for r in requires)


def test_redis_extra_brings_redis_py_and_the_core_install_does_not() -> None:
    assert _names(_extras()["redis"]) == {"redis"}
    assert "redis" in _names(_extras()["test"])  # the README's test command runs its tests
    assert _names(_pyproject()["project"]["dependencies"]) == {"aiohttp", "attrs", "cattrs"}
    source = (ROOT / "asyncgroups" / "contrib" / "redis.py").read_text(encoding="utf-8")
    assert "asyncgroups[redis]" in source
