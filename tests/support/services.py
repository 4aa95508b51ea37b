"""Run a service as a real process for a test: start it, wait until /health answers, kill it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from devstack.ports import free_port


class ServiceProcess:
    """`python -m MODULE ARGS...` with `env` on a free port, its output in `log_path`.

    An API listens on PORT; a worker role (`worker("reciprocity.balance.worker", "projector", ...)`)
    serves its /health probe on HEALTH_PORT."""

    def __init__(
        self,
        module: str,
        *,
        env: dict[str, str],
        log_dir: Path,
        port: int | None = None,
        ready_path: str = "/health",
        ready_status: tuple[int, ...] = (200,),
        startup_timeout_s: float = 60.0,
        args: tuple[str, ...] = (),
        port_variable: str = "PORT",
    ) -> None:
        self.module = module
        self.args = args
        self.port = port or free_port()
        self.env = {**os.environ, **env, port_variable: str(self.port), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
        if "LEDGER_KEYS_DATABASE_URL" not in env:  # a ledger's key store per test folder (restarts share it)
            self.env["LEDGER_KEYS_DATABASE_URL"] = f"sqlite:///{Path(log_dir).resolve()}/ledger-keys.db"
        name = "-".join([module.rsplit(".", 2)[-2], *args])
        self.log_path = Path(log_dir) / f"{name}-{self.port}.log"
        self.ready_path = ready_path
        self.ready_status = ready_status
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                answer = requests.get(self.url + self.ready_path, timeout=2)
                if answer.status_code in self.ready_status:
                    return
                last = f"{answer.status_code} {answer.text[:300]}"
            except requests.RequestException as err:
                last = repr(err)
            time.sleep(0.2)
        raise TimeoutError(f"{self.module} not ready in {self.startup_timeout_s}s ({last}):\n{self.log_tail()}")

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def worker(module: str, role: str, *, env: dict[str, str], log_dir: Path, **kwargs: Any) -> ServiceProcess:
    """A worker role as a process (`python -m MODULE ROLE`), ready when its probe's /health says 200."""
    return ServiceProcess(module, env=env, log_dir=log_dir, args=(role,), port_variable="HEALTH_PORT", **kwargs)


def wait_for(condition, timeout_s: float = 30.0, interval_s: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll `condition()` until it returns something truthy; return that, or fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last value {value!r})")
        time.sleep(interval_s)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve a WSGI app from a thread on a free loopback port; its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
