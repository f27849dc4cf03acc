#!/usr/bin/env bash
# chaosgate against its peers, on loopback, on a 2-core budget:
#   (a) proxy throughput: wrk keep-alive through chaosgate / nginx / HAProxy, and direct
#   (b) added latency at a fixed open-loop rate (chaosgate load and oha), proxy minus direct
#   (c) load generator: chaosgate load vs wrk vs oha (closed loop rps; open-loop rate accuracy)
#   (d) peak RSS (VmHWM) of each proxy under that load
#   (e) system calls per request of each proxy under the wrk load (strace -c; once per run)
# Each measurement runs BENCH_REPS times; the table shows medians with the min–max spread, and
# ratios chaosgate ÷ peer. JSON lands in reports/bench/ (gitignored).
#
# Pinning: every proxy runs with ONE worker on core 0 (nginx worker_processes 1, HAProxy
# nbthread 1, chaosgate --threads 1); load generator and backend share core 1. In (c) there is
# no proxy, so the backend moves to core 0 and the load generator has core 1 to itself.
#
# Usage: benches/peers.sh            (see the BENCH_* variables below to shorten or lengthen)
set -euo pipefail

DURATION=${BENCH_DURATION:-5}          # seconds per measurement
WARMUP=${BENCH_WARMUP:-1}              # seconds of unrecorded load before each wrk run
REPS=${BENCH_REPS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
LATENCY_RATE=${BENCH_LATENCY_RATE:-2000}   # (b) req/s: well below every proxy's saturation
ACCURACY_RATE=${BENCH_ACCURACY_RATE:-20000} # (c) req/s asked of the open-loop generators
SKIP_INSTALL=${BENCH_SKIP_INSTALL:-0}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
CHAOSGATE=${BENCH_CHAOSGATE:-}        # another chaosgate binary (A/B runs); implies no build

# Loopback ports; all must be free.
BACKEND_PORT=18080
CHAOSGATE_PORT=18081
NGINX_PORT=18082
HAPROXY_PORT=18083
ADMIN_PORT=18084

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/benches/peers"
if [[ -n $CHAOSGATE ]]; then
    SKIP_BUILD=1
else
    CHAOSGATE="$ROOT/target/release/chaosgate"
fi
export PATH="$HOME/.cargo/bin:$PATH"

WORK=$(mktemp -d /tmp/chaosgate-peers.XXXXXX)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

log() { printf '[peers] %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------------

install_tools() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v haproxy >/dev/null || missing+=(haproxy)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v strace >/dev/null || missing+=(strace)
    command -v python3 >/dev/null || missing+=(python3)
    if ((${#missing[@]})); then
        local sudo=()
        [[ $(id -u) == 0 ]] || sudo=(sudo)
        log "installing ${missing[*]} from Debian"
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! command -v oha >/dev/null; then
        log "oha not found: cargo install oha --locked"
        cargo install oha --locked >"$WORK/oha-install.log" 2>&1 ||
            log "oha could not be built (see the log below); continuing without it"
        command -v oha >/dev/null || tail -5 "$WORK/oha-install.log" >&2 || true
    fi
}

HAVE_OHA=0
OHA_JSON=()
detect_oha() {
    command -v oha >/dev/null || return 0
    HAVE_OHA=1
    # oha >= 1.5 spells JSON output --output-format json; older ones -j.
    if oha --help 2>&1 | grep -q -- '--output-format'; then
        OHA_JSON=(--output-format json)
    else
        OHA_JSON=(-j)
    fi
}

# --- processes ---------------------------------------------------------------------------------

port_free() { ! (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

wait_port() {
    local port=$1 i
    for i in $(seq 100); do
        (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
        sleep 0.05
    done
    log "nothing listens on 127.0.0.1:$port"
    return 1
}

# start NAME CORE CMD... : runs CMD pinned to CORE in the background; sets STARTED_PID.
start() {
    local name=$1 core=$2
    shift 2
    taskset -c "$core" "$@" >"$WORK/$name.out" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

stop() {
    local pid=$1 p keep=()
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# The common backend is nginx answering `return 200` from memory: a C event loop that does far
# less work per request than any proxy (no upstream side, no body copy), so it is never the
# bottleneck, and unlike the mock-backends binary it needs no build and cannot share a code path
# with the proxy under test.
write_configs() {
    mkdir -p "$WORK/nginx-backend/logs" "$WORK/nginx-proxy/logs"
    cat >"$WORK/nginx-backend/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$BACKEND_PORT reuseport;
        location / { default_type text/plain; return 200 "hello, bench\n"; }
    }
}
EOF
    # master_process off: one process, one thread, so taskset and VmHWM see the whole proxy.
    cat >"$WORK/nginx-proxy/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    upstream origin {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive $CONNECTIONS;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend bench
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend origin
backend origin
    server origin 127.0.0.1:$BACKEND_PORT
EOF
}

start_backend() {
    start backend 1 nginx -p "$WORK/nginx-backend" -c nginx.conf
    BACKEND_PID=$STARTED_PID
    wait_port "$BACKEND_PORT"
}

# start_proxy NAME: starts one proxy on core 0; sets PROXY_PID and PROXY_PORT.
start_proxy() {
    case $1 in
        chaosgate)
            start chaosgate 0 "$CHAOSGATE" proxy --threads 1 -f "$HERE/chaosgate.yaml" \
                --listen "127.0.0.1:$CHAOSGATE_PORT" --admin "127.0.0.1:$ADMIN_PORT"
            PROXY_PORT=$CHAOSGATE_PORT
            ;;
        nginx)
            start nginx 0 nginx -p "$WORK/nginx-proxy" -c nginx.conf
            PROXY_PORT=$NGINX_PORT
            ;;
        haproxy)
            start haproxy 0 haproxy -db -f "$WORK/haproxy.cfg"
            PROXY_PORT=$HAPROXY_PORT
            ;;
    esac
    PROXY_PID=$STARTED_PID
    wait_port "$PROXY_PORT"
}

# CPU seconds (user + system, all threads) a process has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

peak_rss_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# --- measurements (each writes one file into $WORK/results/) ---------------------------------

# A command prefix the run_* functions put before their generator (set only by with_cpu).
CPU_WRAP=()

# run_wrk OUT PORT [WRK ARGS...]: keep-alive load on CONNECTIONS connections from core 1 for
# DURATION (a later -d in the arguments wins).
run_wrk() {
    local out=$1 port=$2
    shift 2
    "${CPU_WRAP[@]}" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$@" \
        "http://127.0.0.1:$port/" >"$out"
}

warm_up() { run_wrk /dev/null "$1" -d"${WARMUP}s"; } # PORT

run_chaosgate_load() { # OUT URL ARGS...
    local out=$1 url=$2
    shift 2
    "${CPU_WRAP[@]}" taskset -c 1 "$CHAOSGATE" load "$url" --threads 1 --duration "${DURATION}s" \
        --connections "$CONNECTIONS" --format json "$@" >"$out"
}

run_oha() { # OUT URL ARGS...
    local out=$1 url=$2
    shift 2
    ((HAVE_OHA)) || return 0
    "${CPU_WRAP[@]}" taskset -c 1 oha --no-tui "${OHA_JSON[@]}" -z "${DURATION}s" -c "$CONNECTIONS" "$@" "$url" >"$out"
}

measure_target() { # REP TARGET
    local rep=$1 target=$2 dir="$WORK/results/$1/$2" port pid before after
    mkdir -p "$dir"
    if [[ $target == direct ]]; then
        port=$BACKEND_PORT
        pid=""
    else
        start_proxy "$target"
        port=$PROXY_PORT
        pid=$PROXY_PID
    fi
    log "rep $rep: $target"
    warm_up "$port"
    [[ -z $pid ]] || before=$(cpu_seconds "$pid")
    run_wrk "$dir/wrk.txt" "$port" --latency
    if [[ -n $pid ]]; then
        after=$(cpu_seconds "$pid")
        echo "$before $after" >"$dir/cpu.txt"
    fi
    run_chaosgate_load "$dir/open-chaosgate.json" "http://127.0.0.1:$port/" --rate "$LATENCY_RATE"
    run_oha "$dir/open-oha.json" "http://127.0.0.1:$port/" -q "$LATENCY_RATE" --latency-correction
    if [[ -n $pid ]]; then
        peak_rss_kb "$pid" >"$dir/rss.txt"
        stop "$pid"
    fi
}

# with_cpu FILE FUNCTION ARGS... : runs a run_* function with its generator wrapped so that FILE
# gets the CPU seconds the generator used (user + system), then the backend's CPU seconds before
# and after. When the backend's core is saturated, the closed-loop rps measures the backend under
# each generator's traffic; the generator's own CPU per request is what tells them apart.
with_cpu() {
    local file=$1 backend_before
    shift
    backend_before=$(cpu_seconds "$BACKEND_PID")
    CPU_WRAP=(python3 -c 'import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{usage.ru_utime + usage.ru_stime}\n")
sys.exit(code)' "$file")
    "$@"
    CPU_WRAP=()
    echo "$backend_before $(cpu_seconds "$BACKEND_PID")" >>"$file"
}

measure_loadgens() { # REP
    local rep=$1 dir="$WORK/results/$1/loadgen" url="http://127.0.0.1:$BACKEND_PORT/"
    mkdir -p "$dir"
    log "rep $rep: load generators"
    taskset -p -c 0 "$BACKEND_PID" >/dev/null
    with_cpu "$dir/cpu-wrk.txt" run_wrk "$dir/wrk.txt" "$BACKEND_PORT"
    with_cpu "$dir/cpu-chaosgate.txt" run_chaosgate_load "$dir/closed-chaosgate.json" "$url" \
        --concurrency "$CONNECTIONS"
    if ((HAVE_OHA)); then
        with_cpu "$dir/cpu-oha.txt" run_oha "$dir/closed-oha.json" "$url"
    fi
    run_chaosgate_load "$dir/open-chaosgate.json" "$url" --rate "$ACCURACY_RATE"
    run_oha "$dir/open-oha.json" "$url" -q "$ACCURACY_RATE" --latency-correction
    taskset -p -c 1 "$BACKEND_PID" >/dev/null
}

# System calls per request of one proxy under the wrk load: counts, which repeat where times do
# not (strace slows the proxy down, but not what it asks of the kernel per request). Once per
# run, after the repetitions.
measure_syscalls() { # TARGET
    local target=$1 dir="$WORK/syscalls/$1" tracer
    command -v strace >/dev/null || return 0
    mkdir -p "$dir"
    start_proxy "$target"
    log "system calls: $target"
    warm_up "$PROXY_PORT"
    strace -f -c -o "$dir/strace.txt" -p "$PROXY_PID" 2>/dev/null &
    tracer=$!
    sleep 0.5
    run_wrk "$dir/wrk.txt" "$PROXY_PORT" -d3s
    kill -INT "$tracer"
    wait "$tracer" || true
    stop "$PROXY_PID"
}

# --- main --------------------------------------------------------------------------------------

main() {
    for port in $BACKEND_PORT $CHAOSGATE_PORT $NGINX_PORT $HAPROXY_PORT $ADMIN_PORT; do
        port_free "$port" || { log "127.0.0.1:$port is in use"; exit 1; }
    done
    if [[ $(nproc --all) -lt 2 ]]; then
        log "needs 2 cores (proxy on 0, load and backend on 1)"
        exit 1
    fi
    [[ $SKIP_INSTALL == 1 ]] || install_tools
    detect_oha
    ((HAVE_OHA)) && log "oha: $(oha --version)" || log "oha: absent (its columns stay empty)"
    if [[ $SKIP_BUILD != 1 ]]; then
        log "building chaosgate (release)"
        (cd "$ROOT" && cargo build --release --quiet --bin chaosgate)
    fi
    # Other work on the machine skews every number: say so.
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
        log "warning: load average $load before the run: other processes compete for the cores"
    fi
    write_configs
    start_backend
    local rep target
    for rep in $(seq "$REPS"); do
        for target in direct chaosgate nginx haproxy; do
            measure_target "$rep" "$target"
        done
        measure_loadgens "$rep"
    done
    for target in chaosgate nginx haproxy; do
        measure_syscalls "$target"
    done
    mkdir -p "$ROOT/reports/bench"
    local stamp out
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    out="$ROOT/reports/bench/peers-$stamp.json"
    python3 "$HERE/summarize.py" "$WORK/results" "$out" --syscalls "$WORK/syscalls" \
        --duration "$DURATION" --connections "$CONNECTIONS" \
        --latency-rate "$LATENCY_RATE" --accuracy-rate "$ACCURACY_RATE" \
        --load-before "$load" --load-after "$(cut -d' ' -f1 /proc/loadavg)" \
        --versions "chaosgate=${BENCH_CHAOSGATE:-$(git -C "$ROOT" describe --always --dirty)}" \
        "nginx=$(nginx -v 2>&1 | sed 's/.*\///')" \
        "haproxy=$(haproxy -v | head -1 | awk '{ print $3 }')" \
        "wrk=$(wrk -v 2>&1 | head -1 | awk '{ print $2 }')" \
        "oha=$( ((HAVE_OHA)) && oha --version | awk '{ print $2 }' || echo absent)"
    cp "$out" "$ROOT/reports/bench/latest.json"
    # The raw tool outputs, to re-read or re-summarize later.
    cp -r "$WORK/results" "$ROOT/reports/bench/peers-$stamp-raw"
    [[ ! -d $WORK/syscalls ]] || cp -r "$WORK/syscalls" "$ROOT/reports/bench/peers-$stamp-syscalls"
    log "written: $out"
}

main "$@"
