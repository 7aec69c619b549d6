"""A TCP hop in front of a real broker, which a test takes down and brings back.

The broker servers are shared and stay up; what a client sees of an outage is
its connection: refused (``down``), accepted and never answered (``silent``, a
broker behind a dead network), or open and suddenly dropping every byte
(``freeze``, the network dying under an established connection). The proxy
gives a Celery app exactly that, while every byte that does pass reaches the
real RabbitMQ or Redis.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

from kombu.utils.url import url_to_parts


class BrokerProxy:
    def __init__(self, broker_url: str) -> None:
        parts = url_to_parts(broker_url)
        self._upstream = (parts.hostname or "127.0.0.1", int(parts.port or 0))
        self._broker_url = broker_url
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._forwarding = True
        self._frozen = False
        self.port = self._free_port()

    @property
    def url(self) -> str:
        """The broker's URL, through the proxy."""
        host, port = self._upstream
        return self._broker_url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}", 1)

    def up(self) -> None:
        """Accept connections and forward them to the broker."""
        self._listen(forwarding=True)

    def silent(self) -> None:
        """Accept connections, and never answer."""
        self._listen(forwarding=False)

    def freeze(self) -> None:
        """Keep every connection open, and drop whatever is sent on them."""
        with self._lock:
            self._frozen = True
            self._forwarding = False

    def down(self) -> None:
        """Refuse connections, and cut the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        for each in ([listener] if listener else []) + sockets:
            with suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()

    def _listen(self, forwarding: bool) -> None:
        self.down()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener, self._forwarding, self._frozen = listener, forwarding, False
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # taken down
            with self._lock:
                self._sockets.append(client)
                forwarding = self._forwarding
            if forwarding:
                self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self._upstream)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets.append(server)
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                if not self._frozen:
                    target.sendall(data)
        with suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            return port
