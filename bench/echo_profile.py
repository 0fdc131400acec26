#!/usr/bin/env python3
"""What a keystroke's echo costs in CPU, server and client, for `peer attach` (direct) and for
ssh -tt beside it: N keystrokes through each to `stty raw -echo; cat`, with `perf` attached to
the server (`peer host`; sshd's session processes) and the client for exactly those keystrokes.

Per keystroke and side: system calls, context switches and CPU time (`perf stat`), and where
the CPU goes (`perf record`): the share of the kernel, of shared libraries, and of each crate
of the `peer` binary (by symbol prefix: noq_proto, tokio, ...), with the top functions.
`--probe SYMBOL` (repeatable; a substring of symbols of the `peer` binary, e.g.
`Connection13poll_transmit17h`) also counts calls of those functions through uprobes.

The host runs with this script's environment (e.g. `TOKIO_WORKER_THREADS=1`). perf's own work
makes the latencies of these runs meaningless; the counts and shares are what they are for.
Needs root (perf on other processes, uprobes) and sshd (`apt-get install openssh-server`).

    sudo python3 bench/echo_profile.py --peer target/release/peer [--echo 5000] [--top 15]
    sudo python3 bench/echo_profile.py --peer target/release/peer --echo 2000 \\
        --probe Connection13poll_transmit17h --probe UdpSocketState4recv
"""
import argparse, collections, os, re, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pty_bench import read_until, start_sshd  # noqa: E402
from keeper_ab import start_host  # noqa: E402
from echo_wakeups import sshd_sessions  # noqa: E402

CRATES = ["noq_proto", "noq_udp", "noq", "iroh_relay", "iroh", "tokio", "ring", "rustls", "peer",
          "core", "alloc", "std", "parking_lot", "bytes", "tracing", "hashbrown"]


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
    """A uprobe on each function whose symbol contains a needle (copies of a generic function
    each get one); returns [(event, needle)]."""
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


def by_crate(report):
    """perf report lines (dso, sym) → {kernel | shared libraries | crate: percent}."""
    out = collections.Counter()
    for line in report.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).lstrip("<")
        if kind == "k":
            key = "kernel"
        elif not dso.startswith(("peer", "sshd", "ssh")):
            key = "shared libraries"
        elif dso.startswith("peer"):
            key = next((c for c in CRATES if sym.startswith(c + "::") or sym.startswith(c + " ")), "the rest of the binary")
        else:
            key = dso
        out[key] += pct
    return out


def measure(name, cmd, env, server, n, events, top, tmp):
    client = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    ifd, ofd = client.stdin.fileno(), client.stdout.fileno()
    try:
        read_until(ofd, b"READY")
        echo(ifd, ofd, 200)  # warm up
        # The server side: the host, or sshd's session processes (not the shell's).
        spids = server()
        sides = [(side, ",".join(map(str, pids)), os.path.join(tmp, f"{side}.stat"), os.path.join(tmp, f"{side}.data"))
                 for side, pids in (("server", spids), ("client", [client.pid]))]
        stat = ",".join([e for e, _ in events] + ["raw_syscalls:sys_enter", "context-switches", "task-clock"])
        # Two passes of N keystrokes: counts first (sampling would add to the CPU time), then
        # the samples.
        for kind in ("stat", "record"):
            perfs = []
            for side, p, s, r in sides:
                perf = (["perf", "stat", "-x", ",", "-e", stat, "-o", s] if kind == "stat"
                        else ["perf", "record", "-q", "-F", "20000", "-o", r])
                perfs.append(subprocess.Popen(perf + ["-p", p], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1)  # perf attaches asynchronously
            echo(ifd, ofd, n)
            for q in perfs:
                q.send_signal(2)
            for q in perfs:
                q.wait()
    finally:
        client.kill()
        client.wait()
    labels = dict(events)
    labels.update({"raw_syscalls:sys_enter": "system calls", "context-switches": "context switches"})
    print(f"\n## {name} ({n} keystrokes)")
    for side, _, s, r in sides:
        counts = collections.Counter()
        for line in open(s):
            f = line.strip().split(",")
            if len(f) > 2 and re.match(r"^[\d.]+$", f[0]):
                counts[labels.get(f[2], f[2])] += float(f[0])
        cpu = counts.pop("task-clock", 0) * 1000 / n  # msec → µs per keystroke
        print(f"\n{side}: CPU {cpu:.0f} µs per keystroke; per keystroke: "
              + ", ".join(f"{k} {v / n:.2f}" for k, v in counts.items()))
        rep = subprocess.run(["perf", "report", "-i", r, "--no-children", "--sort", "dso,sym", "--stdio", "-g", "none"],
                             capture_output=True, text=True).stdout
        shares = by_crate(rep)
        print("  CPU by part: " + ", ".join(f"{k} {v:.1f} % ({v * cpu / 100:.0f} µs)" for k, v in shares.most_common(10)))
        rows = [l.strip() for l in rep.splitlines() if re.match(r"^\s+\d", l)]
        for l in rows[:top]:
            print("    " + re.sub(r"\s+", " ", l))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--echo", type=int, default=5000, help="keystrokes measured per path")
    ap.add_argument("--top", type=int, default=15, help="functions listed per side")
    ap.add_argument("--probe", action="append", default=[], help="symbol substring to count calls of")
    a = ap.parse_args()
    peer = os.path.abspath(a.peer)
    tmp = tempfile.mkdtemp(prefix="peer-prof-")
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error")
    events = add_probes(peer, a.probe) if a.probe else []
    sshd, ssh = start_sshd(tmp)
    host, url = start_host(peer, env, os.path.join(tmp, "host"), [])
    try:
        cenv = dict(env, PEER_HOME=os.path.join(tmp, "client"))
        subprocess.run([peer, "pair", url, "--name", "prof"], env=cenv, check=True, stdout=subprocess.DEVNULL)
        raw = "stty raw -echo; printf READY; cat"
        measure("ssh -tt", ssh + [raw], cenv, lambda: sshd_sessions(sshd.pid), a.echo, [], a.top, tmp)
        measure("peer direct", [peer, "attach", "--new", "--", "sh", "-c", raw], cenv, lambda: [host.pid],
                a.echo, events, a.top, tmp)
    finally:
        host.terminate()
        host.wait(timeout=15)
        sshd.terminate()
        sshd.wait()
        if events:
            subprocess.run(["perf", "probe", "-q", "-d", "probe_peer:*"], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
