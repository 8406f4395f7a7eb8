#!/usr/bin/env bash
# Builds the sandbox base image and the egress-proxy image without any container registry:
# Debian bookworm is bootstrapped locally (debootstrap minbase), imported, then extended by
# Dockerfiles. Idempotent: an image whose tag already exists is left alone (--force rebuilds).
# Works as root on a fresh Debian 12 machine with Docker Engine running.
#
# Environment (same names as mas settings):
#   MAS_SANDBOX_BASE_IMAGE   tag of the base image   (default mas-sandbox-base:bookworm)
#   MAS_SANDBOX_PROXY_IMAGE  tag of the proxy image  (default mas-sandbox-egress:bookworm-python)
#   MAS_SANDBOX_APT_MIRROR   Debian mirror URL       (default http://deb.debian.org/debian)
#   MAS_SANDBOX_EXTRA_CA_DIR extra CA certs (*.crt) to trust (default /usr/local/share/ca-certificates)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BASE_TAG=${MAS_SANDBOX_BASE_IMAGE:-mas-sandbox-base:bookworm}
PROXY_TAG=${MAS_SANDBOX_PROXY_IMAGE:-mas-sandbox-egress:bookworm-python}
ROOTFS_TAG=mas-sandbox-rootfs:bookworm
MIRROR=${MAS_SANDBOX_APT_MIRROR:-http://deb.debian.org/debian}
EXTRA_CA_DIR=${MAS_SANDBOX_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1
# The classic builder needs no buildx plugin (Debian's docker.io client may lack it).
export DOCKER_BUILDKIT=0

log() { echo "[build-base] $*"; }
have_image() { [ "$FORCE" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }

bootstrap_rootfs() {
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local dir
  dir=$(mktemp -d /var/tmp/mas-rootfs.XXXXXX)
  trap 'rm -rf "$dir"' RETURN
  log "debootstrap --variant=minbase bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >/dev/null
  # Drop caches the image doesn't need; the tarball stays small and the import fast.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/*
  log "importing rootfs as $ROOTFS_TAG"
  tar -C "$dir" -c . | docker import --change 'CMD ["/bin/bash"]' - "$ROOTFS_TAG" >/dev/null
}

build() {  # build TAG DOCKERFILE
  log "building $1"
  local ctx
  ctx=$(mktemp -d /var/tmp/mas-build.XXXXXX)
  trap 'rm -rf "$ctx"' RETURN
  cp "$HERE/images/$2" "$ctx/Dockerfile"
  # Certificates the host added locally (a TLS-inspecting proxy's CA, say) are trusted in the
  # sandbox too, or pip, cargo and curl fail on every HTTPS registry behind such a proxy.
  mkdir -p "$ctx/ca" && touch "$ctx/ca/.keep"
  cp "$EXTRA_CA_DIR"/*.crt "$ctx/ca/" 2>/dev/null || true
  docker build -q -t "$1" --build-arg "ROOTFS=$ROOTFS_TAG" --build-arg "APT_MIRROR=$MIRROR" "$ctx" >/dev/null
}

if have_image "$BASE_TAG" && have_image "$PROXY_TAG"; then
  log "$BASE_TAG and $PROXY_TAG exist; nothing to do"
  exit 0
fi
have_image "$ROOTFS_TAG" || bootstrap_rootfs
have_image "$BASE_TAG" || build "$BASE_TAG" Dockerfile.base
have_image "$PROXY_TAG" || build "$PROXY_TAG" Dockerfile.proxy
log "done: $BASE_TAG, $PROXY_TAG"
