#!/usr/bin/env python3
"""Ctrl-C during a flood: how long until the output stops, and how much still comes.

For ssh -tt and `peer attach` (direct, and relay-only), each trial starts `yes` in a remote PTY,
reads the client's output until 10 MB have come, writes ^C to the client's stdin and counts the
time and the bytes until its output ends (`yes` died, its session ended, everything in flight
arrived). Prints each trial and a Markdown table of medians and maxima, ssh and peer in one run.

  python3 bench/ctrl_c.py --peer target/release/peer --trials 10

`--build NAME:PATH` adds another peer binary (host and client both) to the same rounds: a
before/after in one run. `PEER_BENCH_CC=cubic` in the environment is passed on (the host's and
client's congestion controller, see net.rs).
"""
import argparse, os, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keeper_ab import start_host  # noqa: E402
from pty_bench import ctrl_c, start_flood, start_sshd  # noqa: E402


def trial(cmd, env):
    """One ^C into a flood: (seconds until the output ended, bytes after the ^C)."""
    got = [0]
    p, t = start_flood(cmd, env, got)
    before = got[0]
    return ctrl_c(p, t), got[0] - before


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--build", action="append", default=[], metavar="NAME:PATH",
                    help="another peer binary measured in the same rounds")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--no-relay", action="store_true", help="leave out the relay-only rows")
    a = ap.parse_args()
    builds = [("peer", os.path.abspath(a.peer))]
    for b in a.build:
        name, path = b.split(":", 1)
        builds.append((name, os.path.abspath(path)))
    tmp = tempfile.mkdtemp(prefix="peer-ctrlc-")
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error")
    sshd, ssh = start_sshd(tmp)
    hosts = []
    paths = {"ssh -tt": (ssh + ["yes"], env)}
    try:
        for name, peer in builds:
            home = os.path.join(tmp, name)
            host, url = start_host(peer, env, os.path.join(home, "host"), [])
            hosts.append(host)
            cenv = dict(env, PEER_HOME=os.path.join(home, "client"))
            subprocess.run([peer, "pair", url, "--name", "bench"], env=cenv, check=True, stdout=subprocess.DEVNULL)
            paths[f"{name} direct"] = ([peer, "attach", "--new", "--", "yes"], cenv)
            if not a.no_relay:
                paths[f"{name} relay-only"] = ([peer, "--relay-only", "attach", "--new", "--", "yes"], cenv)
        res = {n: [] for n in paths}
        for i in range(a.trials):
            for name, (cmd, e) in paths.items():
                dt, after = trial(cmd, e)
                res[name].append((dt, after))
                print(f"trial {i + 1} {name}: {dt * 1000:.1f} ms, {after / 1000:.0f} KB after the ^C", file=sys.stderr)
        print(f"\n{a.trials} trials each, `yes` flooding, 10 MB read before the ^C.\n")
        print("| path | ^C to end of output p50 (ms) | max (ms) | bytes after the ^C p50 (KB) | max (KB) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, r in res.items():
            t = [x[0] * 1000 for x in r]
            b = [x[1] / 1000 for x in r]
            print(f"| {name} | {statistics.median(t):.1f} | {max(t):.1f} | {statistics.median(b):.0f} | {max(b):.0f} |")
    finally:
        for h in hosts:
            h.terminate()
            h.wait()
        sshd.terminate()


if __name__ == "__main__":
    main()
