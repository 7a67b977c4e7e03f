#!/usr/bin/env bash
# SIP IM benchmark, Switchboard side by side with Kamailio (issue 6). Manual, not CI:
#
#   core/benches/sip/run.sh
#
# knobs (environment):
#   BENCH_RATES  "250 500 1000 2000 4000 6000 8000 10000"  MESSAGE/s steps of the sweep
#   BENCH_SECS   10                                  seconds per step (count = rate × secs)
#   BENCH_IDLE   5000                                idle registered TCP and TLS connections
#   BENCH_PER_USER 50                                connections (contacts) per user in that phase
#   KAM_CHILDREN 2                                   Kamailio UDP/TCP worker processes
#   KAM_SHM      2048                                Kamailio shared memory (MiB; its transactions live there, 512 ran out at 8,000/s)
#   BENCH_ONLY   ""                                  "load" or "idle" to run one phase
#   BENCH_SERVERS "sb kam"                           servers of the load phase (e.g. "sb" to compare
#                                                    two Switchboard builds by their µs/msg)
#   BENCH_NO_BUILD ""                                1: use the binaries already built
#   BENCH_BIN, BENCH_WASM                            those binaries (default: the target directory's)
#   SWITCHBOARD_WASM_PERFMAP=1                       (passed to the server) plugin functions by name
#                                                    in `perf record -g -p PID` profiles
#
# What it does, all on 127.0.0.1 (see docs/benchmarks.md for figures and fairness notes):
# 1. builds the release `switchboard` binary and the SIP plugin as WebAssembly
#    (switchboard_sip.wasm, installed beside plugins/sip/plugin.toml as sip.wasm);
# 2. starts Switchboard (`serve`, [frontends.sip] = the WASM plugin, SQLite in a temp dir,
#    sip.rate_limit_per_sec = 0) and Kamailio (kamailio.cfg: usrloc in memory, registrar,
#    t_relay); both require Digest for REGISTER and accept MESSAGE without credentials only
#    from a registered sender;
# 3. for each server: bob registers (register.xml, Digest) from the receiver's port and the
#    receiver (receiver.xml) answers every MESSAGE with 200; alice registers from the sender's
#    port; then for each rate the sender (sender.xml, 512-byte body) runs rate × secs
#    MESSAGEs at that rate. Steps alternate between the servers so drift on this shared
#    machine hits both. A server's sweep stops at its first step with a failure. Per step:
#    MESSAGE/s achieved (successful transactions / wall time), failures (sipp failed calls +
#    messages the receiver never got), UDP retransmissions, p50/p99 response time (sipp's RTD,
#    a millisecond clock that ticks in ~4 ms steps here), server CPU (utime+stime from
#    /proc, all processes) as % of one core and µs per MESSAGE;
# 4. memory per idle registered connection: BENCH_IDLE TCP, then TLS, connections from
#    idle_conns.py, each REGISTERed (Digest) and left idle: Switchboard's RSS and PSS delta / N,
#    Kamailio's shared-memory use (kamcmd core.shmmem real_used) and PSS (all processes) delta / N.
#
# Bounded: every sipp run has -m and -timeout; every wait loop has a count.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
RATES=${BENCH_RATES:-"250 500 1000 2000 4000 6000 8000 10000"}
SECS=${BENCH_SECS:-10}
IDLE=${BENCH_IDLE:-5000}
PER_USER=${BENCH_PER_USER:-50}
KAM_CHILDREN=${KAM_CHILDREN:-2}
KAM_SHM=${KAM_SHM:-2048}
ONLY=${BENCH_ONLY:-}
SERVERS=${BENCH_SERVERS:-"sb kam"}
PASSWORD=bench-secret

for tool in sipp kamailio kamcmd python3 curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed (apt-get install sip-tester kamailio kamailio-tls-modules python3 curl)"
        exit 0
    fi
done

target=${CARGO_TARGET_DIR:-$repo/target}
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    echo "== building (release binary, WebAssembly plugin)"
    (cd "$repo" && cargo build --quiet --release --bin switchboard -p switchboard-core)
    (cd "$repo" && cargo build --quiet --release -p switchboard-sip --lib --target wasm32-wasip2)
fi
bin=${BENCH_BIN:-$target/release/switchboard}
wasm=${BENCH_WASM:-$target/wasm32-wasip2/release/switchboard_sip.wasm}

work=$(mktemp -d /tmp/sip-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
echo "== work directory $work (sipp logs, stats, server logs)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SB_PORT=$(free_port); SB_TLS=$(free_port); SB_HTTPS=$(free_port); SB_ADMIN=$(free_port)
KAM_PORT=$(free_port); KAM_TLS=$(free_port)

# ---------------------------------------------------------------- Switchboard
mkdir -p "$work/sb/sip"
cp "$wasm" "$work/sb/sip/sip.wasm"
cp "$repo/plugins/sip/plugin.toml" "$work/sb/sip/plugin.toml"
cat > "$work/sb/switchboard.toml" <<EOF
[server]
data_dir = "data"
demo_user = false
[log]
level = "warn"
[http]
https = ["127.0.0.1:$SB_HTTPS"]
[admin]
listen = "127.0.0.1:$SB_ADMIN"
[sip]
udp = ["127.0.0.1:$SB_PORT"]
tcp = ["127.0.0.1:$SB_PORT"]
tls = ["127.0.0.1:$SB_TLS"]
rate_limit_per_sec = 0
idle_timeout_secs = 3600
max_connections = 20000
[plugins.sip]
manifest = "$work/sb/sip/plugin.toml"
settings = { domains = "example.com", max_contacts = $PER_USER }
[frontends.sip]
plugin = "sip"
EOF
sb() { (cd "$work/sb" && "$bin" --config switchboard.toml "$@"); }
sb domain add example.com >/dev/null
nusers=$(( (IDLE + PER_USER - 1) / PER_USER ))
echo "== creating alice, bob and $((2 * nusers)) users for the idle phase (TCP and TLS apart)"
for u in alice bob $(seq -f 'user%g' 0 $((2 * nusers - 1))); do
    echo "$PASSWORD" | sb user add "$u@example.com" --password-stdin >/dev/null
done
start_sb() {
    (cd "$work/sb" && exec "$bin" --config switchboard.toml serve >>"$work/sb/server.log" 2>&1) &
    sb_proc=$!
    pids+=("$sb_proc")
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$SB_ADMIN/readyz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fs "http://127.0.0.1:$SB_ADMIN/readyz" >/dev/null || { echo "switchboard did not become ready"; cat "$work/sb/server.log"; exit 1; }
}
stop_sb() { kill "$sb_proc" 2>/dev/null || true; wait "$sb_proc" 2>/dev/null || true; }

# ---------------------------------------------------------------- Kamailio
mkdir -p "$work/kam"
cat > "$work/kam/tls.cfg" <<EOF
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = $work/sb/data/tls/cert.pem
private_key = $work/sb/data/tls/key.pem
EOF
start_kam() {
    # Kamailio serves Switchboard's self-signed certificate, made when Switchboard first
    # starts: start it once if this run has not (BENCH_SERVERS=kam).
    [ -f "$work/sb/data/tls/cert.pem" ] || { start_sb; stop_sb; }
    # -x/-X tlsf: the TLSF allocator for shared and private memory. Debian's build defaults to
    # q_malloc with debugging checks, which aborted a child at TLS start-up here once
    # ("qm_debug_check_frag ... beginning overwritten", called from tls_init.c) and adds
    # per-fragment overhead to the memory figures.
    kamailio -f "$here/kamailio.cfg" -DD -E -m "$KAM_SHM" -M 8 -x tlsf -X tlsf \
        -A "KAM_PORT=$KAM_PORT" -A "KAM_TLS_PORT=$KAM_TLS" -A "KAM_CHILDREN=$KAM_CHILDREN" \
        -A WITH_TLS -A "KAM_TLS_CFG=\"$work/kam/tls.cfg\"" >>"$work/kam/kamailio.log" 2>&1 &
    kam_pid=$!
    pids+=("$kam_pid")
    for _ in $(seq 1 100); do
        kamcmd -s unix:/tmp/switchboard-bench-kamailio.ctl core.uptime >/dev/null 2>&1 && break
        sleep 0.2
    done
    kamcmd -s unix:/tmp/switchboard-bench-kamailio.ctl core.uptime >/dev/null || { echo "kamailio did not start"; tail -20 "$work/kam/kamailio.log"; exit 1; }
}
stop_kam() { kill "$kam_pid" 2>/dev/null || true; wait "$kam_pid" 2>/dev/null || true; sleep 1; }

# Process set of a server: switchboard is one process; kamailio is its main process and children.
procs() {
    if [ "$1" = sb ]; then echo "$sb_proc"; else echo "$kam_pid $(pgrep -P "$kam_pid" | tr '\n' ' ')"; fi
}
# CPU ticks (utime + stime) of a server's processes.
cpu_ticks() {
    local t=0 p
    for p in $(procs "$1"); do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
    done
    echo "$t"
}
pss_kib() {
    local t=0 p
    for p in $(procs "$1"); do
        [ -r "/proc/$p/smaps_rollup" ] || continue
        t=$((t + $(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup")))
    done
    echo "$t"
}
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
kam_shm() { kamcmd -s unix:/tmp/switchboard-bench-kamailio.ctl core.shmmem | awk '/real_used/{print $2}'; }
hz=$(getconf CLK_TCK)

# ---------------------------------------------------------------- load phase
declare -A port recv_port send_port stopped best
port[sb]=$SB_PORT; port[kam]=$KAM_PORT
recv_port[sb]=$(free_port); send_port[sb]=$(free_port)
recv_port[kam]=$(free_port); send_port[kam]=$(free_port)
name() { if [ "$1" = sb ]; then echo "Switchboard (WASM plugin)"; else echo "Kamailio $(kamailio -v | awk '/^version/{print $3}')"; fi; }

results="$work/results.tsv"
printf 'server\trate\tsent\tok\tfailed\tlost\tretrans\tmsg_per_s\tp50_ms\tp99_ms\tcpu_pct\tcpu_us_per_msg\n' >"$results"

if [ "$ONLY" != idle ]; then
    case " $SERVERS " in *" sb "*) start_sb; echo "== switchboard pid $sb_proc (sip $SB_PORT)" ;; esac
    case " $SERVERS " in *" kam "*) start_kam; echo "== kamailio pid $kam_pid (sip $KAM_PORT, $KAM_CHILDREN children)" ;; esac
    for s in $SERVERS; do
        d="$work/$s"
        cd "$d"
        sipp -sf "$here/register.xml" -s bob -au bob -ap "$PASSWORD" -i 127.0.0.1 -p "${recv_port[$s]}" \
            -m 1 -timeout 10 -nostdin "127.0.0.1:${port[$s]}" >/dev/null 2>&1 \
            || { echo "$s: bob's REGISTER failed"; exit 1; }
        sipp -sf "$here/receiver.xml" -i 127.0.0.1 -p "${recv_port[$s]}" -nostdin -timeout 3600 \
            -trace_stat -stf "$d/receiver.csv" -fd 1 "127.0.0.1:${port[$s]}" >/dev/null 2>&1 &
        pids+=("$!")
        sipp -sf "$here/register.xml" -s alice -au alice -ap "$PASSWORD" -i 127.0.0.1 -p "${send_port[$s]}" \
            -m 1 -timeout 10 -nostdin "127.0.0.1:${port[$s]}" >/dev/null 2>&1 \
            || { echo "$s: alice's REGISTER failed"; exit 1; }
        stopped[$s]=0; best[$s]=""
    done
    sleep 2
    # Deliveries so far: the receiver's SuccessfulCall(C) (column 16 of its statistics).
    delivered() { tail -1 "$work/$1/receiver.csv" | awk -F';' '{print $16 + 0}'; }

    echo "== load: MESSAGE sweep, $SECS s per step"
    printf '%-28s %6s %7s %7s %6s %5s %7s %9s %6s %6s %6s %8s\n' server rate sent ok failed lost retrans msg/s p50ms p99ms cpu% us/msg
    for rate in $RATES; do
        for s in kam sb; do
            [ "${stopped[$s]:-1}" = 0 ] || continue
            d="$work/$s/step-$rate"
            mkdir -p "$d"
            cd "$d"
            count=$((rate * SECS))
            before=$(delivered "$s")
            c0=$(cpu_ticks "$s")
            t0=$(date +%s.%N)
            sipp -sf "$here/sender.xml" -i 127.0.0.1 -p "${send_port[$s]}" -r "$rate" -rp 1000 \
                -m "$count" -l $((rate * 4)) -timeout $((SECS * 3 + 20)) -timer_resol 1 -nostdin \
                -trace_stat -stf "$d/sender.csv" -trace_rtt -rtt_freq 100 \
                -trace_err "127.0.0.1:${port[$s]}" >"$d/sipp.out" 2>&1 || true
            t1=$(date +%s.%N)
            c1=$(cpu_ticks "$s")
            alive=1
            for p in $(procs "$s" | awk '{print $1}'); do kill -0 "$p" 2>/dev/null || alive=0; done
            sleep 2
            after=$(delivered "$s")
            read -r ok failed retrans < <(tail -1 "$d/sender.csv" | awk -F';' '{print $16 + 0, $18 + 0, $58 + 0}')
            got=$((after - before))
            lost=$((ok > got ? ok - got : 0))
            rtt=$(ls "$d"/sender_*_rtt.csv 2>/dev/null | head -1)
            read -r p50 p99 < <(tail -n +2 "$rtt" 2>/dev/null | cut -d';' -f2 | sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "- -"; exit} i50=int(NR*0.50); if (i50<1) i50=1; i99=int(NR*0.99); if (i99<1) i99=1; print v[i50], v[i99]}')
            read -r mps cpu usper < <(awk -v ok="$ok" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$hz" \
                'BEGIN { w = t1 - t0; c = (c1 - c0) / hz; printf "%.0f %.0f %.1f\n", ok / w, 100 * c / w, (ok > 0 ? 1e6 * c / ok : 0) }')
            if [ "$alive" = 0 ]; then
                # Its CPU counters are gone with it.
                cpu=-; usper=-
                echo "  $(name "$s") exited during this step (see its log under $work/$s)"
            fi
            printf '%-28s %6s %7s %7s %6s %5s %7s %9s %6s %6s %6s %8s\n' "$(name "$s")" "$rate" "$count" "$ok" "$failed" "$lost" "$retrans" "$mps" "$p50" "$p99" "$cpu" "$usper"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$rate" "$count" "$ok" "$failed" "$lost" "$retrans" "$mps" "$p50" "$p99" "$cpu" "$usper" >>"$results"
            if [ "$alive" = 1 ] && [ "$failed" = 0 ] && [ "$ok" = "$count" ] && [ "$lost" = 0 ]; then
                # The best rate achieved without a failure: a server that falls behind (UDP
                # retransmissions, seconds of latency) still "passes" a higher step at a lower
                # achieved rate, and that lower figure is not its throughput.
                if [ "$mps" -gt "$(echo "${best[$s]:-0}" | awk '{print $1+0}')" ]; then
                    best[$s]="$mps msg/s (step $rate/s, p99 $p99 ms, CPU $cpu % of a core, $usper µs/msg)"
                fi
            else
                stopped[$s]=1
            fi
        done
    done
    echo
    echo "best rate achieved in a step with zero failures:"
    echo "  $(name kam): ${best[kam]:-none}"
    echo "  $(name sb): ${best[sb]:-none}"
    kb=$(echo "${best[kam]:-0}" | awk '{print $1+0}'); sbb=$(echo "${best[sb]:-0}" | awk '{print $1+0}')
    awk -v a="$sbb" -v b="$kb" 'BEGIN { if (b > 0) printf "  ratio Switchboard / Kamailio: %.2fx\n", a / b }'
    case " $SERVERS " in *" sb "*) stop_sb ;; esac
    case " $SERVERS " in *" kam "*) stop_kam ;; esac
fi

# ---------------------------------------------------------------- idle connections
if [ "$ONLY" != load ]; then
    echo
    echo "== idle registered connections: $IDLE each over TCP and TLS ($PER_USER contacts per user)"
    idle_phase() { # server transport port first-user
        local s=$1 t=$2 p=$3 first=$4 fifo="$work/$1-$2.fifo" out="$work/$1-$2.out" pss0 pss1 rss0 rss1 shm0 shm1 line
        if [ "$s" = sb ]; then start_sb; else start_kam; fi
        sleep 2
        pss0=$(pss_kib "$s")
        if [ "$s" = sb ]; then rss0=$(rss_kib "$sb_proc"); else shm0=$(kam_shm); fi
        rm -f "$fifo"; mkfifo "$fifo"
        python3 "$here/idle_conns.py" 127.0.0.1 "$p" "$t" "$IDLE" "$PASSWORD" "$PER_USER" "$first" <"$fifo" >"$out" 2>"$out.err" &
        local cpid=$!
        exec 9>"$fifo"
        for _ in $(seq 1 600); do [ -s "$out" ] && break; sleep 0.5; done
        sleep 3
        line=$(cat "$out")
        if ! kill -0 "$(procs "$s" | awk '{print $1}')" 2>/dev/null; then
            echo "  $(name "$s") $t: the server exited during the idle phase (log under $work/$s); no figure"
            exec 9>&-
            wait "$cpid" 2>/dev/null || true
            return 0
        fi
        pss1=$(pss_kib "$s")
        if [ "$s" = sb ]; then rss1=$(rss_kib "$sb_proc"); else shm1=$(kam_shm); fi
        local n; n=$(echo "$line" | awk '{print $2+0}')
        [ "$n" -gt 0 ] || n=1
        if [ "$s" = sb ]; then
            printf '  %-28s %-3s %s; RSS %s → %s KiB, %.1f KiB/conn; PSS %.1f KiB/conn\n' "$(name "$s")" "$t" "$line" "$rss0" "$rss1" \
                "$(awk -v a="$rss0" -v b="$rss1" -v n="$n" 'BEGIN{print (b-a)/n}')" "$(awk -v a="$pss0" -v b="$pss1" -v n="$n" 'BEGIN{print (b-a)/n}')"
        else
            printf '  %-28s %-3s %s; shm used %s → %s B, %.1f KiB/conn; PSS (all processes) %s → %s KiB, %.1f KiB/conn\n' "$(name "$s")" "$t" "$line" "$shm0" "$shm1" \
                "$(awk -v a="$shm0" -v b="$shm1" -v n="$n" 'BEGIN{print (b-a)/n/1024}')" "$pss0" "$pss1" "$(awk -v a="$pss0" -v b="$pss1" -v n="$n" 'BEGIN{print (b-a)/n}')"
        fi
        exec 9>&-
        wait "$cpid" 2>/dev/null || true
        rm -f "$fifo"
        if [ "$s" = sb ]; then stop_sb; else stop_kam; fi
        if [ -s "$out.err" ]; then echo "    client errors (first 3):"; head -3 "$out.err" | sed 's/^/      /'; fi
    }
    idle_phase sb tcp "$SB_PORT" 0
    idle_phase sb tls "$SB_TLS" "$nusers"
    idle_phase kam tcp "$KAM_PORT" 0
    idle_phase kam tls "$KAM_TLS" "$nusers"
fi
echo
echo "results: $results; logs under $work"
