#!/usr/bin/env bash
# `make smoke`: start the whole stack as `make run` does, wait until every component answers
# (each service's /health, the mail sink's SMTP greeting, Kafka through the ledger's health), print
# what answered, then stop it all. Uses the same fixed ports as `make run`, so not while it is up.
set -euo pipefail
cd "$(dirname "$0")/.."
log=var/smoke.log
mkdir -p var
# Its own session, so the Ctrl-C we send at the end (and honcho's TERM to its group) stays there.
setsid make run >"$log" 2>&1 &
runner=$!
trap 'kill -INT -- -$runner 2>/dev/null; wait $runner 2>/dev/null || true' EXIT

deadline=$((SECONDS + 180))
status=0
for url in http://127.0.0.1:8001/health http://127.0.0.1:8002/health http://127.0.0.1:8003/health \
           http://127.0.0.1:8012/health http://127.0.0.1:8022/health http://127.0.0.1:8013/health \
           http://127.0.0.1:8000/health; do
  code=000
  until [ "$code" = 200 ] || [ $SECONDS -ge $deadline ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
    [ "$code" = 200 ] || sleep 1
  done
  printf '%-36s %s\n' "$url" "$code"
  [ "$code" = 200 ] || status=1
done
if .venv/bin/python -c 'import smtplib; smtplib.SMTP("127.0.0.1", 1025, timeout=5).quit()' 2>/dev/null; then
  printf '%-36s %s\n' "smtp://127.0.0.1:1025" "220"
else
  printf '%-36s %s\n' "smtp://127.0.0.1:1025" "no answer"; status=1
fi
[ $status = 0 ] && echo "every component answers" || { echo "see $log"; tail -30 "$log"; }
exit $status
