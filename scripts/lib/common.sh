# shellcheck shell=bash
# Shared by the scripts: messages, waiting with a deadline, the cargo target directory.

if [ -t 2 ]; then
  say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
else
  say() { printf '==> %s\n' "$*" >&2; }
fi
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# True when something listens on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for WHAT SECONDS COMMAND...: runs COMMAND until it succeeds or the deadline passes.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what did not come up within ${secs}s"
    sleep 0.5
  done
}

# Builds go outside the checkout so a fresh clone (as in CI) reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry/target}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT

# http_ok PORT PATH: true when http://127.0.0.1:PORT/PATH answers 200 (no curl needed).
http_ok() {
  local status
  status=$( { exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3 && head -n1 <&3; } 2>/dev/null ) || return 1
  [[ "$status" == *" 200 "* ]]
}
