"""Shared fixtures: real infrastructure started on demand, on free ports, in per-run directories.

- `kafka_bootstrap` (session): bootstrap servers of a real Apache Kafka broker. KAFKA_BOOTSTRAP_SERVERS
  wins; else a container engine that answers (DOCKER_HOST; podman's socket works) runs KAFKA_TEST_IMAGE
  through testcontainers (`make test-containers` does, in CI); else a LocalKafka started here.
- `postgres_server` (session): a throwaway LocalPostgres; `postgres_url`: a fresh database per test.
- `unique_id`: a short unique suffix for topic names, ids and database names.

Under CI=true a skipped test fails the run: in CI a skip almost always means missing infrastructure,
and a green run that silently skipped the Kafka tests proves nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Iterator

import pytest

from devstack.local_kafka import LIBS_DIR, LocalKafka, broker_version
from devstack.local_postgres import LocalPostgres

log = logging.getLogger("tests.infra")

# Tests run as local development: services accept their local default secrets (tests that check the
# refusal outside development take the switch away themselves). Processes the tests start inherit it.
os.environ["RECIPROCITY_ENV"] = "development"

# Lines naming the infrastructure actually used, repeated in the terminal summary so every test log
# says which broker and database version it ran against.
_INFRA_LINES = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_INFRA_LINES] = []
    # kafka-python 3.0 loads its protocol schemas with importlib.resources' legacy API: ~200 warnings
    # per run that are not ours to fix and would bury our own.
    config.addinivalue_line("filterwarnings", r"ignore:(read|open)_text is deprecated:DeprecationWarning")
    # A ledger created in a test without its own key store keeps keys in this run's temporary folder,
    # never in the checkout's var/ (service processes get one per test folder: support/services.py).
    if "LEDGER_KEYS_DATABASE_URL" not in os.environ:
        import tempfile

        os.environ["LEDGER_KEYS_DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='ledger-keys-')}/keys.db"


def _announce(config: pytest.Config, line: str) -> None:
    log.info(line)
    config.stash[_INFRA_LINES].append(line)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None:
        # Fixture setup runs under output capture; say it on the terminal right away anyway, so a
        # slow or hanging run already shows which broker it is talking to.
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line(f"[infra] {line}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        kafka = f"kafka: external broker at {external} (KAFKA_BOOTSTRAP_SERVERS)"
    else:
        try:
            jars = f"Apache Kafka {broker_version(LIBS_DIR)} from {LIBS_DIR}"
        except RuntimeError:
            jars = "Apache Kafka jars fetched with Maven on first use"
        kafka = f"kafka: Docker engine if one answers, else a local broker: {jars} (started on first use)"
    lines = [kafka]
    if os.environ.get("CI") == "true":
        lines.append("CI=true: skipped tests count as failures")
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_INFRA_LINES, [])
    if lines:
        terminalreporter.section("infrastructure used")
        for line in lines:
            terminalreporter.write_line(line)
    skipped = _skipped_count(config)
    if os.environ.get("CI") == "true" and skipped:
        terminalreporter.write_line(f"CI=true: {skipped} skipped test(s) count as failures", red=True, bold=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Runs before the terminal reporter's own sessionfinish wrapper prints the summary, and pytest
    # returns session.exitstatus after this hook, so the process exits non-zero.
    if os.environ.get("CI") == "true" and exitstatus == pytest.ExitCode.OK and _skipped_count(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _skipped_count(config: pytest.Config) -> int:
    # The terminal reporter's "skipped" bucket holds runtime and collection skips; xfails are separate.
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return len(reporter.stats.get("skipped", [])) if reporter is not None else 0


# -- Kafka ---------------------------------------------------------------------------------------------


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no permission, daemon down: all mean "no Docker"
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers ("host:port") of a real Kafka broker shared by the whole session.

    Tests isolate themselves with unique topic names and consumer groups (see `unique_id`).
    """
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        _announce(request.config, f"external Kafka broker at {external} (KAFKA_BOOTSTRAP_SERVERS)")
        yield external
        return

    if _docker_answers():
        # apache/kafka (what compose.yaml runs) by default; a Confluent image through testcontainers' own
        # KafkaContainer, which drives that image's scripts.
        image = os.environ.get("KAFKA_TEST_IMAGE", "apache/kafka:4.1.1")
        if "cp-kafka" in image:
            from testcontainers.community.kafka import KafkaContainer

            container = KafkaContainer(image).with_kraft()
        else:
            from tests.support.kafka_container import ApacheKafkaContainer

            container = ApacheKafkaContainer(image, host_network=os.environ.get("KAFKA_CONTAINER_NETWORK") == "host")
        with container:
            bootstrap = container.get_bootstrap_server()
            _announce(request.config, f"Kafka broker from Docker image {image} at {bootstrap} (testcontainers, "
                                      f"{os.environ.get('DOCKER_HOST') or 'the default Docker socket'})")
            yield bootstrap
        return
    if os.environ.get("KAFKA_TESTCONTAINERS") == "required":
        pytest.fail(f"KAFKA_TESTCONTAINERS=required but no container engine answers at "
                    f"{os.environ.get('DOCKER_HOST') or 'the default Docker socket'}")

    began = time.monotonic()
    with LocalKafka(tmp_path_factory.mktemp("kafka")) as kafka:
        _announce(
            request.config,
            f"Apache Kafka {kafka.version} broker at {kafka.bootstrap_servers} "
            f"(local KRaft node, ready in {time.monotonic() - began:.1f}s, log {kafka.log_path})",
        )
        yield kafka.bootstrap_servers


# -- PostgreSQL ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL server for the session (durability off; removed at the end)."""
    with LocalPostgres() as pg:
        _announce(request.config, f"PostgreSQL {pg.version} at 127.0.0.1:{pg.port} (local, {pg.data_dir})")
        yield pg


@pytest.fixture
def postgres_url(postgres_server: LocalPostgres, unique_id: str) -> str:
    """SQLAlchemy URL of a new, empty database of its own for this test."""
    return postgres_server.create_database(f"test_{unique_id}")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A fresh read-model database, once on SQLite and once on PostgreSQL: every read model is tested on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/read-models.db"
    return request.getfixturevalue("postgres_url")


# -- helpers -------------------------------------------------------------------------------------------


@pytest.fixture
def unique_id() -> str:
    """A short unique lowercase suffix ([0-9a-f]{10}) for topic names, ids, groups and databases."""
    return uuid.uuid4().hex[:10]
