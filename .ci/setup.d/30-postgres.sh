# shellcheck shell=bash
# Sourced by .ci/run (and usable alone: `source .ci/setup.d/30-postgres.sh`).
# Installs PostgreSQL from the Debian packages if it is missing, starts a
# throwaway cluster for the tests of trail/postgres and exports
# LAKEPROOF_TEST_POSTGRES (a postgres:// URL of a superuser; each test
# creates and drops its own database in it).
#
# The cluster lives in ${TMPDIR:-/tmp}/lakeproof-pg-<uid>: data directory,
# log file and the unix socket (no TCP port, so it cannot clash with another
# server). It is reused when it is already running, so repeated runs are
# fast; stop it with
#   pg_ctl -D "${TMPDIR:-/tmp}/lakeproof-pg-$(id -u)/data" stop
# (as the postgres user when root). PostgreSQL refuses to run as root, so
# as root the cluster belongs to the postgres user the package creates.
# fsync stays on: the durable-append benchmark must measure real commits.
_pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$_pg_bin" ] || [ ! -x "$_pg_bin/initdb" ]; then
  echo "30-postgres: installing postgresql from Debian"
  if [ "$(id -u)" = 0 ]; then _sudo=; else _sudo=sudo; fi
  $_sudo apt-get update -qq
  $_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  unset _sudo
  _pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
_pg_dir="${TMPDIR:-/tmp}/lakeproof-pg-$(id -u)"
if [ "$(id -u)" = 0 ]; then
  _pg_as() { runuser -u postgres -- "$@"; }
else
  _pg_as() { "$@"; }
fi
mkdir -p "$_pg_dir"
chmod 0700 "$_pg_dir"
[ "$(id -u)" = 0 ] && chown postgres: "$_pg_dir"
if _pg_as "$_pg_bin/pg_ctl" -D "$_pg_dir/data" status >/dev/null 2>&1; then
  echo "30-postgres: reusing the running cluster in $_pg_dir"
else
  if [ ! -f "$_pg_dir/data/PG_VERSION" ]; then
    rm -rf "$_pg_dir/data"
    _pg_as "$_pg_bin/initdb" -D "$_pg_dir/data" -U lakeproof -A trust -E UTF8 --locale=C.UTF-8 >"$_pg_dir/initdb.log" 2>&1 ||
      { cat "$_pg_dir/initdb.log"; return 1; }
  fi
  # max_connections: each gateway replica of the multi-process tests and
  # benchmarks holds a pool of up to 16 connections.
  _pg_as "$_pg_bin/pg_ctl" -D "$_pg_dir/data" -l "$_pg_dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$_pg_dir' -c max_connections=200 -c fsync=on -c synchronous_commit=on" start >/dev/null ||
    { tail -n 20 "$_pg_dir/server.log"; return 1; }
  echo "30-postgres: started $("$_pg_bin/postgres" --version) in $_pg_dir"
fi
# The socket directory must be reachable by the test user.
chmod 0711 "$_pg_dir"
export LAKEPROOF_TEST_POSTGRES="postgres://lakeproof@/postgres?host=$_pg_dir&sslmode=disable"
echo "30-postgres: LAKEPROOF_TEST_POSTGRES=$LAKEPROOF_TEST_POSTGRES"
unset -f _pg_as
unset _pg_bin _pg_dir
