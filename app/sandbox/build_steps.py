"""Environment image recipes: a `packages` spec becomes Dockerfile steps, one manager at a time.

Pure text generation (no Docker), so the steps of managers whose registries are unreachable
can still be checked. Managers run in the hosted order; a toolchain is installed from Debian
only when that manager has packages and the base image lacks it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass

from app.config import Settings
from app.sandbox.interface import ImageBuildError

MANAGERS = ("apt", "cargo", "gem", "go", "npm", "pip")
# Bump when the generated steps change meaning, so cached images are rebuilt.
RECIPE_VERSION = "1"

_TOOLCHAINS = {
    "cargo": ("cargo", "cargo-web"),
    "gem": ("gem", "ruby ruby-dev"),
    "go": ("go", "golang-go"),
    "npm": ("npm", "npm"),
}
# A spec entry is one argument: no options, no whitespace, no shell metacharacters needed.
_VALID = re.compile(r"^[A-Za-z0-9@][A-Za-z0-9@._+:/=<>~^*!,\[\]-]*$")
_CLEAN_APT = "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin"


@dataclass(frozen=True)
class Mirrors:
    apt: str | None = None
    pip: str | None = None
    npm: str | None = None
    go: str | None = None
    gem: str | None = None
    cargo: str | None = None

    def urls(self) -> list[str | None]:
        return [self.apt, self.pip, self.npm, self.go, self.gem, self.cargo]

    @classmethod
    def from_settings(cls, settings: Settings) -> Mirrors:
        return cls(
            apt=settings.sandbox_apt_mirror,
            pip=settings.sandbox_pip_index_url,
            npm=settings.sandbox_npm_registry,
            go=settings.sandbox_goproxy,
            gem=settings.sandbox_gem_source,
            cargo=settings.sandbox_cargo_registry,
        )


@dataclass(frozen=True)
class BuildStep:
    manager: str
    instruction: str


def normalize(packages: dict[str, list[str]]) -> dict[str, list[str]]:
    """Keep the known managers with packages, in the hosted order; reject unsafe entries."""
    out: dict[str, list[str]] = {}
    for manager in MANAGERS:
        names = [name.strip() for name in packages.get(manager) or []]
        for name in names:
            if not _VALID.match(name):
                raise ImageBuildError(manager, f"invalid package spec {name!r}")
        if names:
            out[manager] = names
    return out


def image_tag(base_image_id: str, packages: dict[str, list[str]]) -> str:
    """Content-addressed tag: same base image + same spec -> same image, built once."""
    spec = json.dumps(normalize(packages), sort_keys=True)
    digest = hashlib.sha256(f"{RECIPE_VERSION}\n{base_image_id}\n{spec}".encode()).hexdigest()
    return f"mas-env:{digest[:24]}"


def build_steps(packages: dict[str, list[str]], mirrors: Mirrors) -> list[BuildStep]:
    steps: list[BuildStep] = []
    for manager, names in normalize(packages).items():
        if manager in _TOOLCHAINS:
            steps.append(BuildStep(manager, _toolchain(manager, mirrors)))
        steps.append(BuildStep(manager, _INSTALLERS[manager](names, mirrors)))
    return steps


def dockerfile(base_image: str, steps: list[BuildStep]) -> str:
    lines = [f"FROM {base_image}", *(step.instruction for step in steps)]
    return "\n".join(lines) + "\n"


def _apt_update(mirrors: Mirrors) -> str:
    if not mirrors.apt:
        return "apt-get update"
    mirror = shlex.quote(mirrors.apt)
    return (
        '. /etc/os-release && printf "deb %s %s main\\ndeb %s %s-updates main\\n" '
        f'{mirror} "$VERSION_CODENAME" {mirror} "$VERSION_CODENAME" > /etc/apt/sources.list '
        "&& rm -f /etc/apt/sources.list.d/debian.sources && apt-get update"
    )


def _apt_install(names: str, mirrors: Mirrors) -> str:
    return (
        f"{_apt_update(mirrors)} && DEBIAN_FRONTEND=noninteractive apt-get install -y "
        f"--no-install-recommends {names} && {_CLEAN_APT}"
    )


def _toolchain(manager: str, mirrors: Mirrors) -> str:
    command, debs = _TOOLCHAINS[manager]
    return f"RUN command -v {command} >/dev/null 2>&1 || {{ {_apt_install(debs, mirrors)}; }}"


def _quoted(names: list[str]) -> str:
    return " ".join(shlex.quote(name) for name in names)


def _apt(names: list[str], mirrors: Mirrors) -> str:
    return f"RUN {_apt_install(_quoted(names), mirrors)}"


def _cargo(names: list[str], mirrors: Mirrors) -> str:
    config = ""
    if mirrors.cargo:
        url = mirrors.cargo if mirrors.cargo.startswith("sparse+") else f"sparse+{mirrors.cargo}"
        config = (
            'mkdir -p /root/.cargo && printf \'[source.crates-io]\\nreplace-with = "mas-mirror"\\n'
            f'[source.mas-mirror]\\nregistry = "{url}"\\n\' > /root/.cargo/config.toml && '
        )
    return (
        f"RUN {config}cargo install --root /usr/local {_quoted(names)} "
        "&& rm -rf /root/.cargo/registry /root/.cargo/git"
    )


def _gem(names: list[str], mirrors: Mirrors) -> str:
    source = f"--clear-sources --source {shlex.quote(mirrors.gem)} " if mirrors.gem else ""
    # RubyGems takes `name:version` pins directly.
    return f"RUN gem install --no-document {source}{_quoted(names)}"


def _go(names: list[str], mirrors: Mirrors) -> str:
    env = f"GOPROXY={shlex.quote(mirrors.go)} " if mirrors.go else ""
    # `go install` needs a version and takes one module per invocation.
    installs = " && ".join(
        f"{env}GOBIN=/usr/local/bin GOPATH=/tmp/go GOFLAGS=-modcacherw go install "
        f"{shlex.quote(name if '@' in name else name + '@latest')}"
        for name in names
    )
    return f"RUN {installs} && rm -rf /tmp/go /root/.cache/go-build"


def _npm(names: list[str], mirrors: Mirrors) -> str:
    registry = f"--registry {shlex.quote(mirrors.npm)} " if mirrors.npm else ""
    return f"RUN npm install -g {registry}{_quoted(names)} && npm cache clean --force"


def _pip(names: list[str], mirrors: Mirrors) -> str:
    index = f"--index-url {shlex.quote(mirrors.pip)} " if mirrors.pip else ""
    return (
        "RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir "
        f"--root-user-action=ignore {index}{_quoted(names)}"
    )


_INSTALLERS = {"apt": _apt, "cargo": _cargo, "gem": _gem, "go": _go, "npm": _npm, "pip": _pip}
