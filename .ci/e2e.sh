#!/usr/bin/env bash
# End-to-end tests against a real Mattermost server.
#
# Starts PostgreSQL (127.0.0.1:$PG_PORT) and Mattermost Team Edition
# (127.0.0.1:$MM_PORT) with ../shared/mattermost/start.sh, seeds them with
# seed.sh, runs `go test -race -tags e2e -run E2E` with the seed's MM_*
# variables, and always stops both again (stop.sh, from an EXIT trap: also on
# failure or Ctrl-C).
#
# Usage: bash .ci/e2e.sh [extra go test flags, e.g. -v]
# Env:   MM_BIN      a built mattermost binary (otherwise the one cached in the
#                    run directory, otherwise built once, ~1-3 min)
#        MM_PORT     Mattermost port (default 8065)
#        PG_PORT     PostgreSQL port (default 55432)
#        E2E_DIR     run directory (default .e2e/server in the repo, ignored by git)
#        MM_SHARED   the shared Mattermost scripts (default ../shared/mattermost)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${MM_SHARED:-$repo/../shared/mattermost}
run=${E2E_DIR:-$repo/.e2e/server}
export MM_PORT=${MM_PORT:-8065} PG_PORT=${PG_PORT:-55432}

say() { printf 'e2e: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

for f in start.sh seed.sh stop.sh go.mod go.sum; do
  [ -f "$shared/$f" ] || die "$shared/$f not found (set MM_SHARED to the folder holding the shared Mattermost scripts)"
done
shared=$(cd "$shared" && pwd)

# --- Tools: PostgreSQL, curl, python3 (seed.sh parses JSON with it). -------
pg_on_path() {
  command -v pg_ctl >/dev/null 2>&1 && return 0
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { PATH=$d:$PATH; export PATH; return 0; }
  done
  return 1
}
missing=()
pg_on_path || missing+=(postgresql)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
    || die "missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) and retry"
  say "installing ${missing[*]} with apt-get"
  # Keep the package's own cluster from starting: only our server may run.
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  pg_on_path || die "postgresql installed but pg_ctl not found under /usr/lib/postgresql/*/bin"
fi

# --- The run directory: a fresh database each run, the binary cached. ------
mkdir -p "$run"
run=$(cd "$run" && pwd)
# As root, PostgreSQL runs as the postgres user (start.sh), which must reach
# the data directory; a clone under /root is out of its reach.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd -r -m postgres
  if ! su postgres -s /bin/sh -c "cd '$run'" 2>/dev/null; then
    [ -z "${E2E_DIR:-}" ] || die "E2E_DIR=$run is not reachable by the postgres user; choose a directory it can enter"
    run=/tmp/teleport-mattermost-e2e
    say "the postgres user cannot enter the repo; using $run instead"
    mkdir -p "$run"
  fi
fi
# A run killed hard (SIGKILL) never reached its trap: stop what it left.
if [ -f "$run/mattermost.pid" ] || [ -f "$run/pg/postmaster.pid" ]; then
  pid=$(cat "$run/mattermost.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" != mattermost ]; then
    rm -f "$run/mattermost.pid" # not ours any more: never signal a reused pid
  fi
  say "stopping what an earlier run left in $run"
  bash "$shared/stop.sh" "$run"
fi
stamp=$(cat "$shared/go.mod" "$shared/go.sum" | sha256sum | cut -c1-16)
cached=$run/mattermost
if [ -x "$cached" ] && [ "$(cat "$run/mattermost.stamp" 2>/dev/null)" != "$stamp" ]; then
  say "cached binary was built from other go.mod/go.sum; rebuilding"
  rm -f "$cached"
fi
find "$run" -mindepth 1 -maxdepth 1 ! -name mattermost ! -name mattermost.stamp -exec rm -rf {} +
if [ -n "${MM_BIN:-}" ]; then
  MM_BIN=$(cd "$(dirname "$MM_BIN")" && pwd)/$(basename "$MM_BIN")
  [ -x "$MM_BIN" ] || die "MM_BIN=$MM_BIN is not an executable"
elif [ -x "$cached" ]; then
  MM_BIN=$cached
fi

# --- Ports: the defaults are fixed; fail clearly if someone else has them. --
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$MM_PORT" "$PG_PORT"; do
  if port_busy "$p"; then
    die "127.0.0.1:$p is already in use (another Mattermost/PostgreSQL or an earlier run?); stop it, or pick free ports: MM_PORT=18065 PG_PORT=55433 bash .ci/e2e.sh"
  fi
done

# --- Start, and from here on always stop. ----------------------------------
# fg runs a long step (the build and start, the tests) in a process group of
# its own and waits for it: a signal then reaches our trap at once, instead of
# after the step, and cleanup can stop the whole step by its group id.
child=
fg() {
  local rc=0
  set -m
  "$@" &
  child=$!
  set +m
  wait "$child" || rc=$?
  child=
  return "$rc"
}
stopped=
cleanup() {
  local rc=$?
  [ -n "$stopped" ] && return
  stopped=1
  local pid
  if [ -n "$child" ]; then
    say "interrupted; stopping the running step (process group $child)"
    kill -TERM -- "-$child" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$child" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$child" 2>/dev/null || true
  fi
  say "stopping Mattermost and PostgreSQL"
  pid=$(cat "$run/mattermost.pid" 2>/dev/null || true)
  bash "$shared/stop.sh" "$run" || true
  # stop.sh signals and moves on; make sure both are really gone.
  if [ -n "$pid" ]; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then say "mattermost (pid $pid) ignored SIGTERM; killing it"; kill -9 "$pid" 2>/dev/null || true; fi
    kill -0 "$pid" 2>/dev/null || rm -f "$run/mattermost.pid"
  fi
  for _ in $(seq 1 50); do [ -f "$run/pg/postmaster.pid" ] || break; sleep 0.2; done
  [ -f "$run/pg/postmaster.pid" ] && say "WARNING: PostgreSQL in $run/pg did not stop; see $run/pg/log"
  say "logs: $run/mattermost.log, $run/server.out, $run/pg/log"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$SECONDS
if [ -n "${MM_BIN:-}" ]; then
  say "starting Mattermost from $MM_BIN"
else
  say "building Mattermost into $run (first run only; cached afterwards)"
fi
export MM_BIN=${MM_BIN:-}
cd "$run" # start.sh runs PostgreSQL's tools as postgres, from this directory
fg bash "$shared/start.sh" "$run" >&2
if [ -z "${MM_BIN:-}" ]; then
  echo "$stamp" >"$run/mattermost.stamp"
  rm -rf "$run/build" # the module copy start.sh built in; the binary stays
fi
say "server up after $((SECONDS - t0))s; seeding"

export MM_URL=http://127.0.0.1:$MM_PORT
seed=$(bash "$shared/seed.sh") || die "seed.sh failed; see $run/mattermost.log"
while IFS= read -r line; do
  [[ $line =~ ^(MM_[A-Z_]+)=([A-Za-z0-9:/._@-]*)$ ]] || die "unexpected line from seed.sh: $line"
  export "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
done <<<"$seed"
[ -n "${MM_BOT_TOKEN:-}" ] || die "seed.sh printed no MM_BOT_TOKEN"

say "running the e2e tests"
cd "$repo"
fg go test -race -tags e2e -run 'E2E' -count=1 "$@" ./...
say "e2e tests passed in $((SECONDS - t0))s"
