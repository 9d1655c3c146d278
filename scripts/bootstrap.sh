# Shared setup for scripts/serve and scripts/test: a virtualenv in .venv with the
# project installed (editable), and the widget's npm packages. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

bootstrap_python() {  # $1: pip extras, e.g. "test"
    local extras="${1:-}"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    local spec="$ROOT"
    [ -n "$extras" ] && spec="$ROOT[$extras]"
    # Skip the install when nothing changed since the last one (fast re-runs).
    local stamp="$VENV/.installed-${extras:-base}"
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        echo "==> installing Python packages (${extras:-base})"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e "$spec"
        touch "$stamp"
    fi
}

bootstrap_web() {
    # socket.io-client for the pages the server serves; never a committed copy.
    if ! command -v npm >/dev/null 2>&1; then
        echo "==> npm not found: the demo page will lack socket.io-client (apt-get install npm)" >&2
        return 0
    fi
    if [ ! -d "$ROOT/web/node_modules" ] || [ "$ROOT/web/package-lock.json" -nt "$ROOT/web/node_modules" ]; then
        echo "==> installing npm packages (web/)"
        npm ci --prefix "$ROOT/web" --no-audit --no-fund --loglevel=error
        touch "$ROOT/web/node_modules"
    fi
}

apt_install() {  # install Debian packages that are missing; $@: "command:package" pairs
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
