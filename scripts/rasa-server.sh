#!/usr/bin/env bash
# Rasa 3.6 beside supportbot: install it into its own Python 3.10 venv (outside the repo),
# export the project's NLU data as a Rasa project, train a DIET model and serve /model/parse
# on 127.0.0.1. Rasa 3.6 runs on Python 3.8-3.10 only, hence a venv of its own.
#
# usage: scripts/rasa-server.sh [install|export|train|serve|all] [PORT]
#   install  create the venv and pip-install rasa (about 3 minutes and 2.7 GB, once)
#   export   write the Rasa project from NLU_DATA_DIR (supportbot nlu export-rasa)
#   train    install + export + `rasa train nlu` (skipped when the data did not change)
#   serve    train, then run the HTTP API in the foreground (default command)
#   all      same as serve
# environment:
#   RASA_PORT     port to serve on (default 5005; the second argument wins)
#   RASA_VENV     the venv (default ~/.cache/supportbot/rasa-venv)
#   RASA_PROJECT  the exported project (default ~/.cache/supportbot/rasa-project)
#   RASA_PYTHON   a Python 3.10 interpreter (default: pyenv's 3.10, else python3.10)
#   RASA_EPOCHS   DIET epochs written into config.yml (default 100)
#   SUPPORTBOT_PYTHON  the project's python (default .venv/bin/python, else python3)
set -euo pipefail

RASA_VERSION="3.6.21"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/supportbot"
VENV="${RASA_VENV:-$CACHE/rasa-venv}"
PROJECT="${RASA_PROJECT:-$CACHE/rasa-project}"
PORT="${2:-${RASA_PORT:-5005}}"
EPOCHS="${RASA_EPOCHS:-100}"
COMMAND="${1:-serve}"
# Rasa reports usage to its vendor unless told not to: nothing leaves this machine.
export RASA_TELEMETRY_ENABLED=false

log() { printf 'rasa-server: %s\n' "$*" >&2; }

find_python310() {
    if [[ -n "${RASA_PYTHON:-}" ]]; then echo "$RASA_PYTHON"; return; fi
    if command -v pyenv >/dev/null 2>&1; then
        local version
        version="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -V | tail -n1 || true)"
        if [[ -n "$version" ]]; then echo "$(pyenv root)/versions/$version/bin/python"; return; fi
    fi
    if command -v python3.10 >/dev/null 2>&1; then command -v python3.10; return; fi
    log "no Python 3.10 found: install it (pyenv install 3.10) or set RASA_PYTHON"
    exit 2
}

project_python() {
    if [[ -n "${SUPPORTBOT_PYTHON:-}" ]]; then echo "$SUPPORTBOT_PYTHON"
    elif [[ -x "$ROOT/.venv/bin/python" ]]; then echo "$ROOT/.venv/bin/python"
    else command -v python3; fi
}

install() {
    if [[ -x "$VENV/bin/rasa" ]] && "$VENV/bin/python" -c "import rasa" 2>/dev/null; then
        log "rasa already installed in $VENV"
        return
    fi
    local python
    python="$(find_python310)"
    log "creating $VENV with $("$python" --version)"
    "$python" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade "pip<24.1" wheel
    log "installing rasa==$RASA_VERSION (a few minutes, about 2.7 GB)"
    "$VENV/bin/python" -m pip install --quiet "rasa==$RASA_VERSION"
    "$VENV/bin/rasa" telemetry disable >&2
    "$VENV/bin/rasa" --version >&2
}

export_project() {
    log "exporting the NLU data to $PROJECT"
    (cd "$ROOT" && "$(project_python)" -c 'from bots.cli.main import main; main()' nlu export-rasa "$PROJECT" \
        --epochs "$EPOCHS" --force)
}

train() {
    install
    export_project
    # Rasa fingerprints its inputs: an unchanged project keeps the last model
    log "training (DIET, $EPOCHS epochs)"
    (cd "$PROJECT" && "$VENV/bin/rasa" train nlu --quiet --out models)
}

serve() {
    train
    log "serving on http://127.0.0.1:$PORT (Ctrl-C stops)"
    cd "$PROJECT"
    exec "$VENV/bin/rasa" run --enable-api -i 127.0.0.1 -p "$PORT" -m models
}

case "$COMMAND" in
    install) install ;;
    export) export_project ;;
    train) train ;;
    serve|all) serve ;;
    -h|--help|help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) log "unknown command: $COMMAND (install|export|train|serve)"; exit 2 ;;
esac
