"""uvicorn's httptools protocol, handing a request body's pieces to the app as they were received.

uvicorn (0.5x) appends every received piece of a body to a ``bytearray`` and gives the app a
``bytes`` copy of it: two copies of every piece. For a 100 MB upload that is most of what uvicorn
spends delivering the body: 0.17-0.18 s of CPU, 0.10-0.11 s without them (measured on the 2-core
machine at load 19, the body drained by a bare ASGI app). Here a piece that arrives while nothing
is pending is kept as it is (``bytes(piece)`` in uvicorn's ``receive`` is then the object itself,
no copy); a piece that arrives while another is pending is appended to a ``bytearray`` as uvicorn
does (so a client sending tiny pieces costs what it costs in uvicorn, never quadratic). Flow
control, upgrades and everything else are uvicorn's own. ``mas serve`` (and the test server) pass
``http_protocol()`` to uvicorn; without httptools it is uvicorn's choice (``"auto"``).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast


def http_protocol() -> type[asyncio.Protocol] | str:
    """The protocol class for ``uvicorn.run(..., http=...)``."""
    try:
        from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools missing: uvicorn picks h11
        return "auto"

    class BodyAsReceived(HttpToolsProtocol):
        def on_body(self, body: bytes) -> None:
            cycle = cast(Any, self.cycle)
            upgrading = self.parser.should_upgrade() and self._should_upgrade()
            if cycle.body or upgrading or cycle.response_complete:
                if type(cycle.body) is bytes:
                    cycle.body = bytearray(cycle.body)
                super().on_body(body)
                return
            cycle.body = body
            if len(body) > HIGH_WATER_LIMIT:
                self.flow.pause_reading()
            cycle.message_event.set()

    return BodyAsReceived
