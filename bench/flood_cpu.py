#!/usr/bin/env python3
"""Where the CPU goes while a session floods: `yes` in a remote PTY, its client draining it, for
ssh -tt and `peer attach` (direct) in one run. Over a few seconds of the flood it reads the MB/s
delivered and the CPU time of each participant (the server side: sshd's session processes or
`peer host`; the flooding client; `yes`; everything else on the machine, kernel workers
included, from /proc/stat), as a share of the machine's CPUs and per MB delivered. On a machine
with two CPUs whatever the flood takes is what a keystroke in another session waits behind.

    python3 bench/flood_cpu.py --peer target/release/peer [--seconds 5] [--rounds 3]
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pty_bench as pb  # noqa: E402
from keeper_ab import start_host  # noqa: E402
from echo_wakeups import children  # noqa: E402
from host_ab import cpu_ns, spent  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """utime + stime of a process (all its threads), seconds; 0 if it is gone."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except OSError:
        return 0.0


def machine_busy_s():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]
    return (sum(f[:8]) - idle) / TICK


def comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""


def measure(mk, env, server_pid, seconds):
    got = [0]
    flood, drain = pb.start_flood(mk("yes"), env, got)
    try:
        time.sleep(0.5)
        tree = children(server_pid)
        # The server and its helpers (sshd's per-connection processes; a host's keepers).
        server = [p for p in tree if comm(p).startswith(("sshd", comm(server_pid)))]
        yes = [p for p in tree if comm(p) == "yes"]
        parts = {"server": server, "flood client": [flood.pid], "yes": yes}
        got0 = got[0]
        before = {k: sum(cpu_s(p) for p in v) for k, v in parts.items()}
        threads0 = cpu_ns(server_pid)
        busy0, t0 = machine_busy_s(), time.time()
        time.sleep(seconds)
        busy1, t1 = machine_busy_s(), time.time()
        after = {k: sum(cpu_s(p) for p in v) for k, v in parts.items()}
        threads1 = cpu_ns(server_pid)
        got1 = got[0]
    finally:
        flood.kill()
        flood.wait()
        drain.join(timeout=10)
    wall = t1 - t0
    mb = (got1 - got0) / 1e6
    used = {k: after[k] - before[k] for k in parts}
    used["everything else"] = (busy1 - busy0) - sum(used.values())
    return mb / wall, used, wall, mb, spent(threads0, threads1)[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    peer = os.path.abspath(a.peer)
    ncpu = os.cpu_count()
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error", XDG_STATE_HOME="")
    tmp = tempfile.mkdtemp(prefix="peer-flood-cpu-")
    sshd, ssh = pb.start_sshd(tmp)
    host, url = start_host(peer, env, os.path.join(tmp, "host"), [])
    cenv = dict(env, PEER_HOME=os.path.join(tmp, "client"))
    subprocess.run([peer, "pair", url, "--name", "bench"], env=cenv, check=True, stdout=subprocess.DEVNULL)
    rows = {"ssh -tt": [], "peer direct": []}
    try:
        for _ in range(a.rounds):
            rows["ssh -tt"].append(measure(lambda r: ssh + [r], env, sshd.pid, a.seconds))
            rows["peer direct"].append(measure(lambda r: [peer, "attach", "--new", "--", "sh", "-c", r],
                                               cenv, host.pid, a.seconds))
    finally:
        host.terminate()
        host.wait(timeout=15)
        sshd.terminate()
        sshd.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"| path | MB/s | server | of which the screen model | flood client | yes | everything else "
          f"| all ({ncpu} CPUs = {ncpu * 100} %) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, rs in rows.items():
        for mbs, used, wall, mb, model in rs:
            cell = lambda t: f"{t / wall * 100:.0f} % ({t / mb * 1000:.1f} ms/MB)"
            cells = [cell(used["server"]), cell(model) if model else "–"]
            cells += [cell(used[k]) for k in ("flood client", "yes", "everything else")]
            total = sum(used.values())
            print(f"| {name} | {mbs:.1f} | " + " | ".join(cells) + f" | {total / wall * 100:.0f} % |")


if __name__ == "__main__":
    main()
