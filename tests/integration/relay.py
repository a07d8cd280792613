"""A TCP relay for tests that need to see the bytes between the component and the server."""

from __future__ import annotations

import socket
import threading

from private_servers.base import LOOPBACK


class RecordingRelay:
    """A TCP relay on 127.0.0.1 to ``target_port`` that keeps every byte that crosses it, each way.

    It sees what goes over the wire and nothing more: TLS stays end to end between the
    component and the server.
    """

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.2)  # how soon the accept loop notices stop()
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._sent: list[bytearray] = []
        self._received: list[bytearray] = []
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def connections(self) -> list[bytes]:
        """What the connecting side sent, one entry per connection, in order."""
        with self._lock:
            return [bytes(sent) for sent in self._sent]

    def received(self) -> list[bytes]:
        """What the target sent back to the connecting side, one entry per connection, in order."""
        with self._lock:
            return [bytes(received) for received in self._received]

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection((LOOPBACK, self._target_port), timeout=5)
            except OSError:
                downstream.close()
                continue
            for sock in (downstream, upstream):
                sock.settimeout(None)
            sent, received = bytearray(), bytearray()
            with self._lock:
                self._sent.append(sent)
                self._received.append(received)
                self._sockets += [downstream, upstream]
            for source, sink, kept in ((downstream, upstream, sent), (upstream, downstream, received)):
                thread = threading.Thread(target=self._pump, args=(source, sink, kept), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, kept: bytearray) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    kept += data
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._acceptor.join(5)
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(5)
