#!/usr/bin/env bash
# Sets up everything attache needs on a Debian 12 machine, then builds it.
# Idempotent and near-instant when everything is already present.
#   - C++ toolchain and libraries: Debian packages (listed in README.md)
#   - test peers (Envoy, grpcio, xds-protos, pytest): a virtualenv under
#     ${ATTACHE_CACHE:-~/.cache/attache}, pinned in e2e/requirements.txt
#   - the dashboard test's browser: Debian's chromium, driven by playwright-core
#     (pinned in e2e/dashboard/package-lock.json, `npm ci` into its node_modules)
#   - the build: build/ (CMake + Ninja)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${ATTACHE_CACHE:-$HOME/.cache/attache}"
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libyaml-cpp-dev libspdlog-dev libcli11-dev libxxhash-dev nlohmann-json3-dev
  libcpp-httplib-dev libmicrohttpd-dev libcurl4-openssl-dev libsimdjson-dev libssl-dev libgtest-dev libbenchmark-dev
  prometheus-cpp-dev
  clang clang-format clang-tidy libclang-rt-14-dev
  python3-venv jq
  chromium fonts-dejavu-core
)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
# Node.js and npm may come from elsewhere than Debian; install Debian's only
# when there is no npm at all.
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

VENV="$CACHE/venv"
REQUIREMENTS=e2e/requirements.txt
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating $VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
fi
# Reinstall only when the pinned list changed.
if ! cmp -s "$REQUIREMENTS" "$VENV/.requirements"; then
  echo "setup: installing test peers into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/.requirements"
fi

# The dashboard test's Node modules; tarballs cached under $CACHE/npm, no
# browser download (the test uses Debian's /usr/bin/chromium).
DASHBOARD=e2e/dashboard
if ! cmp -s "$DASHBOARD/package-lock.json" "$DASHBOARD/node_modules/.attache-lock"; then
  echo "setup: installing $DASHBOARD/node_modules"
  (cd "$DASHBOARD" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    npm ci --silent --no-audit --no-fund --cache "$CACHE/npm")
  cp "$DASHBOARD/package-lock.json" "$DASHBOARD/node_modules/.attache-lock"
fi

BUILD="${ATTACHE_BUILD_DIR:-build}"
if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
ninja -C "$BUILD"
