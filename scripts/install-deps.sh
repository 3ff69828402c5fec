#!/usr/bin/env bash
# Installs what building, testing and running the demo need on Debian 12.
# Idempotent: when every package is already there it does nothing (so CI and
# repeated runs do not touch the network).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates procps
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl libyaml-cpp-dev libspdlog-dev libfmt-dev prometheus-cpp-dev
  libsystemd-dev libgtest-dev libgmock-dev
  libxxhash-dev   # prefix_affinity hashes prompts with XXH3 (a frozen, fast format)
  prometheus   # promtool and a real Prometheus server for the observability tests
  systemd dpkg-dev file nftables   # ops tests: systemd-analyze verify, the .deb (shlibdeps), nft -c
  # scripts/fuzz.sh: clang, its libFuzzer and sanitizer runtimes (only recommended by
  # clang-14, so named here), llvm-symbolizer for readable crash stacks
  clang-14 libclang-rt-14-dev llvm-14
)
# tests/sdk (the official openai npm client, run by the integration tests):
# Node.js and npm, Debian's packages only when the commands are missing (a
# Node.js from elsewhere, e.g. NodeSource's, bundles npm and conflicts with them).
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
      echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2
      exit 1
    fi
  else
    SUDO=
  fi

  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The npm packages of tests/sdk, exactly as package-lock.json pins them, when
# node_modules is missing or older than the lock file (touched after each
# install, so a changed lock file installs again). No package there needs its
# install scripts.
sdk=tests/sdk
if [ ! -d "$sdk/node_modules" ] || [ "$sdk/package-lock.json" -nt "$sdk/node_modules" ]; then
  echo "install-deps: npm ci in $sdk" >&2
  (cd "$sdk" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$sdk/node_modules"
fi
