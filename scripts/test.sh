#!/usr/bin/env bash
# Runs the whole suite against SQLite and against PostgreSQL, with real Redis.
# Outside CI, a missing PostgreSQL or Redis is reported and that part is left out;
# under CI (CI=true) it is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PG_URL=${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}
REDIS_URL_FOR_TESTS=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

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

if reachable redis "$REDIS_URL_FOR_TESTS"; then
  export TEST_REDIS_URL=$REDIS_URL_FOR_TESTS
elif [ "${CI:-}" = "true" ]; then
  echo "CI needs Redis at $REDIS_URL_FOR_TESTS" >&2; exit 1
else
  echo "warning: no Redis; the tests use the embedded substitute" >&2
  export TEST_REDIS_URL=""
fi

# The browser tests drive Debian's Chromium (never a browser download).
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core) >/dev/null \
      || { echo "could not install chromium" >&2; exit 1; }
  else
    echo "the browser tests need Chromium at $CHROMIUM (Debian: apt-get install chromium)" >&2; exit 1
  fi
fi

status=0
echo "== SQLite =="
TEST_DATABASE_URL=sqlite "$PY" -m pytest "$@" || status=1
if reachable postgres "$PG_URL"; then
  echo "== PostgreSQL =="
  TEST_DATABASE_URL=$PG_URL "$PY" -m pytest "$@" || status=1
elif [ "${CI:-}" = "true" ]; then
  echo "CI needs PostgreSQL at $PG_URL" >&2; exit 1
else
  echo "warning: no PostgreSQL at $PG_URL; only SQLite was tested" >&2
fi
exit $status
