#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind (reproducible on a shared machine,
# unlike wall-clock time). Needs valgrind, nginx and wrk (benches/peers.sh installs the latter
# two) and a release build.
#
#   benches/callgrind.sh proxy   # chaosgate proxy --threads 1 (benches/peers/chaosgate.yaml)
#                                # under wrk -t1 -c16 for 4 s, after a 2 s warm-up
#   benches/callgrind.sh nginx   # the same load through nginx as benches/peers.sh runs it
#                                # (one worker, proxy_pass with upstream keep-alive): the
#                                # peer's count, to read the proxy's against
#   benches/callgrind.sh load    # chaosgate load --threads 1 --concurrency 16 for 6 s
#                                # (start-up included)
#
# The backend is nginx `return 200` on 127.0.0.1:18080; the callgrind output stays in a temp
# folder whose path is printed (open it with callgrind_annotate). CALLGRIND_ARGS adds valgrind
# options (`--dump-instr=yes` for costs per instruction and call site).
set -euo pipefail

MODE=${1:?usage: benches/callgrind.sh proxy|nginx|load}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHAOSGATE=${BENCH_CHAOSGATE:-$ROOT/target/release/chaosgate}
WORK=$(mktemp -d /tmp/chaosgate-callgrind.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_port() {
    local i
    for i in $(seq 300); do
        (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# Writes DIR/nginx.conf: one foreground worker, no access log, keep-alive without limit, and
# the http block's own directives given as the second argument.
nginx_conf() {
    mkdir -p "$1/logs"
    cat >"$1/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
$2
}
CONF
}

nginx_conf "$WORK/nginx" '
    server {
        listen 127.0.0.1:18080;
        location / { default_type text/plain; return 200 "hello, bench\n"; }
    }'
nginx -p "$WORK/nginx" -c nginx.conf &
PIDS+=($!)
wait_port 18080

total_ir() {
    callgrind_annotate --auto=no "$1" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

case $MODE in
proxy | nginx)
    if [[ $MODE == proxy ]]; then
        valgrind --tool=callgrind ${CALLGRIND_ARGS:-} --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out.%p" \
            "$CHAOSGATE" proxy --threads 1 -f "$ROOT/benches/peers/chaosgate.yaml" \
            --listen 127.0.0.1:18081 >"$WORK/proxy.log" 2>&1 &
    else
        nginx_conf "$WORK/peer" '
    upstream origin {
        server 127.0.0.1:18080;
        keepalive 64;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:18081;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }'
        valgrind --tool=callgrind ${CALLGRIND_ARGS:-} --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out.%p" \
            nginx -p "$WORK/peer" -c nginx.conf >"$WORK/proxy.log" 2>&1 &
    fi
    PROXY=$!
    PIDS+=("$PROXY")
    wait_port 18081
    wrk -t1 -c16 -d2s http://127.0.0.1:18081/ >/dev/null
    callgrind_control -i on "$PROXY" >/dev/null
    requests=$(wrk -t1 -c16 -d4s http://127.0.0.1:18081/ | awk '/requests in/ {print $1}')
    callgrind_control -d "$PROXY" >/dev/null
    callgrind_control -i off "$PROXY" >/dev/null
    profile=$(ls -S "$WORK"/callgrind.out.* | head -1)
    ;;
load)
    valgrind --tool=callgrind ${CALLGRIND_ARGS:-} --callgrind-out-file="$WORK/callgrind.out.load" \
        "$CHAOSGATE" load http://127.0.0.1:18080/ --threads 1 --concurrency 16 --duration 6s \
        --format json >"$WORK/load.json" 2>/dev/null
    requests=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['requests'])" \
        "$WORK/load.json")
    profile=$WORK/callgrind.out.load
    ;;
*)
    echo "usage: benches/callgrind.sh proxy|nginx|load" >&2
    exit 2
    ;;
esac
ir=$(total_ir "$profile")
echo "$MODE: $requests requests, $ir instructions, $((ir / requests)) per request"
echo "profile: $profile"
