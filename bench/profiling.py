"""Sampling profiles of the running server with py-spy (from PyPI; attaches by pid, no app hook).

`Profiler(directory, pid).phase(name)` records while the block runs into `<directory>/<name>.txt`
(collapsed stacks: `frame;frame;... count`); `summary()` lists, per phase, the functions with the
most samples on the CPU, inclusive (anywhere on the stack) and self (the innermost frame).

py-spy's own idle detection does not work on this machine's kernel (threads blocked in a queue
or in epoll are reported active), so a sample whose innermost frame is a blocking call (its
source line is read back) counts as idle and is left out.
"""

from __future__ import annotations

import contextlib
import linecache
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from harness import cpu_seconds

RATE_HZ = 250
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# Where a thread waits: a queue, a condition or lock, the event loop's poll.
BLOCKING = re.compile(r"\.get\((block=True)?\)|\.wait\(|\.acquire\(|run_until_complete|\bselect\(|\bsleep\(")
SITE = re.compile(r".*/(site-packages|lib/python3\.\d+)/")


def py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def short(frame: str) -> str:
    """`func (path:line)` -> `func (file relative to app/ or site-packages)`."""
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    path = "app/" + path.rsplit("/app/", 1)[1] if "/app/" in path else SITE.sub("", path)
    return f"{match['func']} ({path})"


def blocked(frame: str) -> bool:
    match = FRAME.match(frame)
    if not match or not match["line"]:
        return False
    return bool(BLOCKING.search(linecache.getline(match["file"], int(match["line"]))))


def read_stacks(path: Path) -> tuple[list[tuple[list[str], int]], int]:
    """The busy stacks (shortened frames) and the number of idle samples left out."""
    stacks, idle = [], 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if blocked(frames[-1]):
            idle += int(count)
        else:
            stacks.append(([short(f) for f in frames], int(count)))
    return stacks, idle


LAYERS = (
    ("app", re.compile(r"\(app/")),
    ("SQLAlchemy", re.compile(r"\(sqlalchemy/")),
    ("DB driver (aiosqlite/asyncpg/sqlite3)", re.compile(r"\((aiosqlite|asyncpg|sqlite3)/")),
    ("pydantic", re.compile(r"\(pydantic")),
    ("FastAPI/Starlette/sse", re.compile(r"\((fastapi|starlette|sse_starlette)/")),
    ("uvicorn/HTTP", re.compile(r"\((uvicorn|httptools|h11)/")),
    ("json", re.compile(r"\(json/")),
    ("anthropic/httpx (model client)", re.compile(r"\((anthropic|httpx|httpcore|httpx2)/")),
    (
        "asyncio/anyio/threads",
        re.compile(
            r"\((asyncio|anyio|concurrent|threading|queue|contextlib)/|\((threading|queue|contextlib)\.py"
        ),
    ),
)


def layer(frame: str) -> str:
    return next((name for name, pattern in LAYERS if pattern.search(frame)), "other")


def summarise(path: Path, measured_cpu: float | None = None, top: int = 12) -> str:
    """Where the busy samples went: by layer (innermost frame), the app's functions (anywhere on
    the stack: what they cost with everything they call), and the innermost functions."""
    stacks, _ = read_stacks(path)
    total = sum(count for _, count in stacks)
    if total == 0:
        return f"### {path.stem}: no samples"
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for frames, count in stacks:
        for frame in set(frames):
            if frame.endswith("(app/cli.py)") or "(app/" not in frame:
                continue
            inclusive[frame] += count
        leaf[frames[-1]] += count
        layers[layer(frames[-1])] += count
    seen = f"{total} busy samples at {RATE_HZ} Hz = {total / RATE_HZ:.1f} s"
    if measured_cpu is not None:  # py-spy falls behind its rate when the machine is busy
        seen += f" (the server used {measured_cpu:.1f} s of CPU meanwhile)"
    lines = [f"### {path.stem}: {seen}", ""]
    lines += ["by layer (innermost frame):"] + [
        f"  {n / total:6.1%}  {name}" for name, n in layers.most_common()
    ]
    lines += ["app functions (inclusive):"] + [
        f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)
    ]
    lines += ["innermost functions (self):"] + [f"  {n / total:6.1%}  {f}" for f, n in leaf.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    """Summarise every profile in a directory: `python bench/profiling.py DIR`."""
    for path in sorted(Path(sys.argv[1]).glob("*.txt")):
        print(summarise(path), end="\n\n")


class Profiler:
    def __init__(self, directory: Path | None, pid: int) -> None:
        self.directory = directory
        self.pid = pid
        self.files: list[Path] = []
        self.cpu: dict[Path, float] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self.binary = py_spy()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        out = self.directory / f"{name}.txt"
        args = [self.binary, "record", "-p", str(self.pid), "-r", str(RATE_HZ), "--format", "raw"]
        args += ["--full-filenames", "-o", str(out)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cpu = cpu_seconds(self.pid)
        try:
            yield
        finally:
            self.cpu[out] = cpu_seconds(self.pid) - cpu
            proc.send_signal(signal.SIGINT)  # py-spy writes the file when interrupted
            _, err = proc.communicate(timeout=60)
            if out.exists():
                self.files.append(out)
            else:
                print(f"py-spy wrote no profile for {name}: {err.decode()[-500:]}", file=sys.stderr)

    def summary(self) -> str:
        if not self.files:
            return ""
        return "\n\n".join(["## profiles (py-spy)", *(summarise(f, self.cpu.get(f)) for f in self.files)])


if __name__ == "__main__":
    main()
