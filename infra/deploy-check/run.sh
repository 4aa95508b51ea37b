#!/usr/bin/env bash
# `make deploy-check`: compose.yaml brought up for real with podman on this machine, checked, taken down.
#
# 1. stand-ins for the images no registry can give us here (infra/images/build.sh; cached in podman's
#    store, rebuilt only when a recipe changes), then the project's image from the Dockerfile;
# 2. podman's Docker-compatible socket (`podman system service`) for docker-compose 1.29 (Debian's),
#    which honours depends_on conditions (migrations before services, Kafka healthy first);
# 3. fresh random secrets, compose.yaml + an SMTP sink (compose.check.yaml), two balance projectors;
# 4. every container healthy, then check.py inside the compose network (exchange, summary, web page,
#    alert email), then `down -v`: containers, network and volumes removed, and checked to be gone.
#
# podman runs health checks from systemd timers; without systemd (this machine, CI) nothing would ever
# run them and every container would stay "starting", so this script runs them itself every few seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
export CONTAINERS_CONF="$repo/infra/podman/containers.conf"
work="$repo/var/deploy-check"
project="reciprocity-check"
image="localhost/reciprocity:deploy-check"
compose_files=(-f compose.yaml -f infra/deploy-check/compose.check.yaml)
began=$SECONDS
mkdir -p "$work"
say() { printf '[deploy-check %4ds] %s\n' $((SECONDS - began)) "$*"; }

pids=()
cleanup() {
  local status=$?
  set +e
  if [ -n "${DOCKER_HOST:-}" ]; then
    if [ $status != 0 ]; then
      say "FAILED; the containers' state and the last lines of their logs:"
      podman ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}}  {{.Status}}'
      for name in $(podman ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}}'); do
        echo "----- $name"; podman logs --tail 25 "$name" 2>&1
      done
    fi
    say "taking everything down"
    docker-compose -p "$project" "${compose_files[@]}" down -v --remove-orphans --timeout 30 >"$work/down.log" 2>&1 \
      || cat "$work/down.log"
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  left="$(podman ps -a -q --filter "label=com.docker.compose.project=$project"; \
          podman volume ls -q --filter "label=com.docker.compose.project=$project"; \
          podman network ls -q --filter "label=com.docker.compose.project=$project")"
  if [ -n "$left" ]; then
    say "FAILED: left behind after down: $left"; status=1
  elif [ $status = 0 ]; then
    say "everything removed (containers, network, volumes); deploy-check passed in $((SECONDS - began))s"
  fi
  exit $status
}
trap cleanup EXIT

say "stand-in base images (cached when their recipes are unchanged)"
bash infra/images/build.sh
say "building $image from the Dockerfile"
# The build reaches PyPI through the host's network (a bridge here resolves names, not the internet).
podman build --quiet --network host --tag "$image" . >"$work/build.log"

socket="$work/podman.sock"
rm -f "$socket"
podman system service --time=0 "unix://$socket" >"$work/podman-service.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
export DOCKER_HOST="unix://$socket" COMPOSE_HTTP_TIMEOUT=300 RECIPROCITY_IMAGE="$image"

# Secrets exist only in this process's environment; compose refuses to start without each of them.
secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }
POSTGRES_PASSWORD="$(secret)" LEDGER_TOKEN="$(secret)" BALANCE_TOKEN="$(secret)" NOTIFY_TOKEN="$(secret)" \
  SECRET_KEY="$(secret)" LEDGER_KEYS_TOKEN="$(secret)" LEDGER_KEYS_SECRET="$(secret)"
export POSTGRES_PASSWORD LEDGER_TOKEN BALANCE_TOKEN NOTIFY_TOKEN SECRET_KEY LEDGER_KEYS_TOKEN LEDGER_KEYS_SECRET
export SMTP_HOST=mail SMTP_PORT=1025 SMTP_STARTTLS=false WEB_BASE_URL="http://127.0.0.1:${DEPLOY_CHECK_WEB_PORT:-18080}"
export WEB_PORT="${DEPLOY_CHECK_WEB_PORT:-18080}" WEB_HTTP_WORKERS=2 KAFKA_HEAP_OPTS="-Xms256m -Xmx512m"

# Leftovers of an interrupted run would be reused (volumes!): start from nothing.
docker-compose -p "$project" "${compose_files[@]}" down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true

# The health checks podman cannot schedule here (see above).
(
  while sleep 4; do
    for name in $(podman ps -q --filter "label=com.docker.compose.project=$project" --filter health=starting; \
                  podman ps -q --filter "label=com.docker.compose.project=$project" --filter health=healthy; \
                  podman ps -q --filter "label=com.docker.compose.project=$project" --filter health=unhealthy); do
      podman healthcheck run "$name" >/dev/null 2>&1 || true
    done
  done
) &
pids+=($!)

say "compose up (two balance projectors, two web workers)"
docker-compose -p "$project" "${compose_files[@]}" up -d --no-build --scale balance-projector=2 \
  >"$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }

say "waiting for every service to be healthy"
deadline=$((SECONDS + ${DEPLOY_CHECK_TIMEOUT_S:-300}))
while :; do
  states="$(podman ps -a --filter "label=com.docker.compose.project=$project" \
            --format '{{index .Labels "com.docker.compose.service"}} {{.Status}}' | sort)"
  # Done: the migration exited 0, the sink (no health check) is up, every other container is healthy.
  waiting="$(grep -v -E '^(migrate Exited \(0\)|mail Up)' <<<"$states" | grep -v '(healthy)' || true)"
  [ -z "$waiting" ] && break
  if [ $SECONDS -ge $deadline ]; then say "not healthy in time:"; echo "$waiting"; exit 1; fi
  sleep 3
done
migrated="$(podman inspect --format '{{.State.ExitCode}}' "$(podman ps -a -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=migrate")")"
[ "$migrated" = 0 ] || { say "the migration exited with $migrated"; exit 1; }
echo "$states" | sed 's/^/    /'

mail_container="$(podman ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=mail")"
say "checking through the APIs, the web and the SMTP sink"
podman run --rm --network "${project}_default" \
  --user 0 --volumes-from "$mail_container:ro" -e CHECK_MAILDIR=/mail \
  -e LEDGER_TOKEN -e BALANCE_TOKEN \
  -e DATABASE_URL="postgresql+psycopg://reciprocity:$POSTGRES_PASSWORD@postgres:5432/reciprocity" \
  -v "$repo/infra/deploy-check/check.py:/check.py:ro" "$image" python /check.py

say "published ports (the web only, on loopback):"
published="$(for name in $(podman ps -q --filter "label=com.docker.compose.project=$project"); do
  podman port "$name" | sed "s|^|    $(podman inspect --format '{{index .Config.Labels "com.docker.compose.service"}}' "$name") |"; done)"
echo "$published"
[ "$(grep -c . <<<"$published")" = 1 ] && grep -q "^    web 8000/tcp -> 127.0.0.1:$WEB_PORT" <<<"$published" \
  || { say "FAILED: only the web may be published, on 127.0.0.1"; exit 1; }
