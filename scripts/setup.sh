#!/usr/bin/env bash
# Install everything the advisor, its lab and its tests need on a fresh Debian 12 machine, as root.
# Idempotent: a second run checks, finds nothing to do and returns in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    # hypervisor: QEMU (TCG is enough for the lab), libvirt daemon + QEMU driver, clients, headers for libvirt-python
    qemu-system-x86 libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config gcc
    # metrics: Prometheus (server and promtool) with the node and libvirt exporters
    prometheus prometheus-node-exporter prometheus-libvirt-exporter
    # the lab builds its guest from Debian packages with these
    curl ca-certificates
    # the TLS tests make their certificates with openssl; the web listener's test reads its backlog with ss
    openssl iproute2
    # the web page's tests load it in headless Chromium (with a font, for its text)
    chromium fonts-dejavu-core
    # the stores' contract tests run on a real PostgreSQL server too (started by the tests, as user postgres)
    postgresql
)

log() { printf '[setup] %s\n' "$*"; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    log "apt: all ${#APT_PACKAGES[@]} packages present"
fi

# Debian's libvirt-daemon (without -system) does not create the QEMU user, yet the QEMU driver resolves it at
# start even when qemu.conf says user="root".
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
id libvirt-qemu >/dev/null 2>&1 || useradd -r -g kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [[ ! -x .venv/bin/python ]]; then
    log "venv: creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv || { apt-get install -y -q python3-venv && "$PYTHON" -m venv .venv; }
fi

# Reinstall only when the declared or locked dependencies changed.
stamp=.venv/.advisor-deps
want=$(cat pyproject.toml $( [[ -f requirements.lock ]] && echo requirements.lock) | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    log "venv: installing the advisor and its dependencies"
    .venv/bin/pip install -q --upgrade pip
    constraints=()
    [[ -f requirements.lock ]] && constraints=(-c requirements.lock)
    .venv/bin/pip install -q "${constraints[@]}" -e '.[dev]'
    echo "$want" >"$stamp"
else
    log "venv: up to date"
fi
log "ready"
