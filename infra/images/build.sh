#!/usr/bin/env bash
# Builds local stand-ins for the images compose.yaml and the Dockerfile name, for machines that cannot
# reach a container registry (like the CI machine of `make deploy-check`):
#
#   docker.io/library/python:3.11-slim   Debian bookworm (its python3 is 3.11) with pip, as `python`
#   docker.io/apache/kafka:4.1.1         Debian + OpenJDK 17 + the broker's jars from Maven Central,
#                                        configured from KAFKA_* variables like the official image
#   docker.io/library/postgres:15        Debian's postgresql-15 with an entry point like the official one
#
# Each is a Debian bookworm root file system made by mmdebstrap from deb.debian.org, imported with
# `podman import`. An image is rebuilt only when its recipe changed (label org.reciprocity.recipe).
# A real deployment pulls the official images instead; these exist so the check can run offline.
#
#   infra/images/build.sh [--force] [python|kafka|postgres ...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$repo/var/images"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# This machine reaches PyPI through a TLS-inspecting egress proxy whose CA the host trusts; the Python
# stand-in trusts the same local CAs, so `pip install` inside `podman build` works as it does here.
extra_ca_dir="${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
force=0
wanted=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    python|kafka|postgres) wanted+=("$arg") ;;
    *) echo "usage: $0 [--force] [python|kafka|postgres ...]" >&2; exit 2 ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=(python kafka postgres)
mkdir -p "$work"

declare -A image=(
  [python]=docker.io/library/python:3.11-slim
  [kafka]=docker.io/apache/kafka:4.1.1
  [postgres]=docker.io/library/postgres:15
)

recipe_hash() {  # what an image is made from: its build function, its folder (and the local CAs), so a
  # change to one recipe rebuilds that image only
  { declare -f rootfs "build_$1"; [ ! -d "$here/$1" ] || find "$here/$1" -type f -print0 | sort -z | xargs -0 -r cat;
    [ "$1" != python ] || cat "$extra_ca_dir"/*.crt 2>/dev/null || true; } | sha256sum | cut -c1-16
}

current_hash() {
  podman image inspect --format '{{index .Labels "org.reciprocity.recipe"}}' "$1" 2>/dev/null || true
}

rootfs() {  # rootfs NAME TARBALL PACKAGES HOOKS...
  local name=$1 tar=$2 packages=$3; shift 3
  echo "[$name] debootstrapping Debian bookworm with: $packages"
  mmdebstrap --quiet --mode=root --variant=minbase --include="$packages" \
    --aptopt='Acquire::Retries "3"' \
    --customize-hook='chroot "$1" apt-get clean' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
    "$@" bookworm "$tar" "$mirror"
}

build_python() {
  local tar="$work/python.tar" cas=()
  for ca in "$extra_ca_dir"/*.crt; do [ -e "$ca" ] && cas+=(--customize-hook="upload $ca /usr/local/share/ca-certificates/$(basename "$ca")"); done
  rootfs python "$tar" python3,python3-pip,python3-venv,python3-setuptools,python3-wheel,ca-certificates,passwd \
    "${cas[@]}" \
    --customize-hook='chroot "$1" update-ca-certificates' \
    --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED' \
    --customize-hook='ln -sf /usr/bin/python3 "$1"/usr/local/bin/python; ln -sf /usr/bin/pip3 "$1"/usr/local/bin/pip'
  podman import --quiet \
    --change 'ENV LANG=C.UTF-8' --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --change "LABEL org.reciprocity.stand-in=\"Debian bookworm python3.11, not the official python image\"" \
    --change "LABEL org.reciprocity.recipe=$1" \
    "$tar" "${image[python]}" >/dev/null
}

build_kafka() {
  local tar="$work/kafka.tar" jars="$work/kafka-libs"
  echo "[kafka] fetching the broker's jars from Maven Central"
  rm -rf "$jars"
  mvn --batch-mode --quiet -f "$here/kafka/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DoutputDirectory="$jars" -DincludeScope=runtime
  rootfs kafka "$tar" openjdk-17-jre-headless,bash,ca-certificates,passwd \
    --customize-hook='mkdir -p "$1"/opt/kafka/bin "$1"/opt/kafka/config "$1"/etc/kafka/docker "$1"/var/lib/kafka/data' \
    --customize-hook="copy-in $jars /opt/kafka" \
    --customize-hook='mv "$1"/opt/kafka/kafka-libs "$1"/opt/kafka/libs' \
    --customize-hook="upload $here/kafka/run /etc/kafka/docker/run" \
    --customize-hook="upload $here/kafka/kafka-broker-api-versions.sh /opt/kafka/bin/kafka-broker-api-versions.sh" \
    --customize-hook="upload $repo/infra/kafka/log4j2.xml /opt/kafka/config/log4j2.xml" \
    --customize-hook='chmod 755 "$1"/etc/kafka/docker/run "$1"/opt/kafka/bin/kafka-broker-api-versions.sh' \
    --customize-hook='chroot "$1" useradd --system --uid 1000 --home-dir /opt/kafka appuser' \
    --customize-hook='chroot "$1" chown -R appuser /opt/kafka/config /var/lib/kafka'
  podman import --quiet \
    --change 'USER appuser' --change 'WORKDIR /opt/kafka' --change 'EXPOSE 9092' \
    --change 'CMD ["/etc/kafka/docker/run"]' \
    --change "LABEL org.reciprocity.stand-in=\"Kafka 4.1.1 jars from Maven Central on Debian, not the official apache/kafka image\"" \
    --change "LABEL org.reciprocity.recipe=$1" \
    "$tar" "${image[kafka]}" >/dev/null
}

build_postgres() {
  local tar="$work/postgres.tar"
  rootfs postgres "$tar" postgresql-15,bash \
    --customize-hook="upload $here/postgres/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh" \
    --customize-hook='chmod 755 "$1"/usr/local/bin/docker-entrypoint.sh' \
    --customize-hook='rm -rf "$1"/var/lib/postgresql/15 "$1"/etc/postgresql/15'
  podman import --quiet \
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' --change 'ENV LANG=C.UTF-8' --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change 'STOPSIGNAL SIGINT' \
    --change "LABEL org.reciprocity.stand-in=\"Debian postgresql-15, not the official postgres image\"" \
    --change "LABEL org.reciprocity.recipe=$1" \
    "$tar" "${image[postgres]}" >/dev/null
}

# The images that need building are built side by side (downloads and dpkg overlap); each one's output
# goes to var/images/NAME.log and is shown when it fails.
pids=()
names=()
for name in "${wanted[@]}"; do
  want="$(recipe_hash "$name")"
  if [ $force = 0 ] && [ "$(current_hash "${image[$name]}")" = "$want" ]; then
    echo "[$name] ${image[$name]} is up to date (recipe $want)"
    continue
  fi
  echo "[$name] building ${image[$name]} (recipe $want), log in var/images/$name.log"
  ( began=$SECONDS; "build_$name" "$want"; rm -f "$work/$name.tar"
    echo "[$name] built ${image[$name]} in $((SECONDS - began))s" ) >"$work/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
done
status=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then
    tail -n 1 "$work/${names[$i]}.log"
  else
    echo "[${names[$i]}] FAILED:"; tail -n 30 "$work/${names[$i]}.log"; status=1
  fi
done
exit $status
