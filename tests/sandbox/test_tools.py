"""Tool behaviour, written once and run on both backends (local process and Docker)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from app.sandbox import SandboxBackend
from app.sandbox.docker_backend import DockerBackend
from tests.sandbox.support import bash, call, text

pytestmark = pytest.mark.timeout(120)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def ws(backend: SandboxBackend, session_id: str, *parts: str) -> str:
    return "/".join([backend.workspace(session_id), *parts])


# --- bash --------------------------------------------------------------------------------------
async def test_bash_runs_in_the_workspace(backend: SandboxBackend, session_id: str) -> None:
    result = await bash(backend, session_id, "pwd; echo hello")
    assert not result.is_error
    assert text(result) == f"{backend.workspace(session_id)}\nhello"


async def test_bash_keeps_cwd_env_and_background_jobs(backend: SandboxBackend, session_id: str) -> None:
    await bash(backend, session_id, "mkdir -p sub && cd sub && export GREETING=hi")
    await bash(backend, session_id, "sleep 300 &")
    result = await bash(backend, session_id, "pwd; echo $GREETING; jobs -r | wc -l")
    lines = text(result).splitlines()
    assert lines[0].endswith("/sub") and lines[1] == "hi" and int(lines[2]) >= 1


async def test_bash_restart_resets_state(backend: SandboxBackend, session_id: str) -> None:
    await bash(backend, session_id, "export KEEP=1; cd /")
    assert text(await call(backend, session_id, "bash", restart=True)) == "Shell restarted."
    result = await bash(backend, session_id, "echo ${KEEP:-unset}; pwd")
    assert text(result) == f"unset\n{backend.workspace(session_id)}"


async def test_bash_nonzero_exit_is_an_error_with_output(backend: SandboxBackend, session_id: str) -> None:
    result = await bash(backend, session_id, "echo out; echo err >&2; exit_code() { return 3; }; exit_code")
    assert result.is_error
    assert text(result) == "out\nerr\n[exit code 3]"


async def test_bash_timeout_kills_the_command_and_restarts(backend: SandboxBackend, session_id: str) -> None:
    result = await bash(backend, session_id, "echo started; sleep 30", timeout_ms=500)
    assert result.is_error
    assert "started" in text(result) and "timed out after 0.5 s" in text(result)
    assert text(await bash(backend, session_id, "echo alive")) == "alive"


async def test_bash_survives_syntax_errors_stdin_and_exit(backend: SandboxBackend, session_id: str) -> None:
    assert "unexpected EOF" in text(await bash(backend, session_id, "echo 'unterminated"))
    assert text(await bash(backend, session_id, "cat; echo read-nothing")) == "read-nothing"
    exited = await bash(backend, session_id, "exit 4")
    assert exited.is_error and "shell exited with code 4" in text(exited)
    assert text(await bash(backend, session_id, "echo back")) == "back"


async def test_bash_empty_output_and_missing_command(backend: SandboxBackend, session_id: str) -> None:
    assert text(await bash(backend, session_id, "true")) == "(no output)"
    missing = await call(backend, session_id, "bash")
    assert missing.is_error and "command" in text(missing)


async def test_bash_large_output_keeps_the_tail_and_spills_the_rest(
    backend: SandboxBackend, session_id: str
) -> None:
    result = await bash(backend, session_id, "seq 1 100000")
    out = text(result)
    assert not result.is_error
    note, _, tail = out.partition("\n")
    assert note.startswith("[output truncated: showing the last 100000 of 588895 characters")
    assert tail.endswith("99999\n100000") and 99_000 < len(tail) <= 100_000
    spill = note.split("full output in ")[1].rstrip("]")
    assert text(await bash(backend, session_id, f"head -2 {spill}; wc -l < {spill}")) == "1\n2\n100000"


# --- read / write / edit -----------------------------------------------------------------------
async def test_write_creates_parents_then_updates(backend: SandboxBackend, session_id: str) -> None:
    path = ws(backend, session_id, "deep/er/file.txt")
    assert (
        text(await call(backend, session_id, "write", file_path=path, content="a\n"))
        == f"File created: {path}"
    )
    assert (
        text(await call(backend, session_id, "write", file_path=path, content="b\n"))
        == f"File updated: {path}"
    )
    relative = await call(backend, session_id, "write", file_path="rel.txt", content="x")
    assert text(relative) == f"File created: {ws(backend, session_id, 'rel.txt')}"


async def test_workspace_paths_name_the_sessions_workspace_on_every_backend(
    backend: SandboxBackend, session_id: str
) -> None:
    """`/workspace/...` as a model writes it: the session's own file, also on the local backend
    (whose workspace is a directory per session on the host, never the host's /workspace)."""
    name = f"ws-{session_id}.txt"
    written = await call(backend, session_id, "write", file_path=f"/workspace/{name}", content="mine\n")
    assert not written.is_error, text(written)
    seen = await bash(backend, session_id, f"cat {ws(backend, session_id, name)}")
    assert text(seen) == "mine"
    read = await call(backend, session_id, "read", file_path=f"/workspace/{name}")
    assert "mine" in text(read)
    found = await call(backend, session_id, "glob", pattern=name, path="/workspace")
    assert text(found).endswith(name)
    if not isinstance(backend, DockerBackend):
        assert not await asyncio.to_thread(Path("/workspace", name).exists)


async def test_read_numbers_lines_and_honours_view_range(backend: SandboxBackend, session_id: str) -> None:
    path = ws(backend, session_id, "lines.txt")
    await call(backend, session_id, "write", file_path=path, content="one\ntwo\nthree\nfour\n")
    assert (
        text(await call(backend, session_id, "read", file_path=path)) == "1\tone\n2\ttwo\n3\tthree\n4\tfour"
    )
    ranged = await call(backend, session_id, "read", file_path=path, view_range=[2, 3])
    assert text(ranged) == "2\ttwo\n3\tthree"
    assert (
        text(await call(backend, session_id, "read", file_path=path, view_range=[3, -1]))
        == "3\tthree\n4\tfour"
    )
    beyond = await call(backend, session_id, "read", file_path=path, view_range=[9, 0])
    assert "the file has 4 lines" in text(beyond)


async def test_read_errors_are_clear(backend: SandboxBackend, session_id: str) -> None:
    missing = await call(backend, session_id, "read", file_path=ws(backend, session_id, "nope.txt"))
    assert missing.is_error and "does not exist" in text(missing)
    directory = await call(backend, session_id, "read", file_path=backend.workspace(session_id))
    assert directory.is_error and "is a directory" in text(directory)
    bad_range = await call(backend, session_id, "read", file_path="x", view_range=[0, 2])
    assert bad_range.is_error
    await bash(backend, session_id, "printf 'a\\0b' > blob.bin")
    binary = await call(backend, session_id, "read", file_path="blob.bin")
    assert binary.is_error and "binary" in text(binary)


async def test_read_image_returns_an_image_block(backend: SandboxBackend, session_id: str) -> None:
    encoded = base64.b64encode(PNG).decode()
    await bash(backend, session_id, f"echo {encoded} | base64 -d > pixel.png")
    result = await call(backend, session_id, "read", file_path="pixel.png")
    assert result.content == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": encoded}}
    ]


async def test_read_of_a_huge_file_spills(backend: SandboxBackend, session_id: str) -> None:
    await bash(backend, session_id, "seq 1 30000 > big.txt")
    out = text(await call(backend, session_id, "read", file_path="big.txt"))
    assert out.startswith("1\t1\n2\t2\n")
    assert "[output truncated: showing the first 100000 of" in out


async def test_edit_replaces_a_unique_string(backend: SandboxBackend, session_id: str) -> None:
    path = ws(backend, session_id, "code.py")
    await call(backend, session_id, "write", file_path=path, content="x = 1\ny = 2\n")
    result = await call(backend, session_id, "edit", file_path=path, old_string="y = 2", new_string="y = 3")
    assert text(result) == f"File updated: {path} (1 replacement)"
    assert text(await bash(backend, session_id, f"cat {path}")) == "x = 1\ny = 3"


async def test_edit_refuses_missing_and_ambiguous_strings(backend: SandboxBackend, session_id: str) -> None:
    path = ws(backend, session_id, "dup.txt")
    await call(backend, session_id, "write", file_path=path, content="a a a\n")
    missing = await call(backend, session_id, "edit", file_path=path, old_string="b", new_string="c")
    assert missing.is_error and "was not found" in text(missing)
    ambiguous = await call(backend, session_id, "edit", file_path=path, old_string="a", new_string="c")
    assert ambiguous.is_error and "occurs 3 times" in text(ambiguous)
    every = await call(
        backend, session_id, "edit", file_path=path, old_string="a", new_string="c", replace_all=True
    )
    assert text(every) == f"File updated: {path} (3 replacements)"
    no_file = await call(backend, session_id, "edit", file_path="gone.txt", old_string="a", new_string="b")
    assert no_file.is_error and "does not exist" in text(no_file)


# --- glob / grep -------------------------------------------------------------------------------
async def test_glob_lists_newest_first_including_hidden(backend: SandboxBackend, session_id: str) -> None:
    await bash(
        backend,
        session_id,
        "mkdir -p g/a g/.hidden && touch -d '2 hours ago' g/a/old.md "
        "&& touch -d '1 hour ago' g/.hidden/mid.md && touch g/new.md g/skip.txt",
    )
    result = await call(backend, session_id, "glob", pattern="*.md", path=ws(backend, session_id, "g"))
    names = [line.rsplit("/", 1)[1] for line in text(result).splitlines()]
    assert names == ["new.md", "mid.md", "old.md"]
    default_root = await call(backend, session_id, "glob", pattern="**/old.md")
    assert text(default_root) == ws(backend, session_id, "g/a/old.md")


async def test_glob_edge_cases(backend: SandboxBackend, session_id: str) -> None:
    assert text(await call(backend, session_id, "glob", pattern="*.nothing")) == "No files found"
    missing = await call(backend, session_id, "glob", pattern="*", path="/no/such/dir")
    assert missing.is_error
    await bash(backend, session_id, "mkdir many && cd many && touch $(seq -f 'f%g.txt' 1 150)")
    capped = text(await call(backend, session_id, "glob", pattern="*.txt", path="many"))
    assert len(capped.splitlines()) == 101 and capped.endswith("[showing 100 of 150 files, newest first]")


async def test_grep_lists_files_by_default(backend: SandboxBackend, session_id: str) -> None:
    await bash(
        backend, session_id, "mkdir s && printf 'alpha\\nbeta\\n' > s/one.py && printf 'beta\\n' > s/two.txt"
    )
    files = await call(backend, session_id, "grep", pattern="beta", path="s")
    assert sorted(text(files).splitlines()) == [
        ws(backend, session_id, "s/one.py"),
        ws(backend, session_id, "s/two.txt"),
    ]
    only_py = await call(backend, session_id, "grep", pattern="beta", path="s", glob="*.py")
    assert text(only_py) == ws(backend, session_id, "s/one.py")
    limited = await call(backend, session_id, "grep", pattern="beta", path="s", head_limit=1)
    assert text(limited).startswith(ws(backend, session_id, "s/")) and "[showing 1 of 2 files" in text(
        limited
    )


async def test_grep_content_and_count_modes(backend: SandboxBackend, session_id: str) -> None:
    await bash(backend, session_id, "printf 'a\\nTarget\\nc\\n' > t.txt")
    path = ws(backend, session_id, "t.txt")
    content = await call(
        backend,
        session_id,
        "grep",
        pattern="target",
        path="t.txt",
        output_mode="content",
        context=1,
        case_insensitive=True,
    )
    assert text(content) == f"{path}-1-a\n{path}:2:Target\n{path}-3-c"
    count = await call(backend, session_id, "grep", pattern="[a-z]", path="t.txt", output_mode="count")
    assert text(count) == f"{path}:3"


async def test_grep_edge_cases(backend: SandboxBackend, session_id: str) -> None:
    assert text(await call(backend, session_id, "grep", pattern="zzz-never")) == "No matches found"
    invalid = await call(backend, session_id, "grep", pattern="(unclosed")
    assert invalid.is_error and "regex" in text(invalid).lower()
    missing = await call(backend, session_id, "grep", pattern="x", path="/no/such/path")
    assert missing.is_error


# --- misc --------------------------------------------------------------------------------------
async def test_unknown_tool_and_bad_input_are_tool_errors(backend: SandboxBackend, session_id: str) -> None:
    unknown = await call(backend, session_id, "teleport")
    assert unknown.is_error and "Unknown tool" in text(unknown)
    bad = await call(backend, session_id, "write", file_path=7, content="x")
    assert bad.is_error


async def test_web_search_without_endpoint_is_a_clear_error(backend: SandboxBackend, session_id: str) -> None:
    result = await call(backend, session_id, "web_search", query="anything")
    assert result.is_error and "no search endpoint is configured" in text(result)


async def test_calls_run_concurrently_on_one_channel(backend: SandboxBackend, session_id: str) -> None:
    slow = asyncio.create_task(bash(backend, session_id, "sleep 1; echo slow"))
    await asyncio.sleep(0.1)
    fast = await call(backend, session_id, "write", file_path="c.txt", content="quick")
    assert not fast.is_error and not slow.done()
    assert text(await slow) == "slow"


async def test_files_survive_stop_and_restart(backend: SandboxBackend, session_id: str) -> None:
    await call(backend, session_id, "write", file_path="keep.txt", content="kept")
    await backend.stop(session_id)
    if isinstance(backend, DockerBackend):
        container = backend.client.containers.get(backend.naming.container(session_id))
        assert container.status == "exited"
    assert text(await bash(backend, session_id, "cat keep.txt")) == "kept"
