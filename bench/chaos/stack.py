"""The whole stack as real processes for a chaos run, started the way `make run` starts it.

Every line of the Procfile but the broker, the web and the seed is run as it is written (through
`sh -c`, so `exec` replaces the shell), with its default ports mapped to free loopback ports and the
run's own directory as the working directory: the services' default `sqlite:///var/<service>.db`
and the mail sink's `var/mail` land there, nowhere near `make run`'s. Whatever the Procfile says
about how a service is served (one process, a WSGI server with workers, a separate consumer process)
is what the chaos run kills. The broker is the project's LocalKafka, whose JVM is what gets SIGKILLed.

Each process gets its own session, and a kill is SIGKILL to the whole group: a service and the
workers it forked die together, as on a crashed machine, and none of them is left holding its port.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.stack import procfile
from devstack.local_kafka import LocalKafka
from devstack.ports import free_port

REPO = Path(__file__).resolve().parents[2]
# The Procfile's fixed ports, by the process that listens there.
DEFAULT_PORTS = {"9092": "kafka", "1025": "mail", "8000": "web", "8001": "ledger", "8002": "balance",
                 "8003": "notify"}
NOT_STARTED = ("kafka", "web", "seed")  # the broker is LocalKafka; load goes to the ledger's API


_PORT_SETTING = re.compile(r"(\b\w*PORT=|--port[= ])(\d+)\b")


def map_ports(command: str, numbers: dict[str, int]) -> tuple[str, int | None]:
    """The command with every port it sets (`PORT=8001`, `HEALTH_PORT=8012`, `--port 1025`) replaced by
    the run's own for that number (a free one, chosen the first time the number is seen), and the
    port its HTTP health probe answers on (the first `...PORT=` it sets), if any."""
    probe: int | None = None

    def replace(found: re.Match[str]) -> str:
        nonlocal probe
        number = found.group(2)
        if number not in numbers:
            numbers[number] = free_port()
        if probe is None and found.group(1).endswith("PORT="):
            probe = numbers[number]
        return f"{found.group(1)}{numbers[number]}"

    return _PORT_SETTING.sub(replace, command), probe


def role_of(name: str) -> str:
    """The service a Procfile entry belongs to: `balance`, `balance-projector` and `balance_api` are all
    balance."""
    return re.split(r"[-_.]", name, maxsplit=1)[0]


@dataclass
class Process:
    name: str
    command: str
    env: dict[str, str]
    cwd: Path
    log_path: Path
    url: str | None  # where /health answers, when the entry listens on one of the mapped ports
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    starts: int = 0

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            out.write(f"\n===== start {self.starts + 1} at {time.time():.3f}: {self.command}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(["sh", "-c", self.command], cwd=self.cwd, env=self.env,
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.started_at = time.monotonic()
        self.starts += 1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything in its group (its own session, see start)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)

    def stop(self, grace_s: float = 15.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace_s)
        self.kill()  # whatever the group left behind (workers of a master that exited first)

    def health(self) -> int | None:
        """The /health status code, or None when nothing answers (or the entry has no port)."""
        if self.url is None:
            return None
        try:
            return requests.get(self.url + "/health", timeout=3).status_code
        except requests.RequestException:
            return None

    def up(self, min_age_s: float = 3.0) -> bool:
        """Running and answering (any status: a 503 while Kafka is away is still a service that is up);
        an entry without a port counts as up once it has lived `min_age_s`."""
        if not self.alive():
            return False
        if self.url is None:
            return time.monotonic() - self.started_at >= min_age_s
        return self.health() is not None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Stack:
    run_dir: Path
    kafka: LocalKafka
    ports: dict[str, int]
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    @classmethod
    def create(cls, run_dir: Path, extra_env: dict[str, str] | None = None) -> Stack:
        (run_dir / "var" / "mail").mkdir(parents=True, exist_ok=True)
        (run_dir / "logs").mkdir(exist_ok=True)
        numbers = {number: free_port() for number in DEFAULT_PORTS}  # the Procfile's ports -> ours
        ports = {role: numbers[number] for number, role in DEFAULT_PORTS.items()}
        kafka = LocalKafka(run_dir / "kafka", port=ports["kafka"], extra_properties={
            "broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "1000"})
        venv_bin = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONUNBUFFERED": "1",
            # The mail sink is devstack/, importable from the checkout's root only (not installed).
            "PYTHONPATH": str(REPO),
            "HOST": "127.0.0.1",
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "TOPIC_PREFIX": "",
            "LEDGER_URL": f"http://127.0.0.1:{ports['ledger']}",
            "BALANCE_URL": f"http://127.0.0.1:{ports['balance']}",
            "NOTIFY_URL": f"http://127.0.0.1:{ports['notify']}",
            "WEB_BASE_URL": f"http://127.0.0.1:{ports['web']}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(ports["mail"]),
            **(extra_env or {}),
        }
        env.pop("DATABASE_URL", None)  # each service's own default, under run_dir/var
        stack = cls(run_dir=run_dir, kafka=kafka, ports=ports, env=env)
        for name, command in procfile().items():
            if name in NOT_STARTED:
                continue
            mapped, probe = map_ports(command, numbers)
            role = role_of(name)
            if probe is None and name == role and role in ports and role != "mail":  # PORT left to the environment
                probe = ports[role]
            stack.processes.append(Process(
                name=name, command=mapped, env={**env, "PORT": str(probe)} if probe else env, cwd=run_dir,
                log_path=run_dir / "logs" / f"{name}.log",
                url=f"http://127.0.0.1:{probe}" if probe is not None else None))
        return stack

    def of_role(self, role: str) -> list[Process]:
        return [p for p in self.processes if role_of(p.name) == role]

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.ports[role]}"

    @property
    def database(self) -> dict[str, str]:
        return {role: f"sqlite:///{self.run_dir / 'var' / f'{role}.db'}" for role in ("balance", "notify")}

    @property
    def maildir(self) -> Path:
        return self.run_dir / "var" / "mail"

    def start(self) -> None:
        self.kafka.start()
        for process in self.processes:
            process.start()

    def kill_kafka(self) -> None:
        pid = self.kafka.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self.kafka.wait(timeout=30)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.kafka.stop()
