#!/usr/bin/env bash
# Builds the Kubernetes test peers from Go modules (nothing prebuilt is
# downloaded): kube-apiserver and kubectl from tools/kube, etcd from
# tools/etcd, into ${ATTACHE_CACHE:-~/.cache/attache}/bin.
#
#   tools/build.sh            build what is missing or out of date
#   tools/build.sh --force    rebuild all three
#
# A binary is rebuilt only when it is missing or when its stamp (hashes of the
# module's go.mod and go.sum, the Go version and this recipe) changed; when
# everything is up to date this returns at once. GOMODCACHE and GOCACHE live
# under $ATTACHE_CACHE/go. Builds run at nice 19 with ATTACHE_GO_JOBS (default
# 1) parallel actions; a cold build on one core takes a long while.
set -euo pipefail
tools="$(cd "$(dirname "$0")" && pwd)"
source "$tools/go-env.sh"
BIN="$ATTACHE_CACHE/bin"
mkdir -p "$BIN"
force=0
[[ "${1:-}" == "--force" ]] && force=1

# Bump when the way the binaries are built changes.
RECIPE=1

log() { printf 'build.sh: %s\n' "$*"; }
start_all=$SECONDS

# One build at a time per cache (parallel test workers may all call this).
exec 9>"$BIN/.build.lock"
flock 9

module_version() {  # module_version DIR MODULE -> the version DIR/go.mod requires
  (cd "$1" && go mod edit -json) | jq -r --arg m "$2" '.Require[] | select(.Path == $m) | .Version'
}

stamp_of() {  # stamp_of DIR EXTRA...
  {
    echo "recipe $RECIPE"
    go version
    sha256sum "$1/go.mod" "$1/go.sum" | awk '{ print $1 }'
    shift
    printf '%s\n' "$@"
  } | sha256sum | awk '{ print $1 }'
}

up_to_date() {  # up_to_date STAMPNAME STAMP BINARY...
  local name=$1 stamp=$2
  shift 2
  ((force)) && return 1
  [[ -f "$BIN/.$name.stamp" && "$(cat "$BIN/.$name.stamp")" == "$stamp" ]] || return 1
  local b
  for b in "$@"; do [[ -x "$BIN/$b" ]] || return 1; done
}

build_one() {  # build_one DIR NAME PACKAGE LDFLAGS
  local dir=$1 name=$2 package=$3 ldflags=$4 t0=$SECONDS
  log "building $name ($package) ..."
  (cd "$dir" && gocmd build -p "$ATTACHE_GO_JOBS" -trimpath -ldflags "$ldflags" \
      -o "$BIN/.$name.tmp" "$package")
  mv -f "$BIN/.$name.tmp" "$BIN/$name"
  log "built $name in $((SECONDS - t0))s ($(du -h "$BIN/$name" | cut -f1))"
}

download() {  # download DIR
  local t0=$SECONDS
  log "downloading modules for $(basename "$1") (cached in $GOMODCACHE) ..."
  (cd "$1" && gocmd mod download)
  log "modules ready in $((SECONDS - t0))s"
}

# --- etcd --------------------------------------------------------------------
ETCD_DIR="$tools/etcd"
ETCD_VERSION="$(module_version "$ETCD_DIR" go.etcd.io/etcd/server/v3)"
ETCD_LDFLAGS="-s -w"
etcd_stamp="$(stamp_of "$ETCD_DIR" "$ETCD_LDFLAGS")"
if up_to_date etcd "$etcd_stamp" etcd; then
  log "etcd $ETCD_VERSION up to date"
else
  rm -f "$BIN/.etcd.stamp"
  download "$ETCD_DIR"
  build_one "$ETCD_DIR" etcd go.etcd.io/etcd/server/v3 "$ETCD_LDFLAGS"
  echo "$etcd_stamp" > "$BIN/.etcd.stamp"
fi


# --- kube-apiserver and kubectl ----------------------------------------------
KUBE_DIR="$tools/kube"
KUBE_VERSION="$(module_version "$KUBE_DIR" k8s.io/kubernetes)"
[[ "$KUBE_VERSION" =~ ^v1\.([0-9]+)\. ]] || { log "no k8s.io/kubernetes version in $KUBE_DIR/go.mod"; exit 1; }
KUBE_MINOR="${BASH_REMATCH[1]}"
# What Kubernetes' own build stamps in (hack/lib/version.sh), so that /version
# and kubectl version report the release instead of v0.0.0-master.
KUBE_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  KUBE_LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$KUBE_MINOR"
  KUBE_LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
kube_stamp="$(stamp_of "$KUBE_DIR" "$KUBE_LDFLAGS")"
if up_to_date kube "$kube_stamp" kube-apiserver kubectl; then
  log "kube-apiserver and kubectl $KUBE_VERSION up to date"
else
  rm -f "$BIN/.kube.stamp"
  download "$KUBE_DIR"
  build_one "$KUBE_DIR" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$KUBE_LDFLAGS"
  build_one "$KUBE_DIR" kubectl k8s.io/kubernetes/cmd/kubectl "$KUBE_LDFLAGS"
  echo "$kube_stamp" > "$BIN/.kube.stamp"
fi

log "done in $((SECONDS - start_all))s: $BIN/{kube-apiserver,kubectl,etcd}"
