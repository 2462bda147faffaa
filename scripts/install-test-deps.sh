#!/usr/bin/env bash
# Installs everything the real-client interop suites (tests/interop/) need.
# Idempotent; meant for a fresh Debian 12 machine, run as root (CI calls it).
#   - Debian chromium (used by the Node suite through playwright-core; never `playwright install`)
#   - Python venv at <repo>/.venv with pinned MSAL / azure-identity / msgraph-sdk / pytest
#   - npm packages of tests/interop/node (from its package-lock.json)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
NODE_DIR="$REPO_ROOT/tests/interop/node"

log() { printf '[install-test-deps] %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------------------------
need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${need_apt[@]}"
else
  log "Debian packages already present (chromium at /usr/bin/chromium)"
fi

# --- Python venv -------------------------------------------------------------------------------
PY_PINS=(
  "msal==1.39.0"
  "azure-identity==1.27.0"
  "msgraph-sdk==1.65.0"
  "pytest==9.2.0"
  "pytest-timeout==2.4.0"
  "requests==2.34.2"
)
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  python3 -m venv "$VENV"
fi
if "$VENV/bin/python" - "${PY_PINS[@]}" <<'PYEOF'
import sys
from importlib import metadata
for pin in sys.argv[1:]:
    name, ver = pin.split("==")
    try:
        if metadata.version(name) != ver:
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
sys.exit(0)
PYEOF
then
  log "python packages already installed"
else
  log "pip install ${PY_PINS[*]}"
  "$VENV/bin/python" -m pip install --quiet "${PY_PINS[@]}"
fi

# --- Node packages -----------------------------------------------------------------------------
cd "$NODE_DIR"
if [ -f package-lock.json ]; then
  if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    log "node_modules up to date"
  else
    log "npm ci in $NODE_DIR"
    npm ci --no-audit --no-fund
  fi
else
  log "npm install in $NODE_DIR (no package-lock.json yet)"
  npm install --no-audit --no-fund
fi
log "done"
