#!/usr/bin/env bash
# Real backing services for the relayer's PostgreSQL / S3 test runs (CI and local):
#   bash scripts/ci-services.sh install           # installs when missing (CI does it in a side lane)
#   eval "$(bash scripts/ci-services.sh start)"   # installs when missing, starts, prints exports
#   bash scripts/ci-services.sh stop
#
# PostgreSQL: Debian's `postgresql` package (apt-get), its default cluster started with
# pg_ctlcluster, reached over TCP with a password set here. S3: `s3s-fs` from crates.io (an
# S3-compatible server over a local directory), installed with `cargo install --locked`.
# `install` also installs the browser of the explorer test (cli/tests/explorer_browser.rs): Debian's
# `chromium` and `chromium-driver` (headless Chromium and chromedriver), when chromedriver is missing.
# And the Python virtual environments of the OpenAI SDK test (cli/tests/gateway_openai.rs): Debian's
# `python3-venv` when `python3 -m venv` cannot make one.
# Needs root (or sudo) for apt-get and the cluster. Only the `export` lines go to stdout.
set -euo pipefail

S3S_FS_VERSION=0.14.1 # the newest s3s-fs that builds with the workspace's Rust 1.95
STATE_DIR=${VERINFER_CI_SERVICES_DIR:-/tmp/verinfer-ci-services}
PG_PASSWORD=verinfer-ci
PG_PORT=${VERINFER_CI_PG_PORT:-5432}
S3_PORT=${VERINFER_CI_S3_PORT:-9014}
S3_BUCKET=verinfer-ci
S3_ACCESS_KEY=verinfer-ci
S3_SECRET_KEY=verinfer-ci-secret

log() { echo "ci-services: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

pg_version() {
    # The newest installed server version (Debian installs one per major under /usr/lib/postgresql).
    ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1
}

wait_port() {
    local port=$1 what=$2
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    log "$what did not open port $port"
    return 1
}

install_postgres() {
    if [ -z "$(pg_version)" ] || ! command -v pg_ctlcluster > /dev/null; then
        log "installing postgresql (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get install -y -q postgresql >&2 ||
            { as_root apt-get update -q >&2 && as_root apt-get install -y -q postgresql >&2; }
    fi
}

install_s3() {
    if ! command -v s3s-fs > /dev/null; then
        log "installing s3s-fs $S3S_FS_VERSION (cargo install)"
        cargo install --locked "s3s-fs@$S3S_FS_VERSION" --features binary >&2
    fi
}

install_browser() {
    if ! command -v chromedriver > /dev/null && [ ! -x /usr/bin/chromedriver ]; then
        log "installing chromium and chromium-driver (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get install -y -q chromium chromium-driver >&2 ||
            { as_root apt-get update -q >&2 && as_root apt-get install -y -q chromium chromium-driver >&2; }
    fi
}

install_python_venv() {
    local probe
    probe=$(mktemp -d)
    if ! python3 -m venv "$probe/venv" > /dev/null 2>&1; then
        log "installing python3 and python3-venv (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get install -y -q python3 python3-venv >&2 ||
            { as_root apt-get update -q >&2 && as_root apt-get install -y -q python3 python3-venv >&2; }
    fi
    rm -rf "$probe"
}

start_postgres() {
    install_postgres
    local version
    version=$(pg_version)
    if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main "; then
        as_root pg_createcluster "$version" main >&2
    fi
    as_root pg_ctlcluster "$version" main start >&2 2>/dev/null || true
    as_root pg_ctlcluster "$version" main status > /dev/null
    wait_port "$PG_PORT" "PostgreSQL $version"
    as_root runuser -u postgres -- psql -q -p "$PG_PORT" \
        -c "ALTER USER postgres PASSWORD '$PG_PASSWORD'" >&2
    log "PostgreSQL $version on 127.0.0.1:$PG_PORT"
}

start_s3() {
    install_s3
    mkdir -p "$STATE_DIR/s3/$S3_BUCKET"
    if [ -f "$STATE_DIR/s3s-fs.pid" ] && kill -0 "$(cat "$STATE_DIR/s3s-fs.pid")" 2>/dev/null; then
        log "s3s-fs already running"
    else
        s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_ACCESS_KEY" \
            --secret-key "$S3_SECRET_KEY" "$STATE_DIR/s3" > "$STATE_DIR/s3s-fs.log" 2>&1 &
        echo $! > "$STATE_DIR/s3s-fs.pid"
    fi
    wait_port "$S3_PORT" "s3s-fs"
    log "s3s-fs on 127.0.0.1:$S3_PORT, bucket $S3_BUCKET in $STATE_DIR/s3"
}

case "${1:-}" in
install)
    install_postgres
    install_s3
    install_browser
    install_python_venv
    log "installed"
    ;;
start)
    mkdir -p "$STATE_DIR"
    start_postgres
    start_s3
    echo "export VERINFER_RELAYER_TEST_POSTGRES=postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
    echo "export VERINFER_RELAYER_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
    echo "export VERINFER_RELAYER_TEST_S3_BUCKET=$S3_BUCKET"
    echo "export VERINFER_RELAYER_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY"
    echo "export VERINFER_RELAYER_TEST_S3_SECRET_KEY=$S3_SECRET_KEY"
    ;;
stop)
    if [ -f "$STATE_DIR/s3s-fs.pid" ]; then
        kill "$(cat "$STATE_DIR/s3s-fs.pid")" 2>/dev/null || true
        rm -f "$STATE_DIR/s3s-fs.pid"
    fi
    version=$(pg_version)
    if [ -n "$version" ]; then
        as_root pg_ctlcluster "$version" main stop >&2 2>/dev/null || true
    fi
    log "stopped"
    ;;
*)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
