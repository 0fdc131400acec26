#!/usr/bin/env python3
"""What session keepers cost, in one run: `peer host` (each shell under a keeper) against
`peer host --kill-sessions-on-exit` (shells of the host's own, no keepers), with ssh beside them.

For each path, in rounds that alternate so that whatever else the machine does hits all alike:
  - keystroke echo through a remote PTY (1 byte written, the same byte read back from
    `stty raw -echo; cat`), as bench/pty_bench.py measures it;
  - throughput: N bytes of `head -c N /dev/zero` through the remote PTY;
  - session start: `peer new -- sleep 600`, command start to its answer (the keeper's exec,
    PTY and handshake included);
and, once, the memory of 20 idle shell sessions: the host's RSS, and the keepers' RSS and
private memory (what each keeper costs beyond the pages it shares with the host's binary).

    bench/keeper_ab.py --peer target/release/peer [--runs 5] [--echo 1000] [--bytes 100000000]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pty_bench as pb  # noqa: E402


def start_host(peer, env, home, extra):
    host = subprocess.Popen([peer, "host", "--listen", "127.0.0.1", *extra], env=dict(env, PEER_HOME=home),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in host.stdout:
        line = line.decode()
        if line.startswith("pairing URL: "):
            return host, line.split(": ", 1)[1].strip()
    raise RuntimeError("the host printed no pairing URL")


def keeper_pids(home):
    """The keepers serving the host whose state directory is `home`."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[1] == b"__keeper" and argv[2].decode(errors="replace").startswith(home):
            pids.append(int(pid))
    return pids


def private_kb(pid):
    """Private_Clean + Private_Dirty of a process, in KiB."""
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--echo", type=int, default=1000, help="keystrokes per path and run")
    ap.add_argument("--bytes", type=int, default=100_000_000, help="bytes per throughput run")
    ap.add_argument("--starts", type=int, default=10, help="`peer new` per path and run")
    a = ap.parse_args()
    peer = os.path.abspath(a.peer)
    tmp = tempfile.mkdtemp(prefix="peer-keeper-ab-")
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error", XDG_STATE_HOME="")
    sshd, ssh = pb.start_sshd(tmp)
    hosts = {}
    try:
        cenvs = {}
        for name, extra in (("keeper", []), ("no keeper", ["--kill-sessions-on-exit"])):
            home = os.path.join(tmp, name.replace(" ", "-"))
            host, url = start_host(peer, env, home, extra)
            hosts[name] = (host, home)
            cenv = dict(env, PEER_HOME=home + "-client")
            subprocess.run([peer, "pair", url, "--name", "bench"], env=cenv, check=True, stdout=subprocess.DEVNULL)
            cenvs[name] = cenv
        raw = "stty raw -echo; printf READY; cat"
        zero = f"head -c {a.bytes} /dev/zero"
        paths = {
            "ssh -tt": (lambda r: ssh + [r], cenvs["keeper"]),
            "peer direct, shells in keepers (default)": (
                lambda r: [peer, "attach", "--new", "--", "sh", "-c", r], cenvs["keeper"]),
            "peer direct, --kill-sessions-on-exit (no keepers)": (
                lambda r: [peer, "attach", "--new", "--", "sh", "-c", r], cenvs["no keeper"]),
        }
        res = {name: {"p50": [], "p90": [], "p99": [], "mbs": [], "start": []} for name in paths}
        for run in range(a.runs):
            order = list(paths.items()) if run % 2 == 0 else list(reversed(paths.items()))
            for name, (mk, cenv) in order:
                e = pb.echo(mk(raw), a.echo, cenv)
                for k, v in zip(("p50", "p90", "p99"), e):
                    res[name][k].append(v)
                mbs, _ = pb.throughput(mk(zero), cenv, os.path.join(tmp, "rss"))
                res[name]["mbs"].append(mbs)
                if name != "ssh -tt":
                    for _ in range(a.starts):
                        t = time.perf_counter()
                        subprocess.run([peer, "new", "--", "sleep", "600"], env=cenv, check=True,
                                       stdout=subprocess.DEVNULL)
                        res[name]["start"].append(time.perf_counter() - t)
                print(f"run {run + 1} {name}: echo p50 {e[0]:.0f} µs p99 {e[2]:.0f} µs, {mbs:.1f} MB/s", file=sys.stderr)
        med = statistics.median
        base = res["ssh -tt"]
        print("| path | echo p50 (µs) | p90 | p99 | p50 vs ssh | throughput (MB/s) | `peer new` (ms) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, r in res.items():
            start = f"{med(r['start']) * 1000:.1f}" if r["start"] else "–"
            print(f"| {name} | {med(r['p50']):.0f} | {med(r['p90']):.0f} | {med(r['p99']):.0f} | "
                  f"{med(r['p50']) / med(base['p50']):.2f}× | {med(r['mbs']):.1f} | {start} |")
        # Memory: kill what the runs left, then 20 idle shells on each host.
        print("\n| 20 idle shell sessions | host RSS (MiB) | keepers: RSS each (MiB) | keepers: private each (KiB) |")
        print("| --- | ---: | ---: | ---: |")
        for name, (host, home) in hosts.items():
            cenv = cenvs[name]
            ls = subprocess.run([peer, "ls", "--json"], env=cenv, check=True, capture_output=True).stdout
            for s in json.loads(ls):
                subprocess.run([peer, "kill", str(s["id"])], env=cenv, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            for _ in range(20):
                subprocess.run([peer, "new", "--", "sh"], env=cenv, check=True, stdout=subprocess.DEVNULL)
            time.sleep(1)
            keepers = keeper_pids(home)
            rss = [pb.rss_kb(p) for p in keepers]
            private = [private_kb(p) for p in keepers]
            each = (f"{med(rss) / 1024:.1f} | {med(private):.0f}" if keepers else "– | –")
            print(f"| {name} ({len(keepers)} keepers) | {pb.rss_kb(host.pid) / 1024:.1f} | {each} |")
    finally:
        for host, _ in hosts.values():
            host.terminate()
            host.wait(timeout=15)
        sshd.terminate()
        sshd.wait()
        # Removing the state directories makes the keepers hang their shells up and go.
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
