"""The local AWS endpoint: a moto server on 127.0.0.1, run as a child process this process owns.

A child process (not a thread) gives moto its own interpreter and core, so the functions running
in-process do not compete with it for the GIL, and stopping it is a plain terminate/kill.
Lambda invocations made inside moto (a state machine's Lambda tasks) come back to this process
through ``MotoEndpoint.lambdas`` (invoke_server.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from changelake_local.errors import LocalRunError
from changelake_local.invoke_server import LambdaInvokeServer

#: The fixed port of ``make run`` (events/env.json points Docker containers at it).
DEFAULT_PORT = 4566
HOST = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT = "123456789012"

#: What boto3 needs to talk to the local endpoint and nothing else.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class PortInUseError(LocalRunError):
    """The port the endpoint should listen on is taken."""


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def moto_api(url: str, path: str, *, method: str = "GET", timeout: float = 5.0) -> bytes:
    """Call moto's own API (``/moto-api/...``) on the endpoint at ``url`` (always http://127.0.0.1)."""
    if not url.startswith("http://"):
        raise LocalRunError(f"the local endpoint must be an http:// URL, not {url!r}")
    request = urllib.request.Request(f"{url}/moto-api/{path}", method=method)  # noqa: S310 - http only
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http only
        return bytes(response.read())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int) -> None:
    """Raise ``PortInUseError`` if something listens on ``port``.

    Binds with SO_REUSEADDR, as the server does (moto_server.py): the previous run's connections
    stay in TIME_WAIT for a minute after it stopped, and a plain bind fails on them although
    nothing listens. With the option only a listener (or a socket bound without it) is reported.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on {HOST} is already in use (another `make run`, LocalStack or moto?); "
                f"stop it or choose another port with --port"
            ) from exc


def aws_environment(url: str) -> dict[str, str]:
    """The variables that point boto3 (ours and the handlers') at ``url`` with dummy credentials."""
    return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": url}


@dataclass
class MotoEndpoint:
    """``python -m changelake_local.moto_server -H 127.0.0.1 -p PORT`` (moto's server app with
    keep-alive, see moto_server.py) as a child process; a context manager."""

    port: int = DEFAULT_PORT
    startup_timeout: float = 30.0
    log_path: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _lambdas: LambdaInvokeServer | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def lambdas(self) -> LambdaInvokeServer:
        """Where the functions the state machines' Lambda tasks reach are registered (``serve``)."""
        if self._lambdas is None:
            raise LocalRunError("the local endpoint is not started")
        return self._lambdas

    def start(self) -> MotoEndpoint:
        if self.port == 0:
            self.port = free_port()
        check_port_free(self.port)
        self._lambdas = LambdaInvokeServer().start()
        log: IO[bytes] | int = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
                [
                    *(sys.executable, "-m", "changelake_local.moto_server", "-H", HOST, "-p", str(self.port)),
                    *("--lambda-invoke-url", self._lambdas.url),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **DUMMY_CREDENTIALS},
                start_new_session=True,  # Ctrl-C reaches us only; we stop the child ourselves
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )
        except BaseException:
            self._stop_lambdas()
            raise
        finally:
            if not isinstance(log, int):
                log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                self._stop_lambdas()
                raise LocalRunError(
                    f"the moto server on port {self.port} exited at start-up (status {code}); "
                    "is the port in use or moto[server] missing?"
                )
            try:
                moto_api(self.url, "data.json", timeout=1)
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
            else:
                return
        self.stop()
        raise LocalRunError(
            f"the moto server on port {self.port} did not answer within {self.startup_timeout:.0f} s"
        )

    def seed(self, value: int) -> None:
        """Make moto's generated names (queue and bucket suffixes) the same on every run."""
        moto_api(self.url, f"seed?a={value}", method="POST")

    def _stop_lambdas(self) -> None:
        lambdas, self._lambdas = self._lambdas, None
        if lambdas is not None:
            lambdas.stop()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            self._stop_lambdas()
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        self._stop_lambdas()

    def __enter__(self) -> MotoEndpoint:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
