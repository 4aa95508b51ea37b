"""Run a real single-node Apache Kafka broker (KRaft, broker+controller in one JVM) without Docker.

Used by `make run` (through the Procfile, see `main()` below) and by the test suite. The broker jars
come from Maven Central via infra/kafka/pom.xml into var/kafka/libs, shared by every instance; each
instance has its own data directory holding server.properties, the cluster id, the log segments and
broker.log.

    with LocalKafka(data_dir) as kafka:
        produce_to(kafka.bootstrap_servers)
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from devstack.ports import free_port
from devstack.processes import LocalServer, spawn, stop_process, tail, wait_until_ready

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
LOG4J2_CONFIG = REPO_ROOT / "infra" / "kafka" / "log4j2.xml"
LIBS_DIR = REPO_ROOT / "var" / "kafka" / "libs"
# Written after a complete fetch: the sha256 of the pom it came from, so a version bump refetches.
_LIBS_MARKER = ".pom-sha256"
_BROKER_JAR_PREFIX = "kafka_2.13-"
_HOST = "127.0.0.1"


class KafkaStartError(RuntimeError):
    """The broker could not be fetched, formatted or started; the message carries the log tail."""


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((_HOST, port)) == 0


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _jars_complete(libs_dir: Path) -> bool:
    return any(libs_dir.glob(f"{_BROKER_JAR_PREFIX}*.jar")) and any(libs_dir.glob("log4j-core-*.jar"))


def ensure_jars(libs_dir: Path = LIBS_DIR, *, refresh: bool = False) -> Path:
    """Fetch the broker jars with Maven unless `libs_dir` already holds them.

    With `refresh`, also refetch when infra/kafka/pom.xml changed since the last fetch (what
    `make install` wants). Without it, any complete set of jars is used as is, so tests never pay for
    a Maven run on a machine that already has the jars. The fetch goes into a sibling directory that
    is renamed into place, and a file lock serialises concurrent callers (parallel test sessions,
    `make run` starting while tests run), so nobody ever sees a half-filled libs directory.
    """
    libs_dir = libs_dir.resolve()
    marker = libs_dir / _LIBS_MARKER

    def up_to_date() -> bool:
        if not _jars_complete(libs_dir):
            return False
        return not refresh or (marker.exists() and marker.read_text().strip() == _pom_digest())

    if up_to_date():
        return libs_dir
    libs_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(libs_dir.parent / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if up_to_date():  # somebody else fetched while we waited for the lock
            return libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaStartError("Maven (mvn) is needed once to fetch the Kafka broker jars; run `make install`")
        staging = libs_dir.with_name(libs_dir.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn, "-q", "-B", "-f", str(POM),
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]  # fmt: skip
        log.info("fetching Kafka broker jars: %s", " ".join(cmd))
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not _jars_complete(staging):
            raise KafkaStartError(
                f"fetching the Kafka jars failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        (staging / _LIBS_MARKER).write_text(_pom_digest() + "\n")
        shutil.rmtree(libs_dir, ignore_errors=True)
        staging.rename(libs_dir)
    return libs_dir


def broker_version(libs_dir: Path = LIBS_DIR) -> str:
    """The Apache Kafka version of the jars in `libs_dir`, read from kafka_2.13-X.Y.Z.jar."""
    for jar in sorted(libs_dir.glob(f"{_BROKER_JAR_PREFIX}*.jar")):
        version = jar.name.removeprefix(_BROKER_JAR_PREFIX).removesuffix(".jar")
        if version[:1].isdigit():  # skips -sources / -test jars should any ever appear
            return version
    raise KafkaStartError(f"no {_BROKER_JAR_PREFIX}*.jar in {libs_dir}")


def _random_cluster_id() -> str:
    """What `StorageTool random-uuid` prints (Kafka's Uuid: url-safe base64 of 16 random bytes, no
    padding), without paying a JVM start. Kafka avoids ids starting with '-' as they read like flags."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class LocalKafka(LocalServer):
    """A single combined KRaft broker+controller bound to 127.0.0.1, in its own data directory.

    Ports default to free ones. Reusing a data directory keeps its topics and offsets: the cluster id
    is stored there and formatting is skipped for an already formatted log directory.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        controller_port: int | None = None,
        *,
        libs_dir: str | os.PathLike[str] = LIBS_DIR,
        heap_max: str = "512m",
        startup_timeout_s: float = 90.0,
        extra_properties: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.libs_dir = Path(libs_dir).resolve()
        self.heap_max = heap_max
        self.startup_timeout_s = startup_timeout_s
        self.extra_properties = dict(extra_properties or {})
        self.started_in_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- what callers need ---------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return f"{_HOST}:{self.port}"

    @property
    def version(self) -> str:
        """Apache Kafka version of the broker, e.g. '4.1.1'."""
        return broker_version(self.libs_dir)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def _log_dir(self) -> Path:
        return self.data_dir / "kraft-logs"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> LocalKafka:
        if self.is_running():
            return self
        began = time.monotonic()
        ensure_jars(self.libs_dir)
        for port in (self.port, self.controller_port):
            # Fail with a plain message instead of a bind error buried in the broker log; usually
            # another `make run` (or a leftover broker) already holds 9092.
            if _port_in_use(port):
                raise KafkaStartError(f"port {_HOST}:{port} is already in use; is another broker running?")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        self._format_storage()
        java_cmd = [
            _java(),
            "-Xms256m",
            f"-Xmx{self.heap_max}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            "-cp",
            str(self.libs_dir / "*"),
            "kafka.Kafka",
            str(self.properties_path),
        ]
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"\n===== starting Kafka {self.version} on {self.bootstrap_servers} =====\n".encode())
            log_file.flush()
            self._proc = spawn(java_cmd, log_file, dies_with=signal.SIGTERM, cwd=self.data_dir)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - began
        log.debug("Kafka %s ready on %s in %.1fs", self.version, self.bootstrap_servers, self.started_in_s)
        return self

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM runs the broker's controlled shutdown (flushes logs, writes the clean-shutdown
        marker so the next start skips recovery); SIGKILL only if it hangs."""
        if self._proc is None:
            return
        stop_process(self._proc, signal.SIGTERM, grace_s)
        self._proc = None

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the broker exits (or `timeout` passes); its exit code, or None if still up."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    # -- internals -----------------------------------------------------------------------------------

    def _properties(self) -> dict[str, str]:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Static quorum: formats without --standalone, and the voter set follows this file.
            "controller.quorum.voters": f"1@{_HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{_HOST}:{self.port},CONTROLLER://{_HOST}:{self.controller_port}",
            # Advertise exactly what clients dial, or they fail with "Failed to update metadata".
            "advertised.listeners": f"PLAINTEXT://{_HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self._log_dir),
            # One node: every internal topic at replication 1, or they never become available.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            # Internal topics default to 50 partitions each; creating those slows the first consumer
            # group / transaction by seconds on a small machine.
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.num.partitions": "4",
            # Topics come from the contracts' registry only; a typo must not create a topic.
            "auto.create.topics.enable": "false",
            # The topics are the system of record: never age events out by default (topics may still
            # set their own retention).
            "log.retention.ms": "-1",
            # Small-machine settings.
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "background.threads": "4",
            "log.cleaner.threads": "1",
            # The 128 MB default has caused OutOfMemoryError with a 512 MB heap.
            "log.cleaner.dedupe.buffer.size": "16777216",
        }
        props.update(self.extra_properties)
        return props

    def _write_properties(self) -> None:
        lines = ["# Written by devstack.local_kafka on every start; edits are overwritten."]
        lines += [f"{key}={value}" for key, value in self._properties().items()]
        self.properties_path.write_text("\n".join(lines) + "\n")

    def _cluster_id(self) -> str:
        id_file = self.data_dir / "cluster.id"
        if id_file.exists():
            return id_file.read_text().strip()
        cluster_id = _random_cluster_id()
        id_file.write_text(cluster_id + "\n")
        return cluster_id

    def _format_storage(self) -> None:
        if (self._log_dir / "meta.properties").exists():
            return  # formatted before; skipping saves a JVM start (~1s) on every restart
        # -g: an already formatted directory is fine, so this is still safe if a format was interrupted.
        cmd = [
            _java(), "-Xmx256m", f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            "-cp", str(self.libs_dir / "*"), "kafka.tools.StorageTool",
            "format", "-t", self._cluster_id(), "-c", str(self.properties_path), "-g",
        ]  # fmt: skip
        done = subprocess.run(cmd, cwd=self.data_dir, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise KafkaStartError(
                f"formatting Kafka storage in {self.data_dir} failed (exit {done.returncode}):\n"
                f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )

    def _wait_until_ready(self) -> None:
        """Ready means a client metadata request lists this broker: the log line 'Kafka Server started'
        can precede the moment clients are served, and a listening socket alone is not enough."""
        assert self._proc is not None
        wait_until_ready(
            self._proc, lambda: _port_in_use(self.port) and _metadata_lists_broker(self.bootstrap_servers),
            what=f"Kafka on {self.bootstrap_servers}", timeout_s=self.startup_timeout_s, interval_s=0.2,
            log_path=self.log_path, error=KafkaStartError,
        )


def _metadata_lists_broker(bootstrap_servers: str) -> bool:
    # Imported here so merely importing this module (e.g. for ensure_jars in `make install`) needs no kafka.
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="local-kafka-readiness",
        bootstrap_timeout_ms=2000,
        request_timeout_ms=3000,
    )
    try:
        return bool(admin.describe_cluster().get("brokers"))
    finally:
        admin.close()


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaStartError("Java 17+ is needed to run the Kafka broker; run `make install`")
    return java


# -- `python -m devstack.local_kafka` (what `make run` starts) -----------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.local_kafka",
        description="Run a local single-node Apache Kafka broker in the foreground until SIGINT/SIGTERM.",
    )
    parser.add_argument("--data", default="var/kafka/data", help="data directory (kept across restarts)")
    parser.add_argument("--port", type=int, default=9092, help="PLAINTEXT port for clients")
    parser.add_argument("--controller-port", type=int, default=None, help="KRaft controller port (default port+1)")
    parser.add_argument("--fetch-jars", action="store_true", help="only fetch/refresh the broker jars, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The readiness probe's client would otherwise narrate every connection attempt.
    logging.getLogger("kafka").setLevel(logging.WARNING)

    if args.fetch_jars:
        libs = ensure_jars(refresh=True)
        print(f"Kafka {broker_version(libs)} jars in {libs}", flush=True)
        return 0

    kafka = LocalKafka(args.data, args.port, args.controller_port or args.port + 1)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        kafka.start()
    except KafkaStartError as exc:
        print(f"Kafka failed to start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(
        f"Kafka {kafka.version} ready on {kafka.bootstrap_servers} "
        f"(started in {kafka.started_in_s:.1f}s; log {kafka.log_path})",
        flush=True,
    )
    try:
        while not stopping.is_set():
            code = kafka.wait(timeout=0.5)
            if code is not None:
                # Exiting non-zero makes honcho stop the other processes instead of running headless.
                print(f"Kafka exited unexpectedly (code {code}):\n{tail(kafka.log_path)}", file=sys.stderr, flush=True)
                return 1
    finally:
        print("stopping Kafka...", flush=True)
        kafka.stop()
    print("Kafka stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
