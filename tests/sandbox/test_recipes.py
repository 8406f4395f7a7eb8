"""Image recipes and egress policy as text: every manager's steps (even those whose registries
this machine cannot reach), tags, and host matching."""

from __future__ import annotations

import json
import re

import pytest

from app.sandbox import ImageBuildError
from app.sandbox.build_steps import Mirrors, build_steps, dockerfile, image_tag
from app.sandbox.egress import PACKAGE_MANAGER_HOSTS, allowed_hosts, proxy_config
from app.shared.environment_config import LimitedNetworkingConfig
from sandbox.egress.policy import Policy

ALL = {
    "pip": ["pandas==2.0"],
    "npm": ["express@4.18.0"],
    "go": ["golang.org/x/tools/cmd/goimports@latest", "example.com/tool"],
    "gem": ["rails:7.1.0"],
    "cargo": ["hyperfine@1.18.0"],
    "apt": ["cowsay", "jq=1.6-2.1"],
}


def test_managers_run_in_the_hosted_order_with_toolchains_first() -> None:
    steps = build_steps(ALL, Mirrors())
    assert [s.manager for s in steps] == [
        "apt",
        "cargo",
        "cargo",
        "gem",
        "gem",
        "go",
        "go",
        "npm",
        "npm",
        "pip",
    ]
    text = dockerfile("sha256:base", steps)
    assert text.startswith("FROM sha256:base\n")
    assert "apt-get install -y --no-install-recommends cowsay jq=1.6-2.1" in text
    assert "command -v cargo >/dev/null 2>&1 || { apt-get update" in text and "cargo-web" in text
    assert "cargo install --root /usr/local hyperfine@1.18.0" in text
    assert "command -v gem" in text and "gem install --no-document rails:7.1.0" in text
    assert "golang-go" in text and "go install golang.org/x/tools/cmd/goimports@latest" in text
    assert "go install example.com/tool@latest" in text
    assert (
        "apt-get install -y --no-install-recommends npm" in text and "npm install -g express@4.18.0" in text
    )
    assert "python3 -m pip install --no-cache-dir --root-user-action=ignore pandas==2.0" in text


def test_mirrors_are_used_by_every_manager() -> None:
    mirrors = Mirrors(
        apt="http://deb.mirror/debian",
        pip="https://pypi.mirror/simple",
        npm="https://npm.mirror",
        go="https://go.mirror",
        gem="https://gem.mirror",
        cargo="https://crates.mirror/index/",
    )
    text = dockerfile("base", build_steps(ALL, mirrors))
    assert "http://deb.mirror/debian" in text and "/etc/apt/sources.list" in text
    assert "--index-url https://pypi.mirror/simple" in text
    assert "--registry https://npm.mirror" in text
    assert "GOPROXY=https://go.mirror" in text
    assert "--clear-sources --source https://gem.mirror" in text
    assert (
        'registry = \\"sparse+https://crates.mirror/index/\\"' in text
        or "sparse+https://crates.mirror" in text
    )


def test_no_packages_no_steps_and_unknown_managers_ignored() -> None:
    assert build_steps({"apt": [], "pip": [], "conda": ["x"]}, Mirrors()) == []


@pytest.mark.parametrize("bad", ["--index-url=http://evil", "a b", "x;rm -rf /", "$(id)", ""])
def test_unsafe_package_specs_are_refused(bad: str) -> None:
    with pytest.raises(ImageBuildError) as caught:
        build_steps({"pip": [bad]}, Mirrors())
    assert caught.value.manager == "pip"


def test_tags_are_content_addressed() -> None:
    tag = image_tag("sha256:a", {"pip": ["six"]})
    assert re.fullmatch(r"mas-env:[0-9a-f]{24}", tag)
    assert tag == image_tag("sha256:a", {"pip": ["six"], "npm": []})
    assert tag != image_tag("sha256:b", {"pip": ["six"]})
    assert tag != image_tag("sha256:a", {"pip": ["six==1.16.0"]})


@pytest.mark.parametrize(
    ("entry", "host", "allowed"),
    [
        ("example.com", "example.com", True),
        ("example.com", "api.example.com", False),
        ("example.com", "example.com.evil.org", False),
        ("example.com", "exampleXcom", False),
        ("*.example.com", "api.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "evilexample.com", False),
        ("*.Example.com", "API.example.COM", True),
    ],
)
def test_host_patterns(entry: str, host: str, allowed: bool) -> None:
    assert Policy.from_hosts([entry]).allows(host) is allowed


def test_allow_list_composition() -> None:
    limited: LimitedNetworkingConfig = {
        "type": "limited",
        "allowed_hosts": ["API.Example.com", "api.example.com."],
    }
    assert allowed_hosts(limited, ["mcp.example.org"], []) == ["api.example.com"]
    opened: LimitedNetworkingConfig = {**limited, "allow_package_managers": True, "allow_mcp_servers": True}
    hosts = allowed_hosts(opened, ["https://mcp.example.org/sse"], ["sparse+https://crates.mirror/x", None])
    assert set(PACKAGE_MANAGER_HOSTS) <= set(hosts)
    assert {"pypi.org", "files.pythonhosted.org", "crates.io", "mcp.example.org", "crates.mirror"} <= set(
        hosts
    )
    assert json.loads(proxy_config([])) == {"allowed_hosts": []}
    stored_before_the_checks: LimitedNetworkingConfig = {
        "type": "limited",
        "allowed_hosts": ["*.com", "169.254.169.254", "ok.test"],
    }
    assert allowed_hosts(stored_before_the_checks, [], []) == ["ok.test"]
