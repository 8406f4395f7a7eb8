"""web_fetch from inside the sandbox, so it obeys the environment's networking (its proxy)."""

from __future__ import annotations

import html.parser
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

from output import Result, Spiller, error

_MAX_BYTES = 10 * 1024 * 1024
_USER_AGENT = "Claude-User/1.0 (mas web_fetch)"
_TEXTUAL = ("text/", "application/json", "application/xml", "application/xhtml", "application/javascript")
_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section", "article"}


class _HtmlText(html.parser.HTMLParser):
    """Readable text of an HTML page: scripts and styles dropped, block tags on new lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style", "noscript")
        self._in_title = self._in_title or tag == "title"
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style", "noscript") and self._skip > 0
        self._in_title = self._in_title and tag != "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return "\n".join(line for line in lines if line)


def fetch(inp: dict[str, Any], timeout: float, spiller: Spiller) -> Result:
    url = inp.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        return error("url must be an http:// or https:// URL")
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, "Accept": "*/*"})
    try:
        with urllib.request.urlopen(request, timeout=min(timeout, 60.0)) as response:
            body = response.read(_MAX_BYTES + 1)
            headers, final_url = response.headers, response.geturl()
    except urllib.error.HTTPError as exc:
        detail = exc.read(2000).decode("utf-8", errors="replace").strip()
        return error(f"Fetching {url} failed: HTTP {exc.code} {exc.reason}\n{detail}".strip())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return error(f"Fetching {url} failed: {getattr(exc, 'reason', exc)}")
    return _document(url, final_url, body[:_MAX_BYTES], headers, spiller)


def _document(url: str, final_url: str, body: bytes, headers: Message, spiller: Spiller) -> Result:
    media = headers.get_content_type()
    if not media.startswith(_TEXTUAL):
        return error(f"{url} returned {media}, which web_fetch cannot show as text")
    decoded = body.decode(headers.get_content_charset() or "utf-8", errors="replace")
    title = final_url
    if "html" in media:
        parser = _HtmlText()
        parser.feed(decoded)
        decoded, title = parser.text(), (" ".join(parser.title.split()) or final_url)
    data = spiller.cap("web_fetch", decoded)
    source = {"type": "text", "media_type": "text/plain", "data": data}
    return [{"type": "document", "source": source, "title": title}], False
