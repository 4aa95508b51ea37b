"""A testcontainers Kafka from the apache/kafka image (the one compose.yaml runs).

testcontainers' own KafkaContainer drives the Confluent image's scripts (/etc/confluent/docker/...),
which apache/kafka does not have. This one uses what apache/kafka does have: KAFKA_* variables become
server.properties (/etc/kafka/docker/run). The broker must advertise the host's mapped port, known only
once the container runs: the container waits for a start script, which we copy in with that port.
"""

from __future__ import annotations

import io
import re
import tarfile

from testcontainers.core.container import DockerContainer

from devstack.ports import free_port
from tests.support.services import wait_for

START_SCRIPT = "/tmp/tc-start.sh"
PORT = 9092  # the listener clients on the host use, through the mapped port


class ApacheKafkaContainer(DockerContainer):  # type: ignore[misc]
    """With `host_network`, the broker listens on free ports of the host itself (for engines whose
    published ports do not reach the host, like podman on the CI machine: see the README's Deploying)."""

    def __init__(self, image: str = "apache/kafka:4.1.1", startup_timeout_s: float = 120.0,
                 host_network: bool = False) -> None:
        super().__init__(image)
        self.startup_timeout_s = startup_timeout_s
        self.host_network = host_network
        if host_network:
            self.ports_in_use = {"client": free_port(), "broker": free_port(), "controller": free_port()}
            self.with_kwargs(network_mode="host")
        else:
            self.ports_in_use = {"client": PORT, "broker": 9094, "controller": 9093}
            self.with_exposed_ports(PORT)
        client, broker, controller = self.ports_in_use.values()
        for name, value in {
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{client},BROKER://0.0.0.0:{broker},CONTROLLER://0.0.0.0:{controller}",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@localhost:{controller}",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m",
        }.items():
            self.with_env(name, value)
        self.with_command(["sh", "-c", f"while [ ! -f {START_SCRIPT} ]; do sleep 0.1; done; exec sh {START_SCRIPT}"])

    def get_bootstrap_server(self) -> str:
        if self.host_network:
            return f"127.0.0.1:{self.ports_in_use['client']}"
        return f"{self.get_container_host_ip()}:{self.get_exposed_port(PORT)}"

    def start(self) -> ApacheKafkaContainer:
        super().start()
        advertised = f"PLAINTEXT://{self.get_bootstrap_server()},BROKER://localhost:{self.ports_in_use['broker']}"
        script = f"export KAFKA_ADVERTISED_LISTENERS='{advertised}'\nexec /etc/kafka/docker/run\n".encode()
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo(START_SCRIPT.lstrip("/"))
            info.size, info.mode = len(script), 0o755
            tar.addfile(info, io.BytesIO(script))
        self.get_wrapped_container().put_archive("/", archive.getvalue())
        self._wait_started()
        return self

    def _wait_started(self) -> None:
        def started() -> bool:
            stdout, stderr = self.get_logs()
            if re.search(rb"Kafka Server started", stdout + stderr):
                return True
            self.get_wrapped_container().reload()
            if self.get_wrapped_container().status == "exited":
                raise self._did_not_start()
            return False

        try:
            wait_for(started, self.startup_timeout_s, interval_s=0.5, what=f"Kafka in {self.image} to start")
        except AssertionError:
            raise self._did_not_start() from None

    def _did_not_start(self) -> RuntimeError:
        stdout, stderr = self.get_logs()
        tail = (stdout + stderr).decode(errors="replace")[-3000:]
        return RuntimeError(f"Kafka in {self.image} did not start:\n{tail}")
