"""The image build display of `mas sandbox build|base` and `mas dispatch`: a rich progress bar on a
terminal, plain lines anywhere else (pipes, CI logs)."""

from __future__ import annotations

import io

from app.sandbox.commands import ProgressBar

BUILD = [
    "Step 1/3 : FROM mas-sandbox-base:bookworm",
    "Step 2/3 : RUN apt-get install -y cowsay",
    "Setting up cowsay (3.03+dfsg2-8) ...",
    "Step 3/3 : RUN pip install six==1.16.0",
    "Successfully built 0123456789ab",
]


def test_a_terminal_gets_one_progress_bar_with_the_current_step() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, interactive=True)
    for line in BUILD[:4]:
        bar.feed(line)
    bar.finish()
    shown = out.getvalue()
    assert "\x1b[" in shown  # drawn in place, with terminal control sequences
    assert "3/3" in shown and "RUN pip install six==1.16.0" in shown  # finished: the last step
    assert bar.tail == BUILD[:4]


def test_anywhere_else_every_line_is_written_plainly() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, interactive=False)
    for line in BUILD:
        bar.feed(line)
    bar.finish()
    assert out.getvalue() == "".join(f"  {line}\n" for line in BUILD)


def test_without_a_terminal_on_stdout_the_display_is_plain() -> None:
    # pytest captures stdout: not a TTY, so no bar even when the stream itself is one.
    assert ProgressBar(io.StringIO()).tty is False
