# shellcheck shell=sh
# A private D-Bus and vmclone-service on it, for the demos and benchmarks (sourced by
# tools/demo.sh, demo-gui.sh, bench.sh and bench-gui.sh; POSIX sh, so bash and dash alike).
#
#   on_exit 'COMMAND'                   run COMMAND (evaluated then) when the script exits,
#                                       the last registered first; the script sets no trap
#   stop_on_exit PID                    stop PID when the script exits
#   wait_for SECONDS WHAT COMMAND…      poll COMMAND until it succeeds; fail after SECONDS
#   start_private_bus SOCKET            a dbus-daemon listening on SOCKET (sets BUS_PID)
#   start_private_service DIR BIN URI [ARGS…]
#                                       a bus on DIR/bus.sock and BIN serving on it without
#                                       authorization on libvirt URI, state in DIR/state,
#                                       log in DIR/service.log; sets PRIVATE_BUS (its
#                                       address), SERVICE_PID and SERVICE_LOG
#   stop_private_service                stops that service and its bus (it may start again)
#
# Every wait is bounded (START_TIMEOUT seconds, default 20): a service that dies or never
# comes up fails the script with its log. The log is also printed when the script fails
# later. Whatever was started is stopped when the script exits, however it exits.

START_TIMEOUT=${START_TIMEOUT:-20}
SERVICE_LOG=""
_exit_commands=""
_started=""

on_exit() {
    _exit_commands="$1
$_exit_commands"
}

stop_on_exit() {
    _started="$1 $_started"
}

_fail() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

wait_for() {
    _wait_seconds=$1
    _wait_what=$2
    shift 2
    _wait_n=0
    until "$@"; do
        _wait_n=$((_wait_n + 1))
        [ "$_wait_n" -le $((_wait_seconds * 20)) ] || _fail "$_wait_what: not within $_wait_seconds s"
        sleep 0.05
    done
}

# SIGTERM to PID, SIGKILL after 10 s, reaped; forgotten for the exit.
_stop() {
    kill "$1" 2>/dev/null || true
    _n=0
    while kill -0 "$1" 2>/dev/null && [ "$_n" -lt 200 ]; do
        _n=$((_n + 1))
        sleep 0.05
    done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    _keep=""
    for _other in $_started; do
        [ "$_other" = "$1" ] || _keep="$_keep $_other"
    done
    _started=$_keep
}

_alive() {
    kill -0 "$1" 2>/dev/null
}

start_private_bus() {
    dbus-daemon --session --nofork --nopidfile --address="unix:path=$1" >/dev/null 2>&1 &
    BUS_PID=$!
    stop_on_exit "$BUS_PID"
    _n=0
    until [ -S "$1" ]; do
        _alive "$BUS_PID" || _fail "dbus-daemon exited (is the package dbus-daemon installed?)"
        _n=$((_n + 1))
        [ "$_n" -le $((START_TIMEOUT * 20)) ] || _fail "dbus-daemon did not listen on $1 within $START_TIMEOUT s"
        sleep 0.05
    done
}

start_private_service() {
    _dir=$1
    _bin=$2
    _uri=$3
    shift 3
    start_private_bus "$_dir/bus.sock"
    _service_bus_pid=$BUS_PID
    PRIVATE_BUS="unix:path=$_dir/bus.sock"
    SERVICE_LOG=$_dir/service.log
    "$_bin" --address "$PRIVATE_BUS" --no-authorization --uri "$_uri" \
        --state-dir "$_dir/state" "$@" 2>"$SERVICE_LOG" &
    SERVICE_PID=$!
    stop_on_exit "$SERVICE_PID"
    _n=0
    until busctl --address="$PRIVATE_BUS" status org.vmclone.Manager >/dev/null 2>&1; do
        _alive "$SERVICE_PID" || _fail "vmclone-service exited before it served org.vmclone.Manager"
        _n=$((_n + 1))
        [ "$_n" -le $((START_TIMEOUT * 20)) ] ||
            _fail "vmclone-service did not serve org.vmclone.Manager within $START_TIMEOUT s"
        sleep 0.05
    done
}

stop_private_service() {
    _stop "$SERVICE_PID"
    _stop "$_service_bus_pid"
    rm -f "${PRIVATE_BUS#unix:path=}"
}

_at_exit() {
    _status=$?
    set +e
    if [ "$_status" -ne 0 ] && [ -s "$SERVICE_LOG" ]; then
        printf '\n== vmclone-service log (%s):\n' "$SERVICE_LOG" >&2
        cat "$SERVICE_LOG" >&2
    fi
    for _pid in $_started; do _stop "$_pid"; done
    eval "$_exit_commands"
    exit "$_status"
}
trap _at_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
