"""A TLS terminator in front of the embedded broker, which speaks only plaintext.

The broker advertises the terminator's port, so every connection a client makes (the
bootstrap one and those to the broker it learns of) goes through TLS: a client that
skips the security settings cannot talk to it at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and its key; the certificate is its own CA."""

    cert: Path
    key: Path


def self_signed(directory: Path) -> Certificate:
    """Make a certificate for IP 127.0.0.1 with the openssl command line."""
    cert, key = directory / "broker.crt", directory / "broker.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)


class TlsTerminator:
    """Accepts TLS on one loopback port and forwards the plaintext to another, in a thread of its own."""

    def __init__(self, listen_port: int, target_port: int, certificate: Certificate) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certificate.cert, certificate.key)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        """Listen; return once the port is open."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(timeout=10)

    def stop(self) -> None:
        """Close the listener and every forwarded connection, then the thread."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._forward, "127.0.0.1", self.listen_port, ssl=self.context, ssl_handshake_timeout=5
        )

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pipe(client_reader, broker_writer), self._pipe(broker_reader, client_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError, ssl.SSLError):
                writer.close()
