#!/usr/bin/env python3
"""peer against ssh through the same impaired link (delay and random loss), in one run.

The kernel here has no sch_netem, so the impairment is built in user space at the IP layer,
where it treats TCP (ssh) and UDP (QUIC, peer) alike: two network namespaces, "host" and
"client", each with `lo` and one TUN interface (10.77.0.1/24 and 10.77.0.2/24). This script
reads every IP packet from one TUN and writes it to the other after a one-way delay of RTT/2,
dropping each packet with probability LOSS independently per packet and per direction. Packets
keep their order apart from loss (a delay line: no reordering, no queue limit, no bandwidth cap
unless --rate-mbit is given).

In the host namespace run a throwaway sshd (10.77.0.1:2222) and `peer host --listen 10.77.0.1`;
in the client namespace `ssh -tt` and `peer attach --new` (paired directly, not relay-only). Per
impairment, alternating ssh and peer, it measures:
  - keystroke echo: 1 byte written, read back from `stty raw -echo; printf READY; cat`, waiting
    for each echo before the next key → p50/p90/p99
  - throughput: `head -c N /dev/zero` through the remote PTY to the client's stdout pipe, cut
    at --cap seconds; the rate is over the bytes received, from the first byte
  - peer's notices on stderr ("[peer: connection lost; reconnecting]", "[peer: input dropped:
    …]", …), counted
  - the bytes the forwarder carried per protocol during peer's runs (UDP = direct QUIC path,
    TCP = the embedded relay), so a silent fall-back to the relay would show
First it measures the forwarder's own ceiling at 0 delay and 0 loss (UDP ping-pong, TCP bulk).

Needs root (namespaces, /dev/net/tun). Stdlib only. Namespaces and processes are removed on exit,
Ctrl-C or error. Example:
  sudo python3 bench/impaired.py --peer /work/bench/peer --runs 2 --json /tmp/impaired.json
"""
import argparse, collections, fcntl, json, os, random, re, select, shutil, signal, socket, struct
import statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pty_bench  # noqa: E402

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
HOST_IP, CLIENT_IP = "10.77.0.1", "10.77.0.2"
SSH_PORT = 2222
NOTICE = re.compile(r"\[peer: ([^\]]*)\]")   # the CLI's status lines on stderr (cli/terminal.rs)

# ---------------------------------------------------------------- the impaired link

class Params:
    """Settings both directions read on every packet; change them between measurements."""
    def __init__(self):
        self.delay = 0.0        # one way, seconds
        self.loss = 0.0         # probability per packet
        self.rate = None        # bytes/s, None = no cap
        self.queue = 0.1        # seconds of backlog before drop-tail, with a rate cap only

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()   # (direction, proto, "pkts"/"bytes"/"drop")

    def add(self, key, n=1):
        with self.lock: self.c[key] += n

    def snap(self):
        with self.lock: return collections.Counter(self.c)

PROTO = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}

def proto_of(pkt):
    v = pkt[0] >> 4
    if v == 4 and len(pkt) >= 20: return PROTO.get(pkt[9], str(pkt[9]))
    if v == 6 and len(pkt) >= 40: return PROTO.get(pkt[6], str(pkt[6]))
    return "other"

def pump(src, dst, name, params, stats, rng):
    """One direction: a reader thread stamps each packet with its due time (or drops it), a
    writer thread writes it out when due. FIFO, so no reordering."""
    q = collections.deque(); cv = threading.Condition()
    link_free = [0.0]

    def reader():
        while True:
            try: pkt = os.read(src, 65536)
            except OSError: return
            now = time.monotonic()
            pr = proto_of(pkt)
            stats.add((name, pr, "pkts")); stats.add((name, pr, "bytes"), len(pkt))
            if params.loss and rng.random() < params.loss:
                stats.add((name, pr, "drop")); continue
            due = now
            if params.rate:
                start = max(now, link_free[0])
                if start - now > params.queue:          # drop-tail: the backlog is full
                    stats.add((name, pr, "qdrop")); continue
                link_free[0] = start + len(pkt) / params.rate
                due = link_free[0]
            with cv:
                q.append((due + params.delay, pkt)); cv.notify()

    def writer():
        while True:
            with cv:
                while not q: cv.wait()
                due = q[0][0]
                wait = due - time.monotonic()
                if wait <= 0:
                    batch = []
                    now = time.monotonic()
                    while q and q[0][0] <= now: batch.append(q.popleft()[1])
                else:
                    batch = None
            if batch is None:
                time.sleep(wait); continue
            for pkt in batch:
                try: os.write(dst, pkt)
                except OSError: stats.add((name, "?", "werr"))

    for f in (reader, writer):
        threading.Thread(target=f, daemon=True, name=f"{name}-{f.__name__}").start()

def sh(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, **kw)

def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd

class Link:
    """Two namespaces joined by the forwarder. Use as a context manager: it deletes both."""
    def __init__(self, seed):
        tag = f"{os.getpid() % 100000}"
        self.ns = {"host": f"pimp{tag}h", "client": f"pimp{tag}c"}
        self.params, self.stats = Params(), Stats()
        self.seed = seed
        self.fds = []

    def __enter__(self):
        try:
            fds = {}
            for role, ip in (("host", HOST_IP), ("client", CLIENT_IP)):
                ns = self.ns[role]
                sh("ip", "netns", "add", ns)
                # Created in the root namespace, then moved: the fd stays bound to the device.
                fds[role] = open_tun(ns); self.fds.append(fds[role])
                sh("ip", "link", "set", ns, "netns", ns)
                for cmd in (["ip", "link", "set", "lo", "up"],
                            ["ip", "addr", "add", f"{ip}/24", "dev", ns],
                            ["ip", "link", "set", ns, "up"],
                            ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]):
                    sh("ip", "netns", "exec", ns, *cmd)
            pump(fds["client"], fds["host"], "c2h", self.params, self.stats, random.Random(self.seed))
            pump(fds["host"], fds["client"], "h2c", self.params, self.stats, random.Random(self.seed + 1))
        except BaseException:
            self.__exit__(None, None, None); raise
        return self

    def __exit__(self, *exc):
        for ns in self.ns.values():
            # Anything still running inside goes first, or the namespace lingers.
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try: os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError): pass
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        for fd in self.fds:
            try: os.close(fd)
            except OSError: pass
        self.fds = []

    def run(self, role, cmd, **kw):
        return ["ip", "netns", "exec", self.ns[role]] + list(cmd)

    def set_cc(self, cc):
        """TCP congestion control for every connection across the link, both ends: a route
        attribute, which accepted sockets take too (a sysctl would only reach new listeners)."""
        for role, ip in (("host", HOST_IP), ("client", CLIENT_IP)):
            ns = self.ns[role]
            sh(*self.run(role, ["ip", "route", "replace", "10.77.0.0/24", "dev", ns, "proto", "kernel",
                                "scope", "link", "src", ip, "congctl", cc]))

    def set(self, rtt_ms, loss):
        self.params.delay = rtt_ms / 2000.0
        self.params.loss = loss
        time.sleep(max(0.5, rtt_ms / 1000.0 * 2))   # packets in flight under the old setting drain

# ---------------------------------------------------------------- helpers run inside a namespace

def helper(argv):
    kind = argv[0]
    if kind == "udp_echo":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((argv[1], int(argv[2])))
        while True:
            d, a = s.recvfrom(2048); s.sendto(d, a)
    if kind == "udp_ping":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
        n = int(argv[3]); lat = []
        for i in range(n + 50):
            t0 = time.perf_counter_ns(); s.sendto(b"x", (argv[1], int(argv[2]))); s.recvfrom(64)
            if i >= 50: lat.append((time.perf_counter_ns() - t0) / 1000)
        lat.sort()
        print(json.dumps({"p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)]}))
    if kind == "tcp_source":
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((argv[1], int(argv[2]))); s.listen()
        while True:
            c, _ = s.accept(); n = int(c.recv(32)); buf = bytes(1 << 16)
            while n > 0:
                k = c.send(buf[:min(n, len(buf))]); n -= k
            c.close()
    if kind == "tcp_sink":
        c = socket.create_connection((argv[1], int(argv[2]))); c.sendall(argv[3].encode().ljust(32))
        got = 0; t0 = None
        while True:
            d = c.recv(1 << 20)
            if not d: break
            if t0 is None: t0 = time.perf_counter()
            got += len(d)
        print(json.dumps({"mbs": got / (time.perf_counter() - t0) / 1e6, "bytes": got}))

def overhead(link, me):
    """The forwarder's own ceiling: 0 delay, 0 loss."""
    link.set(0, 0)
    py = sys.executable
    srv = [subprocess.Popen(link.run("host", [py, me, "_helper", "udp_echo", HOST_IP, "9000"])),
           subprocess.Popen(link.run("host", [py, me, "_helper", "tcp_source", HOST_IP, "9001"]))]
    try:
        time.sleep(0.5)
        out = {}
        ping = json.loads(sh(*link.run("client", [py, me, "_helper", "udp_ping", HOST_IP, "9000", "2000"]),
                             capture_output=True).stdout)
        out["udp_ping_p50_us"], out["udp_ping_p99_us"] = ping["p50"], ping["p99"]
        runs = [json.loads(sh(*link.run("client", [py, me, "_helper", "tcp_sink", HOST_IP, "9001", "300000000"]),
                              capture_output=True).stdout)["mbs"] for _ in range(3)]
        out["tcp_bulk_mbs"] = statistics.median(runs)
        return out
    finally:
        for p in srv: p.kill(); p.wait()

# ---------------------------------------------------------------- the two tools

def start_sshd(link, tmp):
    cmd, uk = pty_bench.sshd_files(tmp, HOST_IP, SSH_PORT)
    p = subprocess.Popen(link.run("host", cmd), stderr=subprocess.DEVNULL)
    ssh = link.run("client", ["ssh", "-F", "/dev/null", "-tt", "-p", str(SSH_PORT), "-i", uk,
                              "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                              "-o", "LogLevel=ERROR", HOST_IP])
    for _ in range(100):
        if sh(*ssh, "true", check=False, stdin=subprocess.DEVNULL,
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0: break
        time.sleep(0.1)
    else:
        raise RuntimeError("sshd never answered")
    return p, ssh

def start_peer(link, peer, env, tmp):
    hosth, clienth = os.path.join(tmp, "peer-host"), os.path.join(tmp, "peer-client")
    host = subprocess.Popen(link.run("host", [peer, "host", "--listen", HOST_IP, "--advertise", HOST_IP,
                                              "--kill-sessions-on-exit"]),
                            env=dict(env, PEER_HOME=hosth), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    url = None
    for line in host.stdout:
        line = line.decode()
        if line.startswith("pairing URL: "): url = line.split(": ", 1)[1].strip(); break
    if url is None: raise RuntimeError("peer host printed no pairing URL")
    threading.Thread(target=lambda: [None for _ in host.stdout], daemon=True).start()
    cenv = dict(env, PEER_HOME=clienth)
    sh(*link.run("client", [peer, "pair", url, "--name", "bench"]), env=cenv, stdout=subprocess.DEVNULL)
    return host, url, cenv

# ---------------------------------------------------------------- measurements

def notices(path):
    try:
        with open(path, errors="replace") as f: lines = f.read().splitlines()
    except OSError: return 0, []
    hits = [m.group(1) for l in lines for m in NOTICE.finditer(l)]
    return len(hits), hits[:3]

def echo(cmd, n, env, errpath, warm=10):
    with open(errpath, "w") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env)
    ifd, ofd = p.stdin.fileno(), p.stdout.fileno()
    try:
        pty_bench.read_until(ofd, b"READY", 90)
        lat = []
        for i in range(n + warm):
            t0 = time.perf_counter_ns()
            os.write(ifd, b"x")
            pty_bench.read_until(ofd, b"x", 60)
            if i >= warm: lat.append((time.perf_counter_ns() - t0) / 1000.0)
    finally:
        p.kill(); p.wait()
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
    return {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": lat[-1]}

def ss_probe(link, into):
    """The congestion control ssh's sockets really use, read from the host side after 3 s."""
    time.sleep(3)
    o = subprocess.run(link.run("host", ["ss", "-tin", "sport", f"= :{SSH_PORT}"]), capture_output=True, text=True).stdout
    into.extend(sorted(set(re.findall(r"\b(cubic|bbr|reno)\b", o))))

def throughput(cmd, env, errpath, cap):
    with open(errpath, "w") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env)
    ofd = p.stdout.fileno(); total = 0; t0 = t_last = None; cut = False
    first_by = time.monotonic() + 60
    try:
        while True:
            left = (t0 + cap if t0 is not None else first_by) - time.monotonic()
            if left <= 0 or not select.select([ofd], [], [], left)[0]:
                cut = True; break
            chunk = os.read(ofd, 1 << 20)
            if not chunk: break
            t_last = time.monotonic()
            if t0 is None: t0 = t_last
            total += len(chunk)
    finally:
        p.kill(); p.wait()
    dt = (t_last - t0) if t0 is not None and t_last > t0 else float("nan")
    return {"mbs": total / dt / 1e6 if total else 0.0, "bytes": total, "secs": dt, "cut": cut}

def delta(a, b):
    return {f"{d}/{pr}/{k}": b[(d, pr, k)] - a[(d, pr, k)] for (d, pr, k) in b if b[(d, pr, k)] != a[(d, pr, k)]}

def proto_bytes(dl):
    out = collections.Counter()
    for key, v in dl.items():
        d, pr, k = key.split("/")
        if k == "bytes": out[pr] += v
    return dict(out)

def fmt_ms(us): return f"{us/1000:.1f}" if us < 10_000_000 else "–"

def table(results):
    rows = ["| RTT | loss | tool | echo p50 (ms) | p90 | p99 | throughput (MB/s) | bytes received, per run | peer notices |",
            "| ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    med = statistics.median
    for imp in sorted(results, key=lambda i: (i["rtt"], i["loss"])):
        for tool in dict.fromkeys(r["tool"] for r in imp["runs"]):
            rs = [r for r in imp["runs"] if r["tool"] == tool]
            ec = [r["echo"] for r in rs if r.get("echo")]
            tp = [r["thru"] for r in rs if r.get("thru")]
            if not ec and not tp: continue
            e = lambda k: fmt_ms(med([x[k] for x in ec])) if ec else "–"
            mbs = f"{med([x['mbs'] for x in tp]):.2f}" if tp else "–"
            got = ", ".join(f"{x['bytes']/1e6:.0f} MB{' (cut at ' + format(x['secs'], '.0f') + ' s)' if x['cut'] else ''}" for x in tp)
            nt = str(sum(r.get("notices", 0) for r in rs)) if tool == "peer" else "–"
            rows.append(f"| {imp['rtt']} ms | {imp['loss']*100:g} % | {tool} | {e('p50')} | {e('p90')} | {e('p99')} | "
                        f"{mbs} | {got} | {nt} |")
    return "\n".join(rows)

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_helper":
        return helper(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--echo", type=int, default=200, help="keystrokes per run")
    ap.add_argument("--bytes", type=int, default=100_000_000, help="bytes per throughput run")
    ap.add_argument("--cap", type=float, default=25, help="cut a throughput run after this many seconds")
    ap.add_argument("--runs", type=int, default=2, help="runs per tool and impairment")
    ap.add_argument("--matrix", default="50/1,150/3,50/0,150/0,50/3,150/1",
                    help="RTT_MS/LOSS_PERCENT pairs, in the order to run them")
    ap.add_argument("--rate-mbit", type=float, help="bandwidth cap per direction (default: none)")
    ap.add_argument("--ssh-cc", default="cubic,bbr",
                    help="TCP congestion controls to run ssh with (route attribute, both ends); "
                         "echo is measured with the first only")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write results here after every measurement")
    ap.add_argument("--skip-overhead", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0: sys.exit("needs root: network namespaces and /dev/net/tun")
    peer = os.path.abspath(a.peer); me = os.path.abspath(__file__)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = {k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"}
    env.update(PEER_KEY_STORE="file", RUST_LOG="error")
    tmp = tempfile.mkdtemp(prefix="peer-impaired-")
    out = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "load_start": os.getloadavg(),
           "args": vars(a), "impairments": []}
    def save():
        if a.json:
            with open(a.json, "w") as f: json.dump(out, f, indent=1)
    procs = []
    try:
        with Link(a.seed) as link:
            if a.rate_mbit: link.params.rate = a.rate_mbit * 1e6 / 8
            out["cc"] = sh(*link.run("client", ["sysctl", "-n", "net.ipv4.tcp_congestion_control"]),
                           capture_output=True, text=True).stdout.strip()
            if not a.skip_overhead:
                out["overhead"] = overhead(link, me)
                print(f"forwarder at 0 delay, 0 loss: {out['overhead']}", file=sys.stderr); save()
            sshd, ssh = start_sshd(link, tmp); procs.append(sshd)
            host, url, cenv = start_peer(link, peer, env, tmp); procs.append(host)
            out["pairing_url_host"] = re.sub(r"#.*", "#…", url)
            if HOST_IP not in url: raise RuntimeError(f"pairing URL does not name {HOST_IP}: {url}")
            ccs = a.ssh_cc.split(",")
            tools = {f"ssh ({cc})": (lambda r: ssh + [r], env, cc) for cc in ccs}
            tools["peer"] = (lambda r: link.run("client", [peer, "attach", "--new", "--", "sh", "-c", r]), cenv, None)
            names = list(tools)
            raw = "stty raw -echo; printf READY; cat"
            zero = f"head -c {a.bytes} /dev/zero"
            for spec in a.matrix.split(","):
                rtt, loss = spec.split("/"); rtt = int(rtt); loss = float(loss) / 100
                link.set(rtt, loss)
                imp = {"rtt": rtt, "loss": loss, "runs": []}; out["impairments"].append(imp)
                for run in range(a.runs):
                    order = names if run % 2 == 0 else names[::-1]
                    for tool in order:
                        mk, e, cc = tools[tool]
                        if cc: link.set_cc(cc)
                        r = {"tool": tool, "run": run}
                        errp = os.path.join(tmp, f"{tool}-{rtt}-{loss}-{run}.err")
                        s0 = link.stats.snap()
                        if cc in (None, ccs[0]):   # echo hardly depends on the congestion control
                            try: r["echo"] = echo(mk(raw), a.echo, e, errp + ".echo")
                            except (TimeoutError, EOFError) as x: r["echo_error"] = str(x)
                        seen = []
                        if cc: threading.Thread(target=ss_probe, args=(link, seen), daemon=True).start()
                        try: r["thru"] = throughput(mk(zero), e, errp + ".thru", a.cap)
                        except (TimeoutError, EOFError) as x: r["thru_error"] = str(x)
                        s1 = link.stats.snap()
                        if cc: r["cc_seen"] = seen
                        r["link"] = delta(s0, s1); r["proto_bytes"] = proto_bytes(r["link"])
                        if tool == "peer":
                            n1, h1 = notices(errp + ".echo"); n2, h2 = notices(errp + ".thru")
                            r["notices"] = n1 + n2; r["notice_lines"] = h1 + h2
                        imp["runs"].append(r); save()
                        ec, tp = r.get("echo"), r.get("thru")
                        print(f"{rtt} ms {loss*100:g} % run {run+1} {tool}: "
                              + (f"echo p50 {ec['p50']/1000:.1f} p90 {ec['p90']/1000:.1f} p99 {ec['p99']/1000:.1f} ms; "
                                 if ec else (f"echo failed ({r['echo_error']}); " if "echo_error" in r else ""))
                              + (f"{tp['mbs']:.2f} MB/s, {tp['bytes']} B in {tp['secs']:.1f} s{' (cut)' if tp['cut'] else ''}; "
                                 if tp else f"throughput failed ({r.get('thru_error')}); ")
                              + f"link bytes {r['proto_bytes']}" + (f"; cc seen {r['cc_seen']}" if cc else "")
                              + (f"; notices {r['notices']} {r['notice_lines']}" if tool == "peer" else ""),
                              file=sys.stderr, flush=True)
            out["load_end"] = os.getloadavg(); out["ended"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
            save()
            print(table(out["impairments"]))
            for p in procs: p.terminate()
            for p in procs:
                try: p.wait(timeout=15)
                except subprocess.TimeoutExpired: p.kill()
    finally:
        for p in procs:
            if p.poll() is None: p.kill(); p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
