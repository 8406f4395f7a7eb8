"""The mas pytest plugin: a running mas for your own agent tests (registered as the `mas` plugin).

Inert until a test asks for one of its fixtures: importing it starts nothing and imports neither
the server nor the SDK.

Fixtures: ``mas_instance`` (one server per test session), ``mas`` (that server prepared for the
test), ``mas_client`` / ``mas_async_client`` (an `anthropic` client configured for it).

Options, or ini keys of the same name with underscores: ``--mas-model``
offline|replay|record|record_missing, ``--mas-cassette-dir``, ``--mas-sandbox`` local|docker,
``--mas-upstream`` (record modes: a compatible base URL instead of the real API).

Markers: ``@pytest.mark.mas_cassette("name")`` picks the test's cassette (by default one per test,
named after its module and name); ``@pytest.mark.mas_clean`` gives the test a server with an empty
database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

if TYPE_CHECKING:
    import anthropic

    from app.testing.server import MasInstance, SandboxKind

OPTIONS = {
    "mas_model": ("offline", "offline (default), replay, record or record_missing"),
    "mas_cassette_dir": ("cassettes", "directory of cassettes, relative to the rootdir"),
    "mas_sandbox": ("local", "where built-in tools run: local (default) or docker"),
    "mas_upstream": ("", "record modes: the Messages API base URL (default: ANTHROPIC_BASE_URL or the API)"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mas", "mas: a Managed Agents server for agent tests")
    for name, (default, help_text) in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        group.addoption(flag, dest=name, default=None, help=help_text)
        parser.addini(name, help_text, default=default)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mas_cassette(name): the cassette this test records to or replays")
    config.addinivalue_line("markers", "mas_clean: run this test against a mas with an empty database")


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption(name) or config.getini(name)
    return str(value)


@pytest.fixture(scope="session")
def mas_instance(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MasInstance]:
    """A mas server for the whole test session (`mas serve`, SQLite in a temp dir)."""
    from app.testing.server import MODEL_MODES, MasInstance

    model = _option(pytestconfig, "mas_model")
    if model not in MODEL_MODES:
        raise pytest.UsageError(f"--mas-model must be one of {', '.join(MODEL_MODES)}, not {model!r}")
    sandbox = _option(pytestconfig, "mas_sandbox")
    if sandbox not in ("local", "docker"):
        raise pytest.UsageError(f"--mas-sandbox must be local or docker, not {sandbox!r}")
    cassette_dir = Path(_option(pytestconfig, "mas_cassette_dir"))
    instance = MasInstance(
        workdir=tmp_path_factory.mktemp("mas"),
        model=model,
        cassette_dir=(pytestconfig.rootpath / cassette_dir).resolve(),
        sandbox=cast("SandboxKind", sandbox),
        upstream=_option(pytestconfig, "mas_upstream") or None,
    )
    with instance:
        yield instance


def cassette_name(node: pytest.Item) -> str:
    """The test's cassette: its `mas_cassette` marker, else `<module path>/<test name>`."""
    marker = node.get_closest_marker("mas_cassette")
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], str):
            raise pytest.UsageError(f"{node.nodeid}: use @pytest.mark.mas_cassette('name')")
        return marker.args[0]
    module = Path(node.nodeid.split("::")[0]).with_suffix("").as_posix()
    test = re.sub(r"[^A-Za-z0-9_.\-]+", "_", node.name).strip("_")
    return f"{module}/{test}"


@pytest.fixture
def mas(mas_instance: MasInstance, request: pytest.FixtureRequest) -> MasInstance:
    """The session's server, prepared for this test: emptied (`mas_clean`), its cassette in use."""
    if request.node.get_closest_marker("mas_clean") is not None:
        mas_instance.restart_clean()
    if mas_instance.uses_cassettes:
        mas_instance.use_cassette(cassette_name(request.node))
    return mas_instance


@pytest.fixture
def mas_client(mas: MasInstance) -> Iterator[anthropic.Anthropic]:
    """An `anthropic.Anthropic` client of the test's mas."""
    import anthropic

    with anthropic.Anthropic(base_url=mas.url, api_key=mas.api_key) as client:
        yield client


@pytest.fixture
def mas_async_client(mas: MasInstance) -> anthropic.AsyncAnthropic:
    """An `anthropic.AsyncAnthropic` client of the test's mas. A plain fixture, so it works with
    any async test runner; `async with mas_async_client:` closes it in the test's own loop."""
    import anthropic

    return anthropic.AsyncAnthropic(base_url=mas.url, api_key=mas.api_key)
