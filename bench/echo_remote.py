#!/usr/bin/env python3
"""Perceived keystroke echo at a shell prompt for ssh and mosh over an impaired link, to set
beside peer's (`cargo test -p peer --test it -- bench_perceived_echo --ignored --nocapture`).

ssh: a throwaway sshd (bench/pty_bench.py's), reached through a TCP proxy that delays every
chunk by --delay ms each way (no loss: TCP would hide it as retransmission delay).
mosh: `mosh-server new` on loopback, `mosh-client` reaching it through a UDP proxy with the same
delay and --loss (its default adaptive prediction on).

Each client runs in a pseudo-terminal with `bash --norc --noprofile` (PS1='$ '); at a comment
line ('#' first) a letter is typed and the time until it reaches the client's terminal is
recorded, one key every 250 ms, 40 keys a line.
"""
import argparse, asyncio, os, pty, random, re, select, subprocess, sys, tempfile, termios, threading, time

sys.path.insert(0, os.path.dirname(__file__))
from pty_bench import start_sshd, free_port  # noqa: E402

ALPHABET = b"abcdefgijknopqrstuvwxyz"  # no final byte of the escapes clients write (H, m, h, l)


def tcp_proxy(port, upstream, delay):
    async def pipe(r, w):
        q = asyncio.Queue()
        async def pump():
            while True:
                due, data = await q.get()
                await asyncio.sleep(max(0, due - time.monotonic()))
                if not data:
                    w.close(); return
                w.write(data); await w.drain()
        t = asyncio.create_task(pump())
        while True:
            data = await r.read(65536)
            q.put_nowait((time.monotonic() + delay, data))
            if not data:
                break
        await t
    async def handle(cr, cw):
        ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
        await asyncio.gather(pipe(cr, uw), pipe(ur, cw), return_exceptions=True)
    async def main():
        s = await asyncio.start_server(handle, "127.0.0.1", port)
        await s.serve_forever()
    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()


def udp_proxy(port, upstream, delay, loss):
    class P(asyncio.DatagramProtocol):
        def __init__(self): self.client = None
        def connection_made(self, t): self.t = t
        def datagram_received(self, data, addr):
            loop = asyncio.get_running_loop()
            if random.random() < loss:
                return
            if addr[1] == upstream:
                if self.client: loop.call_later(delay, self.t.sendto, data, self.client)
            else:
                self.client = addr
                loop.call_later(delay, self.t.sendto, data, ("127.0.0.1", upstream))
    async def main():
        await asyncio.get_running_loop().create_datagram_endpoint(P, local_addr=("127.0.0.1", port))
        await asyncio.Event().wait()
    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()


def measure(argv, keys, env=None):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env or os.environ)
    termios.tcsetwinsize(fd, (24, 80))
    out = bytearray()
    def read(t):
        r, _, _ = select.select([fd], [], [], t)
        if r:
            try: out.extend(os.read(fd, 65536))
            except OSError: pass
    def wait_for(pat, timeout=30):
        end = time.monotonic() + timeout
        while not re.search(pat, bytes(out)):
            if time.monotonic() > end: raise TimeoutError(bytes(out[-300:]))
            read(0.05)
    wait_for(rb"\$ ")
    rng = random.Random(7)
    ms = []
    while len(ms) < keys:
        os.write(fd, b"#"); time.sleep(0.4); read(0)
        for _ in range(40):
            ch = rng.choice(ALPHABET)
            read(0); start = len(out)
            t = time.perf_counter()
            os.write(fd, bytes([ch]))
            while ch not in out[start:]:
                read(0.0005)
                if time.perf_counter() - t > 10: raise TimeoutError("no echo")
            ms.append((time.perf_counter() - t) * 1000)
            end = time.monotonic() + 0.25
            while time.monotonic() < end: read(0.02)
        os.write(fd, b"\r"); time.sleep(0.4); read(0)
    os.kill(pid, 9); os.waitpid(pid, 0)
    ms.sort()
    q = lambda p: ms[round((len(ms) - 1) * p)]
    return len(ms), q(0.5), q(0.9), q(0.99), ms[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delay", type=float, default=75, help="ms each way (RTT twice this)")
    ap.add_argument("--loss", type=float, default=0.01, help="UDP loss (mosh)")
    ap.add_argument("--keys", type=int, default=100)
    a = ap.parse_args()
    d = a.delay / 1000
    shell = ["env", "PS1=$ ", "INPUTRC=/dev/null", "bash", "--norc", "--noprofile", "-i"]
    with tempfile.TemporaryDirectory() as tmp:
        sshd, ssh = start_sshd(tmp)
        try:
            port = free_port(); sshd_port = int(ssh[ssh.index("-p") + 1])
            tcp_proxy(port, sshd_port, d)
            ssh[ssh.index("-p") + 1] = str(port)
            r = measure(ssh + [" ".join(f"'{x}'" for x in shell)], a.keys)
            print(f"ssh (TCP, {a.delay:.0f} ms each way, no loss): {r[0]} keys, p50 {r[1]:.1f} ms, p90 {r[2]:.1f}, p99 {r[3]:.1f}, max {r[4]:.1f}")
        finally:
            sshd.kill()
    if subprocess.run(["which", "mosh-server"], capture_output=True).returncode == 0:
        sport = free_port()
        env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8")
        o = subprocess.run(["mosh-server", "new", "-i", "127.0.0.1", "-p", str(sport), "--"] + shell,
                           capture_output=True, text=True, env=env)
        m = re.search(r"MOSH CONNECT (\d+) (\S+)", o.stdout)
        if not m:
            print("mosh-server did not start:", o.stdout, o.stderr); return
        port = free_port()
        udp_proxy(port, int(m.group(1)), d, a.loss)
        r = measure(["mosh-client", "127.0.0.1", str(port)], a.keys, dict(env, MOSH_KEY=m.group(2)))
        print(f"mosh (UDP, {a.delay:.0f} ms each way, {a.loss*100:.0f} % loss, prediction adaptive): {r[0]} keys, p50 {r[1]:.1f} ms, p90 {r[2]:.1f}, p99 {r[3]:.1f}, max {r[4]:.1f}")


if __name__ == "__main__":
    main()
