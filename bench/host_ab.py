#!/usr/bin/env python3
"""`peer host` against variants of itself (environment variables for the host process), in one
run, with ssh beside them: e.g. what the host's screen model costs (`PEER_BENCH_NO_SCREEN_MODEL=1`
runs sessions without one; benchmarks only) or what one runtime worker instead of two changes
(`TOKIO_WORKER_THREADS=1`).

Each round starts a fresh host of each variant, in an order that rotates between rounds (so
none is always the first or the last on a warm machine), pairs a client, measures keystroke
echo through `peer attach --new` (direct, as bench/pty_bench.py does; ssh -tt in the same
round), the same while another session of that host floods (`yes`, its client draining it), and
sends N bytes through `peer attach --new --replay 0` to a pipe, for two streams:
  - zeros: `head -c N /dev/zero` (NUL bytes the model skips: the least it can cost);
  - text: `seq 1 100000000 | head -c N` (short lines: every line scrolls the model's screen);
and reads, besides the client's MB/s, the CPU time the host spent (all its threads, from
`/proc/<pid>/task/*/schedstat`), and of that the screen model's thread (`pty-N-screen`).
CPU time per MB does not depend on what else the machine does as much as MB/s does.

    bench/host_ab.py --peer target/release/peer --variant "model off:PEER_BENCH_NO_SCREEN_MODEL=1" \
        [--variant "one worker:TOKIO_WORKER_THREADS=1"] [--rounds 6] [--bytes 100000000] [--echo 1000]

`--build NAME:PATH` adds another build of `peer` (its host and its client) as a variant: a
change measured against the build before it in the same rounds.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pty_bench as pb  # noqa: E402
from keeper_ab import start_host  # noqa: E402



def variant(arg):
    """`NAME:K=V,K=V` → (NAME, {K: V})."""
    name, _, kvs = arg.partition(":")
    return name, dict(kv.split("=", 1) for kv in kvs.split(",") if kv)


def build(arg):
    """`NAME:PATH` → (NAME, absolute PATH)."""
    name, _, path = arg.partition(":")
    return name, os.path.abspath(path)


def cpu_ns(pid):
    """CPU time of each thread of `pid` so far: {(tid, name): ns}."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[(tid, name)] = int(f.read().split()[0])
        except OSError:
            pass  # the thread ended
    return out


def spent(before, after):
    """(all threads, screen model threads) CPU seconds between two `cpu_ns` readings."""
    total = model = 0
    for key, ns in after.items():
        d = ns - before.get(key, 0)
        total += d
        if key[1].endswith("-screen"):
            model += d
    return total / 1e9, model / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--bytes", type=int, default=100_000_000)
    ap.add_argument("--echo", type=int, default=1000, help="keystrokes per variant and round (0: none)")
    ap.add_argument("--variant", type=variant, action="append", default=[],
                    help="NAME:K=V,K=V (host environment); the default host is always measured")
    ap.add_argument("--build", type=build, action="append", default=[],
                    help="NAME:PATH (another peer binary, for host and client)")
    a = ap.parse_args()
    kinds = dict([("default", {})] + a.variant + [(name, {}) for name, _ in a.build])
    peer = os.path.abspath(a.peer)
    a.builds = dict(a.build)
    streams = {
        "zeros": f"head -c {a.bytes} /dev/zero",
        "text": f"seq 1 100000000 | head -c {a.bytes}",
    }
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error", XDG_STATE_HOME="")
    res = {(k, s): {"mbs": [], "cpu": [], "model": []} for k in kinds for s in streams}
    echoes = {k: {"p50": [], "p99": [], "flood_p50": [], "flood_p99": []} for k in ["ssh -tt", *kinds]}
    raw = "stty raw -echo; printf READY; cat"
    tmp = tempfile.mkdtemp(prefix="peer-host-ab-ssh-")
    sshd, ssh = pb.start_sshd(tmp)
    try:
        for rnd in range(a.rounds):
            if a.echo:
                measure_echo(echoes["ssh -tt"], lambda r: ssh + [r], a.echo, env, raw)
            items = list(kinds.items())
            shift = rnd % len(items)
            for kind, extra in items[shift:] + items[:shift]:
                one_round(a, peer, env, kind, extra, streams, res, echoes, raw, rnd)
    finally:
        sshd.terminate()
        sshd.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    report(a, kinds, streams, res, echoes)


def measure_echo(into, mk, n, env, raw):
    """Echo through `mk(raw)`, alone and while `mk("yes")` floods; appends to `into`."""
    e = pb.echo(mk(raw), n, env)
    flood, drain = pb.start_flood(mk("yes"), env)
    try:
        f = pb.echo(mk(raw), n, env)
    finally:
        flood.kill()
        flood.wait()
        drain.join(timeout=10)
    for k, v in (("p50", e[0]), ("p99", e[2]), ("flood_p50", f[0]), ("flood_p99", f[2])):
        into[k].append(v)
    return e[0], e[2], f[0], f[2]


def one_round(a, peer, env, kind, extra, streams, res, echoes, raw, rnd):
    """A fresh host of one variant: echo, then each stream."""
    mb = a.bytes / 1e6
    peer = a.builds.get(kind, peer)
    tmp = tempfile.mkdtemp(prefix="peer-host-ab-")
    host, url = start_host(peer, dict(env, **extra), os.path.join(tmp, "host"), [])
    try:
        cenv = dict(env, PEER_HOME=os.path.join(tmp, "client"))
        subprocess.run([peer, "pair", url, "--name", "bench"], env=cenv, check=True,
                       stdout=subprocess.DEVNULL)
        if a.echo:
            e = measure_echo(echoes[kind], lambda r: [peer, "attach", "--new", "--", "sh", "-c", r],
                             a.echo, cenv, raw)
            print(f"round {rnd + 1} {kind}: echo p50 {e[0]:.0f} µs p99 {e[1]:.0f} µs; "
                  f"while flooding p50 {e[2]:.0f} µs p99 {e[3]:.0f} µs", file=sys.stderr)
        for stream, cmd in streams.items():
            before = cpu_ns(host.pid)
            mbs, got = pb.throughput([peer, "attach", "--new", "--replay", "0", "--", "sh", "-c", cmd],
                                     cenv, os.path.join(tmp, "rss"))
            cpu, model = spent(before, cpu_ns(host.pid))
            if got < a.bytes:
                raise RuntimeError(f"{kind}, {stream}: {got} of {a.bytes} bytes arrived")
            r = res[(kind, stream)]
            r["mbs"].append(mbs)
            r["cpu"].append(cpu / mb * 1000)
            r["model"].append(model / mb * 1000)
            print(f"round {rnd + 1} {kind} {stream}: {mbs:.1f} MB/s, host CPU {cpu / mb * 1000:.2f} ms/MB "
                  f"(model {model / mb * 1000:.2f})", file=sys.stderr)
    finally:
        host.terminate()
        host.wait(timeout=15)
        # Removing the state directory makes any keeper left hang up and go.
        shutil.rmtree(tmp, ignore_errors=True)


def report(a, kinds, streams, res, echoes):
    med = statistics.median
    mb = a.bytes / 1e6
    if a.echo:
        base = med(echoes["ssh -tt"]["p50"])
        fbase = med(echoes["ssh -tt"]["flood_p99"])
        print("| host | echo p50 (µs, median of rounds) | p99 | p50 vs ssh | another session flooding: p50 | p99 | p99 vs ssh's |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kind, e in echoes.items():
            print(f"| {kind} | {med(e['p50']):.0f} | {med(e['p99']):.0f} | {med(e['p50']) / base:.2f}× | "
                  f"{med(e['flood_p50']):.0f} | {med(e['flood_p99']):.0f} | {med(e['flood_p99']) / fbase:.2f}× |")
        print()
    print(f"| stream ({mb:.0f} MB) | host | MB/s (median, range) | host CPU ms/MB (median) | of which the model's thread |")
    print("| --- | --- | ---: | ---: | ---: |")
    for stream in streams:
        for kind in kinds:
            r = res[(kind, stream)]
            print(f"| {stream} | {kind} | {med(r['mbs']):.1f} ({min(r['mbs']):.1f}–{max(r['mbs']):.1f}) | "
                  f"{med(r['cpu']):.2f} | {med(r['model']):.2f} |")
        base = res[("default", stream)]
        for kind in list(kinds)[1:]:
            r = res[(kind, stream)]
            print(f"| {stream} | default / {kind} | {med(base['mbs']) / med(r['mbs']):.2f}× | "
                  f"{med(base['cpu']) / med(r['cpu']):.2f}× | |")


if __name__ == "__main__":
    main()
