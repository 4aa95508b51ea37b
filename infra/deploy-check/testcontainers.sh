#!/usr/bin/env bash
# `make test-containers`: the suite's testcontainers path for real. One integration module runs against
# a Kafka that testcontainers starts from the apache/kafka image (the stand-in of infra/images/build.sh
# here) through podman's Docker-compatible socket, with no broker given (KAFKA_BOOTSTRAP_SERVERS unset).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="$PWD/infra/podman/containers.conf"
work="$PWD/var/testcontainers"
mkdir -p "$work"
bash infra/images/build.sh kafka
socket="$work/podman.sock"
rm -f "$socket"
podman system service --time=0 "unix://$socket" >"$work/podman-service.log" 2>&1 &
service=$!
trap 'kill $service 2>/dev/null; wait $service 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
unset KAFKA_BOOTSTRAP_SERVERS
# Ryuk (testcontainers' reaper) is an image from a registry this machine cannot reach; the fixture's
# `with` block removes the container itself. The CI machine is itself a container (/.dockerenv), and
# podman's published ports do not reach its host here (neither does a container's bridge address):
# the broker's container shares the host's network (KAFKA_CONTAINER_NETWORK=host) on free ports.
DOCKER_HOST="unix://$socket" TESTCONTAINERS_RYUK_DISABLED=true KAFKA_TESTCONTAINERS=required \
  TESTCONTAINERS_CONNECTION_MODE=docker_host KAFKA_CONTAINER_NETWORK=host \
  KAFKA_TEST_IMAGE=docker.io/apache/kafka:4.1.1 \
  .venv/bin/pytest -p no:cacheprovider --junitxml=test-results/junit-testcontainers.xml \
  ${TESTCONTAINERS_MODULE:-tests/integration/test_messaging_consumer.py} "$@"
