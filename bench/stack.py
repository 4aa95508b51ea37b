"""The stack as `make run` starts it, for the load harness: every line of the Procfile, on free ports.

The Procfile is read, not copied, so the harness measures whatever the deployment runs (servers,
workers, process roles). Every fixed port in a line (`PORT=8001`, `--port 1025`, `HEALTH_PORT=...`) is
mapped to a free one and the URLs between services follow; the processes run in a working directory
of their own (their `var/` databases are fresh), on the broker given (with a topic prefix of their
own) instead of the Procfile's Kafka. The `seed` line runs once, to the end, once the rest is healthy.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.ports import free_port

REPO = Path(__file__).resolve().parent.parent
# What the services call each other on, by the Procfile's default port.
_URL_ENV = {8000: "WEB_BASE_URL", 8001: "LEDGER_URL", 8002: "BALANCE_URL", 8003: "NOTIFY_URL"}
TOKENS = {"LEDGER_TOKEN": "bench-ledger-token", "BALANCE_TOKEN": "bench-balance-token",
          "NOTIFY_TOKEN": "bench-notify-token"}


def procfile(path: Path = REPO / "Procfile") -> dict[str, str]:
    """name -> command line, in file order (comments and blank lines skipped)."""
    lines = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            lines[match.group(1)] = match.group(2).strip()
    return lines


@dataclass
class RunningStack:
    workdir: Path
    ports: dict[int, int]
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def url(self, default_port: int) -> str:
        return f"http://127.0.0.1:{self.ports[default_port]}"

    @property
    def web(self) -> str:
        return self.url(8000)

    @property
    def balance(self) -> str:
        return self.url(8002)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each Procfile process, its children included (the
        gunicorn workers), by line name: what the server spent, whoever else shares the machine."""
        return cpu_seconds_of({name: proc.pid for name, proc in self.processes.items()})

    def log(self, name: str, lines: int = 40) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def cpu_seconds_of(groups: dict[str, int]) -> dict[str, float]:
    """name -> CPU seconds of every live process in the process group `groups[name]` (each Procfile line
    runs in a session of its own, so its group is its whole process tree), read from /proc (Linux; empty
    elsewhere). A process that exited since is not counted."""
    by_group = {pgid: name for name, pgid in groups.items()}
    used = dict.fromkeys(groups, 0.0)
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        name = by_group.get(int(fields[2]))
        if name is not None:
            used[name] += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return used


def _remap(command: str, ports: dict[int, int]) -> str:
    def one(match: re.Match[str]) -> str:
        port = int(match.group(2))
        if port not in ports:
            ports[port] = free_port()
        return f"{match.group(1)}{ports[port]}"

    return re.sub(r"((?:PORT=|--port[ =]))(\d{2,5})\b", one, command)


@contextmanager
def procfile_stack(bootstrap: str, workdir: Path, *, skip: tuple[str, ...] = ("kafka",),
                   timeout_s: float = 120) -> Iterator[RunningStack]:
    workdir.mkdir(parents=True, exist_ok=True)
    lines = {name: cmd for name, cmd in procfile().items() if name not in skip}
    seed = lines.pop("seed", None)
    ports: dict[int, int] = {p: free_port() for p in (*_URL_ENV, 1025)}
    commands = {name: _remap(cmd, ports) for name, cmd in lines.items()}
    # RECIPROCITY_ENV as `make run` sets it: local default secrets (the SECRET_KEY) are accepted.
    env = {"RECIPROCITY_ENV": "development", **os.environ, **TOKENS, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "TOPIC_PREFIX": f"benchload{uuid.uuid4().hex[:8]}.", "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(ports[1025]), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
           # The mail sink is devstack/, importable from the checkout's root only (not installed).
           "PYTHONPATH": str(REPO),
           "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
           **{var: f"http://127.0.0.1:{ports[p]}" for p, var in _URL_ENV.items()}}
    env.pop("DATABASE_URL", None)  # each service's own default, under workdir/var
    stack = RunningStack(workdir, ports, env)
    try:
        for name, command in commands.items():
            log = (workdir / f"{name}.log").open("w")
            stack.processes[name] = subprocess.Popen(["/bin/sh", "-c", command], cwd=workdir, env=env,
                                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for port in _URL_ENV:
            _wait_healthy(stack, f"http://127.0.0.1:{ports[port]}/health", timeout_s)
        if seed:
            seed_command = seed.split(";")[0]  # the seeding itself, not the idling after it
            done = subprocess.run(["/bin/sh", "-c", seed_command], cwd=workdir, env=env, capture_output=True,
                                  text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"seed failed: {done.stderr[-2000:]}")
        yield stack
    finally:
        for proc in stack.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in stack.processes.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _wait_healthy(stack: RunningStack, url: str, timeout_s: float) -> None:
    def died() -> str | None:
        dead = {n: p.returncode for n, p in stack.processes.items() if p.poll() is not None}
        if not dead:
            return None
        name = next(iter(dead))
        return f"{name} exited ({dead[name]}):\n{stack.log(name)}"

    wait_until_up(url, died, timeout_s)


def wait_until_up(url: str, died: Callable[[], str | None], timeout_s: float) -> None:
    """Until `url` answers 200; fails at once with what `died` says when it says anything (a process it
    waits for exited), or at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (why := died()) is not None:
            raise RuntimeError(why)
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not up in {timeout_s:.0f} s")
