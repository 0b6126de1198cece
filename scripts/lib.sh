# Shared by scripts/quickstart and scripts/test: find Python, make the project venv, install mims.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MIMS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mims}"
VENV="${MIMS_VENV:-$ROOT/.venv}"

log() { printf '==> %s\n' "$*" >&2; }

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "mims needs Python 3.11 or newer on PATH" >&2
  return 1
}

# A non-editable install, as users get it: charts, layers and blueprints come from the wheel.
install_mims() {
  local extras="${1:-}"
  local python; python="$(find_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$python" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  log "installing mims${extras:+ with $extras}"
  "$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$ROOT"
  "$VENV/bin/python" -m pip install --quiet "$ROOT${extras:+[$extras]}"
}
