#!/usr/bin/env bash
# Idempotent set-up of a checkout: uv, a Python 3.11 virtualenv in .venv, the locked dependencies
# (requirements.lock, dev extra included) and ioxhub itself (editable). Quiet when there is nothing to do.
#   bash infra/bootstrap.sh            (then: .venv/bin/pytest, .venv/bin/ioxhub ...)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

UV_VERSION=0.13.8
PYTHON_VERSION=3.11
VENV=.venv
STAMP="$VENV/.ioxhub-bootstrap"

say() { echo "bootstrap: $*" >&2; }

uv_cmd() {
  if command -v uv >/dev/null 2>&1; then uv "$@"; else python3 -m uv "$@"; fi
}

if ! command -v uv >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
  say "installing uv==$UV_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

# What the environment must match: the lock, the package metadata, the interpreter.
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1) python$PYTHON_VERSION"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] \
   && "$VENV/bin/python" -c "import ioxhub" >/dev/null 2>&1; then
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating $VENV (Python $PYTHON_VERSION)"
  uv_cmd venv --quiet --python "$PYTHON_VERSION" "$VENV"
fi
say "installing requirements.lock into $VENV"
uv_cmd pip sync --quiet --python "$VENV/bin/python" requirements.lock
uv_cmd pip install --quiet --python "$VENV/bin/python" --no-deps -e .
echo "$want" > "$STAMP"
say "ready: $VENV"
