"""The offline model as the outcome grader: deterministic verdicts read from the rubric.

A grader request is recognised by the harness's grader system prompt (it starts with
`GRADER_MARK`); its user message holds `<rubric>`, `<iteration>` and `<transcript>` sections.
Directive lines in the **rubric** decide the verdict (first match wins):

* `/grade VERDICT [VERDICT ...]`: the verdict of evaluation N (0-based) is the N-th word, the
  last one repeating (`satisfied`, `needs_revision` or `failed`);
* `/require TEXT`: `satisfied` once the transcript of the work or the text of its outputs
  (`<deliverables>`) contains TEXT, else
  `needs_revision` with an explanation that names TEXT;
* none: `satisfied`.

Only the rubric's directives apply to a grader request (`/sleep`, `/fault` there slow or fail
the grader); the transcript is never read for directives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.offline.messages import MessagesBody
from app.offline.tokens import as_blocks

GRADER_MARK = "You are the outcome grader"
VERDICTS = ("satisfied", "needs_revision", "failed")
_SECTION = "<{0}>\n?(.*?)\n?</{0}>"


@dataclass(frozen=True, slots=True)
class GraderInput:
    rubric: str
    iteration: int
    work: str


def _section(text: str, name: str) -> str:
    found = re.search(_SECTION.format(name), text, re.DOTALL)
    return found.group(1) if found else ""


def grader_input(body: MessagesBody) -> GraderInput | None:
    """The parts of a grader request, or None for any other request."""
    system = "\n".join(str(b.get("text", "")) for b in as_blocks(body.get("system")))
    if not system.startswith(GRADER_MARK):
        return None
    last = body["messages"][-1]
    text = "\n".join(
        str(b.get("text", "")) for b in as_blocks(last.get("content")) if b.get("type") == "text"
    )
    iteration = _section(text, "iteration").strip()
    return GraderInput(
        rubric=_section(text, "rubric"),
        iteration=int(iteration) if iteration.isdigit() else 0,
        work=_section(text, "transcript") + "\n" + _section(text, "deliverables"),
    )


def answer(graded: GraderInput) -> str:
    """The grader's reply: `<verdict>` and `<explanation>` tags."""
    verdict, explanation = _judge(graded)
    return f"<verdict>{verdict}</verdict>\n<explanation>{explanation}</explanation>"


def _judge(graded: GraderInput) -> tuple[str, str]:
    evaluation = graded.iteration + 1
    for line in graded.rubric.splitlines():
        name, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if name == "/grade":
            words = rest.split() or ["satisfied"]
            verdict = words[min(graded.iteration, len(words) - 1)]
            if verdict not in VERDICTS:
                return (
                    "failed",
                    f"Offline grader: /grade names {verdict!r}, not one of {', '.join(VERDICTS)}.",
                )
            return verdict, f"Offline grader, evaluation {evaluation}: {verdict} (the rubric's /grade line)."
        if name == "/require" and rest:
            if rest in graded.work:
                return "satisfied", f"Offline grader, evaluation {evaluation}: the work contains {rest!r}."
            return (
                "needs_revision",
                f"Offline grader, evaluation {evaluation}: the work does not contain {rest!r} yet. "
                f"Required: {rest}",
            )
    return "satisfied", f"Offline grader, evaluation {evaluation}: no /grade or /require line; accepted."
