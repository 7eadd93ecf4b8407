#!/usr/bin/env bash
# Runs the whole suite against SQLite and against PostgreSQL, with real Redis: the two
# runs go side by side (each with its own Redis db), since the suite mostly waits on
# callbacks and polls. Outside CI a missing PostgreSQL or Redis is reported and that part
# is left out; under CI (CI=true) it is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PG_URL=${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}
REDIS_BASE=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

reachable() { "$PY" - "$1" "$2" <<'PYEOF'
import sys
kind, url = sys.argv[1], sys.argv[2]
try:
    if kind == "redis":
        import redis; redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    else:
        import psycopg; psycopg.connect(url, connect_timeout=2).close()
except Exception as exc:
    print(f"{kind} unreachable at {url}: {exc}", file=sys.stderr); sys.exit(1)
PYEOF
}

if reachable redis "$REDIS_BASE"; then
  SQLITE_REDIS=$REDIS_BASE
  PG_REDIS=${REDIS_BASE%/*}/$(( ${REDIS_BASE##*/} - 1 ))  # the db below: the runs never share one
elif [ "${CI:-}" = "true" ]; then
  echo "CI needs Redis at $REDIS_BASE" >&2; exit 1
else
  echo "warning: no Redis; the tests use the embedded substitute" >&2
  SQLITE_REDIS=""; PG_REDIS=""
fi

# The browser tests drive Debian's Chromium (never a browser download).
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium-headless-shell}
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium-headless-shell for the browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell fonts-dejavu-core) >/dev/null \
      || { echo "could not install chromium-headless-shell" >&2; exit 1; }
  else
    echo "the browser tests need Chromium at $CHROMIUM (Debian: apt-get install chromium-headless-shell)" >&2; exit 1
  fi
fi

# Each database's run is split over TEST_WORKERS processes (pytest-xdist), each with its own
# database and Redis db (tests/conftest.py): the tests mostly wait on HTTP, callbacks and the
# worker, so two processes a run keep both cores busy. The browser tests stay on one process.
WORKERS=${TEST_WORKERS:-2}
XDIST=()
if [ "$WORKERS" -gt 1 ]; then XDIST=(-n "$WORKERS" --dist loadgroup); fi

# Python's bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE):
# otherwise each of the six pytest processes, and every server or worker a test starts,
# compiles the project and rewrites the tests' asserts afresh (collecting cost 6.7 s a process
# uncached, 2.7 s cached). Collecting once first fills the cache for all of them: in two
# processes, one core each, half the test modules each (4.5 s instead of 6.7 s).
unset PYTHONDONTWRITEBYTECODE
warm() { TEST_DATABASE_URL=sqlite "$PY" -m pytest --collect-only -q -p no:cacheprovider "$@" >/dev/null 2>&1; }
warm tests/api tests/guards & warm tests --ignore=tests/api --ignore=tests/guards; wait

logs=$(mktemp -d)
TEST_DATABASE_URL=sqlite TEST_REDIS_URL=$SQLITE_REDIS nice -n "${SQLITE_NICE:-2}" "$PY" -m pytest "${XDIST[@]}" "$@" > "$logs/sqlite.log" 2>&1 &
sqlite_pid=$!
pg_pid=""
if reachable postgres "$PG_URL"; then
  TEST_DATABASE_URL=$PG_URL TEST_REDIS_URL=$PG_REDIS "$PY" -m pytest "${XDIST[@]}" "$@" > "$logs/postgres.log" 2>&1 &
  pg_pid=$!
elif [ "${CI:-}" = "true" ]; then
  echo "CI needs PostgreSQL at $PG_URL" >&2; kill $sqlite_pid; exit 1
else
  echo "warning: no PostgreSQL at $PG_URL; only SQLite is tested" >&2
fi

status=0
wait $sqlite_pid || status=1
echo "== SQLite =="; cat "$logs/sqlite.log"
if [ -n "$pg_pid" ]; then
  wait $pg_pid || status=1
  echo "== PostgreSQL =="; cat "$logs/postgres.log"
fi
rm -rf "$logs"
exit $status
