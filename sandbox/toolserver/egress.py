"""Loopback TCP -> unix socket forwarder: how a network-less sandbox reaches its egress proxy.

Limited sessions run with no network interface but loopback; HTTP(S)_PROXY points here, and
each connection is relayed to the proxy's socket, bind-mounted from the proxy container.
"""

from __future__ import annotations

import contextlib
import socket
import threading


def serve(port: int, proxy_socket: str) -> None:
    listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
    threading.Thread(target=_accept, args=(listener, proxy_socket), daemon=True).start()


def _accept(listener: socket.socket, proxy_socket: str) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_relay, args=(client, proxy_socket), daemon=True).start()


def _relay(client: socket.socket, proxy_socket: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(proxy_socket)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    # Pass the half-close on, so request/response protocols see end-of-stream.
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
