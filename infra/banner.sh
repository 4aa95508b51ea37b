#!/usr/bin/env bash
# Printed by `make run` before the processes start: where everything will be.
set -euo pipefail
kafka="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092 (local broker, data in var/kafka/data)}"
cat <<BANNER

  Reciprocity, running locally (Ctrl-C stops everything)

    web        http://127.0.0.1:8000
    ledger     http://127.0.0.1:8001   (JSON API, /health, /metrics)
    balance    http://127.0.0.1:8002   (read API, /health, /metrics)
    notify     http://127.0.0.1:8003   (/health, /metrics)
    workers    balance projector :8012, balance sweep :8022, notify sender :8013   (/health, /metrics)
    kafka      ${kafka}
    mail       smtp://127.0.0.1:1025   (every message kept in var/mail)

    demo sign-ins (password: reciprocity-demo), seeded on the first start:
      amara-okafor   a member who gives a lot of mentoring
      priya-raman    a circle lead (sees her circles' members and alerts)
      noor-haddad    the operator (lag, replay, dead letters)

BANNER
