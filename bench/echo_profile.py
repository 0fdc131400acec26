#!/usr/bin/env python3
"""What a keystroke's echo costs inside `peer host` and the `peer attach` client: N keystrokes
through `peer attach` to `stty raw -echo; cat` (direct), with `perf` attached to both
processes for exactly those keystrokes, in one of two modes:

  - a flat profile (`perf record`): samples by binary (peer, the kernel, libc) and the
    functions with the most samples, for each process;
  - calls per keystroke (`--probe SYMBOL`, repeatable; a substring of a symbol of the `peer`
    binary, e.g. `Connection13poll_transmit17h`): a uprobe on each, counted by `perf stat`,
    with context switches beside them.

The host runs with this script's environment (e.g. `TOKIO_WORKER_THREADS=1`). perf's own work
makes the latencies of these runs meaningless; the counts and the shares are what they are for.
Needs root (uprobes, perf on other processes).

    sudo python3 bench/echo_profile.py --peer target/release/peer [--echo 5000] [--top 30]
    sudo python3 bench/echo_profile.py --peer target/release/peer --echo 2000 \\
        --probe Connection13poll_transmit17h --probe ConnectionDriver
"""
import argparse, os, re, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pty_bench import read_until  # noqa: E402
from keeper_ab import start_host  # noqa: E402


def file_offset(binary, vaddr):
    """The file offset of a virtual address of `binary` (its PT_LOAD segment), for uprobes."""
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            off, va, size = int(f[1], 16), int(f[2], 16), int(f[4], 16)
            if va <= vaddr < va + size:
                return vaddr - va + off
    raise ValueError(f"{vaddr:#x} is in no loadable segment of {binary}")


def add_probes(binary, needles):
    """A uprobe on each text symbol containing a needle (copies of a generic function each get
    one); returns [(event, needle)]."""
    syms = {}
    for line in subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "tT":
            syms.setdefault(f[2], int(f[0], 16))
    subprocess.run(["perf", "probe", "-q", "-d", "probe_peer:*"], stderr=subprocess.DEVNULL)
    events = []
    for i, needle in enumerate(needles):
        found = sorted({a for s, a in syms.items() if needle in s})
        if not found or len(found) > 8:
            raise SystemExit(f"--probe {needle}: {len(found)} functions match")
        for j, addr in enumerate(found):
            name = f"p{i}_{j}"
            subprocess.run(["perf", "probe", "-q", "-x", binary, "-a", f"{name}={file_offset(binary, addr):#x}"], check=True)
            events.append((f"probe_peer:{name}", needle))
    return events


def echo(ifd, ofd, n):
    for _ in range(n):
        os.write(ifd, b"x")
        got = b""
        while b"x" not in got:
            got += os.read(ofd, 64)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--echo", type=int, default=5000, help="keystrokes measured")
    ap.add_argument("--top", type=int, default=30, help="functions listed per process (profile)")
    ap.add_argument("--probe", action="append", default=[], help="symbol substring to count calls of")
    a = ap.parse_args()
    peer = os.path.abspath(a.peer)
    tmp = tempfile.mkdtemp(prefix="peer-prof-")
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error")
    events = add_probes(peer, a.probe) if a.probe else []
    host, url = start_host(peer, env, os.path.join(tmp, "host"), [])
    cenv = dict(env, PEER_HOME=os.path.join(tmp, "client"))
    subprocess.run([peer, "pair", url, "--name", "prof"], env=cenv, check=True, stdout=subprocess.DEVNULL)
    client = subprocess.Popen([peer, "attach", "--new", "--", "sh", "-c", "stty raw -echo; echo READY; cat"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=cenv)
    ifd, ofd = client.stdin.fileno(), client.stdout.fileno()
    try:
        read_until(ofd, b"READY")
        echo(ifd, ofd, 200)  # warm up
        perfs = []
        for who, pid in (("host", host.pid), ("client", client.pid)):
            out = os.path.join(tmp, f"perf.{who}")
            if events:
                cmd = ["perf", "stat", "-x", ",", "-e", ",".join([e for e, _ in events] + ["context-switches"]), "-o", out]
            else:
                cmd = ["perf", "record", "-q", "-F", "20000", "-o", out]
            perfs.append((who, out, subprocess.Popen(cmd + ["-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        # perf attaches asynchronously: wait until it counts, then measure.
        time.sleep(1)
        echo(ifd, ofd, a.echo)
        for _, _, p in perfs:
            p.send_signal(2)
        for _, _, p in perfs:
            p.wait()
    finally:
        client.kill()
        client.wait()
        host.terminate()
        host.wait()
    for who, out, _ in perfs:
        print(f"\n{who} ({a.echo} keystrokes)")
        if events:
            names = dict(events)
            counts = {}
            for line in open(out):
                f = line.strip().split(",")
                if len(f) > 2 and f[0].isdigit():
                    label = names.get(f[2], f[2])
                    counts[label] = counts.get(label, 0) + int(f[0])
            for label, n in counts.items():
                print(f"  {label:40s} {n / a.echo:8.2f} per keystroke")
        else:
            for sort in ("dso", "sym"):
                rep = subprocess.run(["perf", "report", "-i", out, "--no-children", "--sort", sort, "--stdio", "-g", "none"],
                                     capture_output=True, text=True).stdout
                rows = [l for l in rep.splitlines() if re.match(r"^\s+\d", l)]
                for l in rows[: (6 if sort == "dso" else a.top)]:
                    print("  " + l.strip())
    if events:
        subprocess.run(["perf", "probe", "-q", "-d", "probe_peer:*"], stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
