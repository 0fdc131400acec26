#!/usr/bin/env bash
# What idle relayed connections cost one peer-relay: RSS, file descriptors, CPU.
#
#   cargo build --release -p peer-relay --bins --examples
#   bench/relay_scale.sh TOTAL PROCESSES [--raw]
#
# Starts target/release/peer-relay on 127.0.0.1:$PORT (no per-IP limits), measures it idle,
# starts PROCESSES relay_load processes holding TOTAL/PROCESSES connections each (iroh endpoints,
# or bare relay-protocol clients with --raw), waits until the relay counts them all, and
# measures again: RSS and descriptors, then CPU over $WINDOW idle seconds. Linux only (/proc).
# Environment: PORT (3390), WINDOW (60), NOFILE (the relay's soft and hard descriptor limit,
# default: unchanged, i.e. the relay raises its soft limit to this shell's hard limit).
set -euo pipefail

total=${1:?usage: relay_scale.sh TOTAL PROCESSES [--raw]}
procs=${2:?usage: relay_scale.sh TOTAL PROCESSES [--raw]}
mode=${3:-}
port=${PORT:-3390}
window=${WINDOW:-60}
bin=target/release
out=$(mktemp -d)

relay_cmd=("$bin/peer-relay" --http-bind "127.0.0.1:$port" --conn-rate 0 --max-conns 0
  --max-conns-per-ip 0 --allow-root)
if [[ -n "${NOFILE:-}" ]]; then
  relay_cmd=(prlimit "--nofile=$NOFILE:$NOFILE" -- "${relay_cmd[@]}")
fi
"${relay_cmd[@]}" >"$out/relay.out" 2>"$out/relay.log" &
relay=$!
loads=()
cleanup() {
  kill "${loads[@]}" 2>/dev/null || true
  kill "$relay" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

metric() {
  curl -fsS "http://127.0.0.1:$port/metrics" | awk -v name="$1" '$1 == name { print $2 }'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$relay/status"; }
fds() { ls "/proc/$relay/fd" | wc -l; }
# utime + stime of the relay, in clock ticks (fields 14 and 15 of /proc/PID/stat).
ticks() { sed 's/.*) //' "/proc/$relay/stat" | awk '{ print $12 + $13 }'; }

for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
sleep 3
rss0=$(rss_kib)
fds0=$(fds)
clients0=$(metric peer_relay_relay_clients)

per=$((total / procs))
started=$(date +%s.%N)
for i in $(seq "$procs"); do
  # shellcheck disable=SC2086 # $mode is empty or one flag
  "$bin/examples/relay_load" "http://127.0.0.1:$port/" "$per" $mode --hold 100000 \
    >"$out/load-$i.out" 2>&1 &
  loads+=($!)
done
want=$((clients0 + per * procs))
while :; do
  now=$(metric peer_relay_relay_clients)
  [[ "$now" -ge "$want" ]] && break
  if ! kill -0 "${loads[@]}" 2>/dev/null; then
    echo "a load process ended early:" >&2
    cat "$out"/load-*.out >&2
    exit 1
  fi
  sleep 1
done
connected=$(echo "$(date +%s.%N) - $started" | bc)
sleep 5
rss1=$(rss_kib)
fds1=$(fds)
t0=$(ticks)
sleep "$window"
t1=$(ticks)
hz=$(getconf CLK_TCK)
held=$(($(metric peer_relay_relay_clients) - clients0))

echo "relay: ${relay_cmd[*]}"
echo "load: $procs x relay_load URL $per $mode"
printf 'connections held: %d (all connected in %.0f s)\n' "$held" "$connected"
printf 'RSS: %.1f MiB idle -> %.1f MiB: %.1f KiB per connection\n' \
  "$(echo "$rss0 / 1024" | bc -l)" "$(echo "$rss1 / 1024" | bc -l)" \
  "$(echo "($rss1 - $rss0) / $held" | bc -l)"
printf 'descriptors: %d idle -> %d: %.2f per connection (limit %s)\n' \
  "$fds0" "$fds1" "$(echo "($fds1 - $fds0) / $held" | bc -l)" "$(metric peer_relay_fd_limit)"
printf 'CPU while idle: %.1f%% of one core (%d ticks in %d s)\n' \
  "$(echo "($t1 - $t0) * 100 / $hz / $window" | bc -l)" "$((t1 - t0))" "$window"
grep -c "accept failed" "$out/relay.log" | xargs printf '"accept failed" log lines: %s\n' || true
grep -i "file descriptor limit" "$out/relay.log" | head -3
rm -rf "$out"
