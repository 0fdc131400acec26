#!/usr/bin/env python3
"""Where `peer host`'s memory goes: VmRSS / VmHWM of a fresh host idle and with N idle shell
sessions, and the resident memory split by what holds it, read from /proc/<pid>/smaps:

  - thread stacks: the mapping each thread's stack pointer is in (/proc/<pid>/task/*/syscall,
    readable while the thread sleeps in a system call, which an idle host's threads do)
  - malloc arenas: glibc's per-thread arenas (anonymous mappings aligned to 64 MiB)
  - [heap]: the main arena (brk)
  - other anonymous: large allocations mmap'd on their own (>= 128 KiB), and anything else
  - the binary's own pages (text, rodata, relocations) and shared libraries

    python3 bench/host_memory.py --peer target/release/peer [--sessions 20] [--env K=V ...]

`--env` sets variables for the host only, to try what a setting would change (for example
MALLOC_ARENA_MAX=1); the numbers of a plain run are those of the default configuration.
"""
import argparse, collections, os, re, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keeper_ab import start_host  # noqa: E402

ARENA_ALIGN = 64 << 20


def status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
            out[k] = int(v.split()[0])
    return out


def stack_pointers(pid):
    """{sp: thread name} for threads asleep in a system call."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            f = open(f"/proc/{pid}/task/{tid}/syscall").read().split()
        except OSError:
            continue
        if len(f) >= 9:
            out[int(f[7], 16)] = name
    return out


def mappings(pid):
    """[(start, end, perms, path, rss_kb)] from smaps."""
    maps, cur = [], None
    head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")
    for line in open(f"/proc/{pid}/smaps"):
        m = head.match(line)
        if m:
            cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4).strip(), 0]
            maps.append(cur)
        elif line.startswith("Rss:") and cur is not None:
            cur[4] = int(line.split()[1])
    return maps


def breakdown(pid, exe):
    sps = stack_pointers(pid)
    parts = collections.Counter()
    stacks = collections.Counter()
    for start, end, perms, path, rss in mappings(pid):
        owner = [n for sp, n in sps.items() if start <= sp < end]
        if owner:
            kind = "thread stacks"
            stacks[re.sub(r"\d+", "N", owner[0])] += rss
        elif path == "[heap]":
            kind = "[heap] (main malloc arena)"
        elif path == "[stack]":
            kind = "thread stacks"
        elif path and os.path.realpath(path) == exe:
            kind = "the peer binary"
        elif path.startswith("/"):
            kind = "shared libraries and files"
        elif path.startswith("["):
            kind = "vdso/vvar"
        elif start % ARENA_ALIGN == 0 and "rw" in perms:
            kind = "malloc arenas (per thread)"
        else:
            kind = "other anonymous (large allocations)"
        parts[kind] += rss
    return parts, stacks


def report(label, pid, exe):
    st = status(pid)
    parts, stacks = breakdown(pid, exe)
    print(f"\n{label}: VmRSS {st['VmRSS'] / 1024:.1f} MiB, VmHWM {st['VmHWM'] / 1024:.1f} MiB, "
          f"RssAnon {st['RssAnon'] / 1024:.1f} MiB, RssFile {st['RssFile'] / 1024:.1f} MiB, "
          f"{st['Threads']} threads")
    for kind, kb in parts.most_common():
        print(f"  {kind:40s} {kb / 1024:7.2f} MiB")
    for name, kb in stacks.most_common():
        print(f"    stack {name:33s} {kb:7d} KiB")
    return st


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--env", action="append", default=[], help="K=V for the host only")
    a = ap.parse_args()
    peer = os.path.abspath(a.peer)
    tmp = tempfile.mkdtemp(prefix="peer-mem-")
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error")
    henv = dict(env)
    for kv in a.env:
        k, _, v = kv.partition("=")
        henv[k] = v
    cenv = dict(env, PEER_HOME=os.path.join(tmp, "client"))
    host, url = start_host(peer, henv, os.path.join(tmp, "host"), [])
    try:
        time.sleep(2)
        idle = report("idle, nothing paired", host.pid, peer)
        subprocess.run([peer, "pair", url, "--name", "mem"], env=cenv, check=True, stdout=subprocess.DEVNULL)
        time.sleep(1)
        paired = report("paired, no session", host.pid, peer)
        for _ in range(a.sessions):
            subprocess.run([peer, "new", "--", "sh"], env=cenv, check=True, stdout=subprocess.DEVNULL)
        time.sleep(2)
        busy = report(f"{a.sessions} idle `sh` sessions", host.pid, peer)
        if a.sessions:
            per = (busy["VmRSS"] - paired["VmRSS"]) / a.sessions
            print(f"\nper idle session: {per:.0f} KiB "
                  f"(RssAnon {(busy['RssAnon'] - paired['RssAnon']) / a.sessions:.0f} KiB)")
        print(f"summary: idle {idle['VmRSS'] / 1024:.1f} MiB, paired {paired['VmRSS'] / 1024:.1f} MiB, "
              f"{a.sessions} sessions {busy['VmRSS'] / 1024:.1f} MiB (VmHWM {busy['VmHWM'] / 1024:.1f} MiB)")
    finally:
        host.terminate()
        try:
            host.wait(timeout=10)
        except subprocess.TimeoutExpired:
            host.kill()
            host.wait()


if __name__ == "__main__":
    main()
