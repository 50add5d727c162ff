#!/usr/bin/env bash
# Installs what building and testing Sluice needs on a fresh Debian machine.
# As root (or with passwordless sudo) it installs missing Debian packages;
# otherwise it names each missing package and exits non-zero.
set -euo pipefail

missing=()
need() { # need PACKAGE TEST-COMMAND...
  local pkg=$1; shift
  if ! "$@" >/dev/null 2>&1; then missing+=("$pkg"); fi
}

have_pg_server() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_libclang() { ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; }

need libclang-dev have_libclang
need clang command -v clang
need postgresql have_pg_server
need postgresql-client command -v psql
need nodejs command -v node
need npm command -v npm
need pkg-config command -v pkg-config
need make command -v make
need chromium command -v chromium
need openssh-server test -x /usr/sbin/sshd
need openssh-client command -v ssh
need mariadb-server test -x /usr/sbin/mariadbd
need mariadb-client command -v mariadb
need python3-pymysql /usr/bin/python3 -c 'import pymysql'
need libmariadb-java test -f /usr/share/java/mariadb-java-client.jar
need default-jdk-headless command -v javac
need haproxy test -x /usr/sbin/haproxy
need libfaketime test -f /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1

if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "Sluice needs these Debian packages: ${missing[*]}" >&2
    echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "Sluice needs a Rust toolchain (cargo): see https://rustup.rs" >&2
  exit 1
fi

# Test fixtures from npm, pinned by their lockfiles: the identity provider
# (oidc-provider), the MySQL driver agents use (mysql2) and the MCP SDK.
for pair in oidc:oidc-provider mysql2:mysql2 mcp:@modelcontextprotocol/sdk; do
  fixture="$(dirname "$0")/../tests/fixtures/${pair%%:*}"
  if [ -f "$fixture/package-lock.json" ] && [ ! -d "$fixture/node_modules/${pair##*:}" ]; then
    (cd "$fixture" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
