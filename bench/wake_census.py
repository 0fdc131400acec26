#!/usr/bin/env python3
"""Who wakes whom for each keystroke: `perf record` of the scheduler's wake-ups and switches on
every CPU while N keystrokes go through `peer attach` (stdin and stdout pipes) to
`stty raw -echo; cat` on a fresh `peer host`, then the wake-ups counted by waker and wakee
(host threads, client threads, `cat`, kernel workers), per keystroke. With `--timeline K` it
also prints the events of keystroke K, in microseconds from the harness's write.

    sudo python3 bench/wake_census.py --peer target/release/peer [--echo 2000] [--relay-only]

Needs `perf` with the sched tracepoints (root, or perf_event_paranoid <= -1). perf's own
work shows in the latencies (they are printed, but are not the benchmark: bench/host_ab.py
is); the counts are what this is for.
"""
import argparse, collections, os, re, shutil, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pty_bench import read_until  # noqa: E402
from keeper_ab import start_host  # noqa: E402

EVENT = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(\w+):\s+(.*)$")


def run(peer, n, relay_only, data):
    tmp = tempfile.mkdtemp(prefix="peer-census-")
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error")
    host, url = start_host(peer, env, f"{tmp}/host", [])
    try:
        cenv = dict(env, PEER_HOME=f"{tmp}/client")
        subprocess.run([peer, "pair", url, "--name", "census"], env=cenv, check=True, stdout=subprocess.DEVNULL)
        cmd = [peer] + (["--relay-only"] if relay_only else []) + \
            ["attach", "--new", "--", "sh", "-c", "stty raw -echo; printf READY; exec cat"]
        client = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=cenv)
        ifd, ofd = client.stdin.fileno(), client.stdout.fileno()
        read_until(ofd, b"READY")

        def key():
            t0 = time.perf_counter_ns()
            os.write(ifd, b"x")
            got = b""
            while b"x" not in got:
                got += os.read(ofd, 64)
            return (time.perf_counter_ns() - t0) / 1000

        for _ in range(200):
            key()
        perf = subprocess.Popen(["perf", "record", "-q", "-a", "-o", data, "-e",
                                 "sched:sched_waking,sched:sched_switch"], stderr=subprocess.DEVNULL)
        time.sleep(1.5)  # perf is recording
        lat = sorted(key() for _ in range(n))
        time.sleep(0.2)
        perf.send_signal(signal.SIGINT)
        perf.wait()
        client.kill()
        client.wait()
        return host.pid, client.pid, os.getpid(), lat
    finally:
        host.terminate()
        host.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


def events(data):
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,cpu,time,event,trace"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = EVENT.match(line)
        if m:
            comm, pid, tid, cpu, t, ev, rest = m.groups()
            yield comm, int(pid), int(tid), int(cpu), float(t), ev, rest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--echo", type=int, default=2000)
    ap.add_argument("--relay-only", action="store_true")
    ap.add_argument("--timeline", type=int, help="print the events of this keystroke")
    a = ap.parse_args()
    data = os.path.join(tempfile.mkdtemp(prefix="peer-census-perf-"), "perf.data")
    host, client, me, lat = run(os.path.abspath(a.peer), a.echo, a.relay_only, data)
    evs = list(events(data))
    shutil.rmtree(os.path.dirname(data), ignore_errors=True)
    pid_of = {tid: pid for _, pid, tid, *_ in evs}

    def who(pid, comm):
        if pid == host:
            return "host " + comm
        if pid == client:
            return "client " + ("runtime" if comm != "stdin" else "stdin thread")
        if pid == me:
            return "harness"
        if comm.startswith("kworker"):
            return "kernel worker"
        return comm

    pairs = collections.Counter()
    for comm, pid, tid, cpu, t, ev, rest in evs:
        if ev != "sched_waking":
            continue
        m = re.search(r"comm=(.*) pid=(\d+) prio", rest)
        wakee = who(pid_of.get(int(m.group(2)), -1), m.group(1))
        waker = who(pid, comm)
        if {waker.split()[0], wakee.split()[0]} & {"host", "client", "harness", "cat"}:
            pairs[(waker, wakee)] += 1
    print(f"echo under perf: p50 {lat[len(lat) // 2]:.0f} µs, p99 {lat[int(len(lat) * 0.99)]:.0f} µs\n")
    print("| waker | wakee | per keystroke |")
    print("| --- | --- | ---: |")
    for (waker, wakee), c in pairs.most_common():
        if c / a.echo >= 0.05:
            print(f"| {waker} | {wakee} | {c / a.echo:.2f} |")
    if a.timeline is not None:
        starts = [i for i, e in enumerate(evs) if e[1] == me and e[5] == "sched_waking"
                  and pid_of.get(int(re.search(r"pid=(\d+)", e[6]).group(1))) == client]
        i, j = starts[a.timeline], starts[a.timeline + 1]
        t0 = evs[i][4]
        for comm, pid, tid, cpu, t, ev, rest in evs[i:j]:
            print(f"{(t - t0) * 1e6:7.0f} µs  cpu{cpu}  {who(pid, comm):22s} {ev[6:]:7s} {rest[:100]}")


if __name__ == "__main__":
    main()
