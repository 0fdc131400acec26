#!/usr/bin/env python3
"""Where a keystroke's echo goes: per thread of `peer host` and of the `peer attach` client,
context switches (voluntary: the thread slept and was woken) and CPU time per keystroke, read
from /proc/<pid>/task/*/status and schedstat before and after N keystrokes through
`peer attach` to `stty raw -echo; cat` (direct, then relay-only); sshd and ssh likewise.

    python3 bench/echo_wakeups.py --peer target/release/peer [--echo 2000]
"""
import argparse, collections, os, re, subprocess, sys, tempfile, time, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pty_bench import read_until, start_sshd  # noqa: E402
from keeper_ab import start_host  # noqa: E402


def threads(pids):
    """{(pid, tid): (name, voluntary, involuntary, cpu_ns)} for every thread of `pids`."""
    out = {}
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            base = f"/proc/{pid}/task/{tid}"
            try:
                name = open(f"{base}/comm").read().strip()
                st = open(f"{base}/status").read()
                vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
                inv = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
                cpu = int(open(f"{base}/schedstat").read().split()[0])
            except (OSError, AttributeError):
                continue
            out[(pid, tid)] = (name, vol, inv, cpu)
    return out


def children(pid):
    """`pid` and its descendants (sshd forks a process per connection)."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue  # it ended meanwhile
        for tid in tids:
            try:
                todo += [int(c) for c in open(f"/proc/{p}/task/{tid}/children").read().split()]
            except OSError:
                pass
    return seen


def sshd_sessions(pid):
    """The session processes of the sshd listening as `pid` (not the shells they run). OpenSSH
    9.8 and later name them `sshd-session`."""
    return [q for q in children(pid)[1:] if open(f"/proc/{q}/comm").read().startswith("sshd")]


def measure(cmd, env, server_pid, n):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    ifd, ofd = p.stdin.fileno(), p.stdout.fileno()
    read_until(ofd, b"READY")
    for _ in range(50):  # warm up
        os.write(ifd, b"x")
        while b"x" not in os.read(ofd, 64):
            pass
    # The server side: the host process, or sshd's session processes (not the shell's).
    pids = [server_pid] + sshd_sessions(server_pid)
    before, cbefore = threads(pids), threads([p.pid])
    lat = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        os.write(ifd, b"x")
        got = b""
        while b"x" not in got:
            got += os.read(ofd, 64)
        lat.append((time.perf_counter_ns() - t0) / 1000)
    after, cafter = threads(pids), threads([p.pid])
    p.kill(); p.wait()
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], per_kind(before, after), per_kind(cbefore, cafter)


def per_kind(before, after):
    """Switches and CPU time between two `threads` readings, summed by kind of thread."""
    agg = collections.defaultdict(lambda: [0, 0, 0, 0])
    for k, (name, vol, inv, cpu) in after.items():
        b = before.get(k, (name, 0, 0, 0))
        d = (vol - b[1], inv - b[2], cpu - b[3])
        if d == (0, 0, 0):
            continue
        # Group numbered threads (tokio-runtime-worker, pty-7-read) by kind.
        key = re.sub(r"\d+", "N", name)
        a = agg[key]; a[0] += 1; a[1] += d[0]; a[2] += d[1]; a[3] += d[2]
    return agg


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--echo", type=int, default=2000)
    a = ap.parse_args()
    peer = os.path.abspath(a.peer)
    tmp = tempfile.mkdtemp(prefix="peer-wakeups-")
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error")
    sshd, ssh = start_sshd(tmp)
    host, url = start_host(peer, env, f"{tmp}/host", [])
    try:
        cenv = dict(env, PEER_HOME=f"{tmp}/client")
        subprocess.run([peer, "pair", url, "--name", "bench"], env=cenv, check=True, stdout=subprocess.DEVNULL)
        raw = "stty raw -echo; printf READY; cat"
        paths = [
            ("ssh -tt (sshd)", ssh + [raw], sshd.pid),
            ("peer direct", [peer, "attach", "--new", "--", "sh", "-c", raw], host.pid),
            ("peer relay-only", [peer, "--relay-only", "attach", "--new", "--", "sh", "-c", raw], host.pid),
        ]
        for name, cmd, pid in paths:
            p50, p99, agg, cagg = measure(cmd, cenv, pid, a.echo)
            print(f"\n{name}: echo p50 {p50:.0f} µs, p99 {p99:.0f} µs; threads per keystroke:")
            print("| side | threads | count | sleeps (voluntary switches) | preempted | CPU µs |")
            print("| --- | --- | ---: | ---: | ---: | ---: |")
            for side, g in (("server", agg), ("client", cagg)):
                tot = [0, 0, 0]
                for key, (cnt, vol, inv, cpu) in sorted(g.items(), key=lambda kv: -kv[1][1]):
                    print(f"| {side} | {key} | {cnt} | {vol/a.echo:.2f} | {inv/a.echo:.2f} | {cpu/a.echo/1000:.1f} |")
                    tot[0] += vol; tot[1] += inv; tot[2] += cpu
                print(f"| {side} | all | | {tot[0]/a.echo:.2f} | {tot[1]/a.echo:.2f} | {tot[2]/a.echo/1000:.1f} |")
    finally:
        host.terminate(); host.wait(timeout=15)
        sshd.terminate(); sshd.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
