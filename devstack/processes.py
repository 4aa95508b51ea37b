"""Starting and stopping the local servers' processes (the Kafka JVM, postgres) the same way.

Shared by devstack/local_kafka.py and devstack/local_postgres.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux/glibc
    _libc = None


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A Popen preexec_fn asking Linux to send `sig` to the child when its parent dies.

    Without it a crashed or SIGKILLed test run (or `make run`) leaves an orphan JVM or postgres holding
    ports and data directories. Linux ties this to the *thread* that started the child, not the process:
    start a broker from a thread that outlives it (the main thread), or it is sent `sig` as soon as that
    thread ends (a restart from a short-lived helper thread stops the broker it just started). Popen
    calls preexec_fn after any user/group switch, which matters because a credential change would clear
    the setting again.
    """
    if _libc is None or not sys.platform.startswith("linux"):
        return None
    prctl = _libc.prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def wait_until_ready(proc: subprocess.Popen[bytes], ready: Callable[[], bool], *, what: str, timeout_s: float,
                     interval_s: float, log_path: Path, error: type[Exception]) -> None:
    """Poll `ready()` until it says yes, the process exits, or `timeout_s` passes; the last two raise `error`
    with the log's tail. An exception from `ready()` means "not yet" (the server is still coming up) and
    is kept to explain a timeout."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise error(f"{what} exited with code {code} while starting; last lines of {log_path}:\n{tail(log_path)}")
        try:
            if ready():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(interval_s)
    raise error(f"{what} was not ready within {timeout_s:.0f}s (last error: {last_error!r}); "
                f"last lines of {log_path}:\n{tail(log_path)}")


def stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals, grace_s: float) -> None:
    """Ask politely with `sig`, then SIGKILL after `grace_s` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("pid %s ignored %s for %.0fs, killing it", proc.pid, sig.name, grace_s)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def spawn(command: list[str], log_file: IO[bytes], *, dies_with: signal.Signals,
          **popen: Any) -> subprocess.Popen[bytes]:
    """Start a server's process: output to `log_file`, in a session of its own (a Ctrl-C in the terminal
    reaches only us, and we stop it in order), sent `dies_with` should this process die first."""
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=die_with_parent(dies_with), **popen)


class LocalServer:
    """A server this machine runs for the stack or a test: `with Server(...) as running:` starts it and
    stops it whatever happens inside."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
