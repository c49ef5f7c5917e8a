# Sourced by tools/build.sh and tools/kube/gen-replaces.sh: one Go environment
# for the test-peer builds, cached outside the work tree.
#   ATTACHE_CACHE   cache root (default ~/.cache/attache)
#   ATTACHE_GO_JOBS parallel build actions and GOMAXPROCS (default 1, so the
#                   other core stays free for whoever shares the machine)
#   ATTACHE_NICE    nice level for go commands (default 19)
ATTACHE_CACHE="${ATTACHE_CACHE:-$HOME/.cache/attache}"
export GOMODCACHE="$ATTACHE_CACHE/go/mod"
export GOCACHE="$ATTACHE_CACHE/go/build"
export GOPATH="$ATTACHE_CACHE/go/path"
export GOTOOLCHAIN=local          # never fetch another toolchain
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"
ATTACHE_GO_JOBS="${ATTACHE_GO_JOBS:-1}"
export GOMAXPROCS="${GOMAXPROCS:-$ATTACHE_GO_JOBS}"
ATTACHE_NICE="${ATTACHE_NICE:-19}"
gocmd() { nice -n "$ATTACHE_NICE" go "$@"; }
