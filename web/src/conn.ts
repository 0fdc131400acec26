// One host: a WebSocket to the bridge, the Noise channel over it, requests and attached
// terminal channels, and resume after any loss (new socket, handshake, re-attach at the
// offsets, re-send unacknowledged input).
import { concat, fromHex, fromUtf8, hex, utf8 } from './bytes';
import { decodeHost, encodeControl, encodeInput, FROM_NOW, MAX_BINARY_DATA } from './channel';
import type {
  AgentAttached,
  AgentEvent,
  Attached,
  BrowserToHost,
  ErrorCode,
  HostToBrowser,
  Reply,
  Request,
  WinSize,
  WireError,
} from './gen/protocol';
import { Initiator, type StaticKey, type Transport } from './noise';
import { pairingId, shortCode } from './sas';
import type { PairingPayload } from './payload';

export const MODE_PAIR = 0x01;
export const MODE_DEVICE = 0x02;
const CONNECT_TIMEOUT_MS = 8000;
/**
 * After a ^C skip-ahead the channel re-attaches this far before the host's output end, so the
 * ^C's echo and the prompt are shown even when the host applied the ^C before the re-attach: what
 * the host appends after a ^C is at most the PTY chunk its reader already holds (64 KiB) plus the
 * echo and the prompt.
 */
export const SKIP_TAIL = 80 * 1024;

const REFUSALS: Record<number, string> = {
  1: 'The host does not know this pairing code (never issued, or the host restarted). Create a new one with `peer pair`.',
  2: 'This pairing code has expired. Create a new one on the host with `peer pair`.',
  3: 'This pairing code was already used. Create a new one on the host with `peer pair`.',
  4: 'This pairing code is locked after failed attempts. Create a new one on the host.',
  5: 'The host could not read the handshake: the code does not belong to this host.',
  6: 'The host does not know this browser any more: pair again.',
  7: 'This browser was revoked on the host.',
};

export class Refused extends Error {
  constructor(
    readonly code: number,
    reason: string,
  ) {
    super(REFUSALS[code] ?? `The host refused: ${reason}`);
  }
}

/** A request the host answered with an error; `code` tells `Conflict` and the like apart. */
export class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function prologue(hostId: Uint8Array): Uint8Array {
  return concat(utf8.encode('peer/bridge/1'), hostId);
}

/** A WebSocket carrying whole binary messages, with a queue for the receiving side. */
class Socket {
  queue: Uint8Array[] = [];
  private waiters: ((m: Uint8Array | null) => void)[] = [];
  closed = false;
  closeReason = '';
  onMessage: ((m: Uint8Array) => void) | null = null;
  onClose: (() => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (e) => {
      if (!(e.data instanceof ArrayBuffer)) return;
      const m = new Uint8Array(e.data);
      if (this.onMessage) this.onMessage(m);
      else {
        const w = this.waiters.shift();
        if (w) w(m);
        else this.queue.push(m);
      }
    };
    ws.onclose = (e) => this.gone(e.reason || `closed (${e.code})`);
    ws.onerror = () => this.gone('connection failed');
  }

  static open(url: string, timeoutMs: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`no answer from ${url}`));
      }, timeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(new Socket(ws));
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`cannot reach the bridge at ${url}`));
      };
    });
  }

  private gone(reason: string) {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    for (const w of this.waiters.splice(0)) w(null);
    this.onClose?.();
  }

  send(m: Uint8Array) {
    if (!this.closed && this.ws.readyState === WebSocket.OPEN) this.ws.send(m as Uint8Array<ArrayBuffer>);
  }

  recv(): Promise<Uint8Array | null> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closed) return Promise.resolve(null);
    return new Promise((r) => this.waiters.push(r));
  }

  close() {
    try {
      this.ws.close();
    } catch {
      /* already closed */
    }
    this.gone('closed by the app');
  }
}

async function handshake(
  sock: Socket,
  hostId: Uint8Array,
  hostKey: Uint8Array,
  key: StaticKey,
  psk: Uint8Array,
  payload: Uint8Array,
): Promise<Transport> {
  const init = new Initiator({ staticKey: key, remoteStatic: hostKey, psk, prologue: prologue(hostId) });
  sock.send(await init.writeMessage1(payload));
  const answer = await sock.recv();
  if (!answer || answer.length === 0) throw new Error(`the bridge closed the socket: ${sock.closeReason}`);
  if (answer[0] !== 0) throw new Refused(answer[0], fromUtf8.decode(answer.subarray(1)));
  try {
    return await init.readMessage2(answer.subarray(1));
  } catch {
    throw new Error("The host's answer does not match this pairing code (wrong code, or someone in the middle).");
  }
}

/** Candidate bridge URLs: this page's own origin first, then the payload's relays. */
export function bridgeUrls(hostId: Uint8Array, relays: string[], origin: string): string[] {
  const path = `bridge/${hex(hostId)}`;
  const ws = (base: string) => base.replace(/^http/, 'ws').replace(/\/?$/, '/') + path;
  const out = [ws(origin + '/'), ...relays.map(ws)];
  return [...new Set(out)];
}

export interface PairResult {
  code: string;
  hostName: string;
  role: string;
  psk: string;
}

/**
 * Pairs this browser with the host of `payload`. `onCode` gets the short code as soon as the
 * handshake is done (before the host confirms), so both screens show it at once.
 */
export async function pair(
  payload: PairingPayload,
  key: StaticKey,
  name: string,
  urls: string[],
  onCode: (code: string) => void,
): Promise<PairResult> {
  let lastErr: unknown = new Error('no bridge to try');
  for (const url of urls) {
    let sock: Socket;
    try {
      sock = await Socket.open(url, CONNECT_TIMEOUT_MS);
    } catch (e) {
      lastErr = e;
      continue;
    }
    try {
      const t = await handshake(
        sock,
        payload.hostId,
        payload.hostNoiseKey,
        key,
        payload.secret,
        concat(new Uint8Array([MODE_PAIR]), pairingId(payload.secret)),
      );
      const code = shortCode(t.handshakeHash);
      onCode(code);
      sock.send(t.send.encrypt(encodeControl({ type: 'pair_confirm', name })));
      const ct = await sock.recv();
      if (!ct) throw new Error(`the host closed the channel: ${sock.closeReason}`);
      const msg = decodeHost(t.recv.decrypt(ct));
      if (msg.kind === 'control' && msg.msg.type === 'paired') {
        return { code, hostName: msg.msg.host_name, role: String(msg.msg.role), psk: msg.msg.device_psk };
      }
      if (msg.kind === 'control' && msg.msg.type === 'error') throw new Error(msg.msg.error.message);
      throw new Error('unexpected answer from the host');
    } finally {
      sock.close();
    }
  }
  throw lastErr;
}

export type ConnState = 'connecting' | 'online' | 'offline' | 'failed';

export interface ChannelEvents {
  output(data: Uint8Array, offset: number): void;
  attached(a: Attached): void;
  exited(code: number, signal: string | null): void;
  error(message: string): void;
  gap(from: number, to: number): void;
  /** After an interrupt during a flood: output now continues from `offset`. */
  skipped?(offset: number): void;
}

interface Channel {
  id: number;
  session: number;
  token: number;
  /** Offset of the next output byte not yet received. */
  offset: number;
  nextSeq: number;
  unacked: { seq: number; data: Uint8Array }[];
  size: WinSize;
  events: ChannelEvents;
  attached: boolean;
  /** Output bytes received recently, to tell a flood. */
  recent: { at: number; bytes: number; prev: number };
  /** Set by a ^C skip-ahead: the offset reached when it was pressed (re-attach no lower). */
  skipFrom: number | null;
}

export interface AgentChannelEvents {
  attached(a: AgentAttached): void;
  /** Each event once, in order: a catch-up overlapping what was seen is skipped. */
  event(e: AgentEvent): void;
  error(message: string): void;
}

interface AgentChannel {
  id: number;
  session: number;
  /** The next sequence number wanted: a re-attach asks from here. */
  nextSeq: number;
  events: AgentChannelEvents;
  attached: boolean;
  /** The socket generation the last `agent_attach` went out on (0: none). */
  sentOn: number;
}

export interface HostInfo {
  id: Uint8Array;
  noiseKey: Uint8Array;
  psk: Uint8Array;
  bridges: string[];
}

/** A live connection to one host that keeps itself alive. */
export class HostConn {
  state: ConnState = 'offline';
  detail = '';
  hostName = '';
  role = '';
  instance: number | null = null;
  onState: (() => void) | null = null;
  /** The host restarted: every channel's session is gone. */
  onRestart: (() => void) | null = null;
  /** Agent events received again (below the seq asked for); 0 when every re-attach asks right. */
  agentRepeats = 0;
  /** How often an interrupt skipped a flood's backlog (for tests and the curious). */
  skipAheads = 0;

  private sock: Socket | null = null;
  private tx: Transport | null = null;
  private gen = 0;
  private nextReq = 1;
  private pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private channels = new Map<number, Channel>();
  private agentChannels = new Map<number, AgentChannel>();
  private nextChannel = 1;
  private retry = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private readyWaiters: (() => void)[] = [];

  constructor(
    private readonly host: HostInfo,
    private readonly key: StaticKey,
  ) {}

  private setState(s: ConnState, detail = '') {
    this.state = s;
    this.detail = detail;
    this.onState?.();
  }

  /** Opens a fresh socket now (dropping the current one), handshakes and resumes. */
  reconnect(keepOld = false) {
    if (this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.connect(keepOld);
  }

  /** For tests: lose the socket as a phone does (no goodbye), then resume. */
  dropSocket() {
    this.sock?.close();
  }

  stop() {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.sock?.close();
  }

  /**
   * `keepOld`: leave the current socket open (its messages are ignored from now on) until the
   * new one is up, so what was just sent on it (a ^C) still reaches the host at once.
   */
  private async connect(keepOld = false) {
    const gen = ++this.gen;
    const old = this.sock;
    this.sock = null;
    this.tx = null;
    if (!keepOld) old?.close();
    const closeOld = () => {
      if (keepOld) old?.close();
    };
    for (const c of this.channels.values()) c.attached = false;
    for (const c of this.agentChannels.values()) c.attached = false;
    this.setState('connecting');
    let lastErr: unknown = null;
    for (const url of this.host.bridges) {
      if (gen !== this.gen) return;
      try {
        const sock = await Socket.open(url, CONNECT_TIMEOUT_MS);
        if (gen !== this.gen) {
          sock.close();
          return;
        }
        const t = await Promise.race([
          handshake(sock, this.host.id, this.host.noiseKey, this.key, this.host.psk, new Uint8Array([MODE_DEVICE])),
          new Promise<never>((_, rej) => setTimeout(() => rej(new Error('handshake timed out')), CONNECT_TIMEOUT_MS)),
        ]);
        if (gen !== this.gen) {
          sock.close();
          return;
        }
        this.sock = sock;
        this.tx = t;
        sock.onMessage = (m) => this.onMessage(gen, m);
        sock.onClose = () => this.lost(gen, sock.closeReason);
        // Messages that arrived during the handshake.
        for (;;) {
          const early = sock.queue.shift();
          if (!early) break;
          this.onMessage(gen, early);
        }
        if (sock.closed) this.lost(gen, sock.closeReason);
        closeOld();
        return;
      } catch (e) {
        lastErr = e;
        if (e instanceof Refused) {
          this.setState('failed', e.message);
          this.stopped = true;
          return;
        }
      }
    }
    closeOld();
    this.lost(gen, lastErr instanceof Error ? lastErr.message : String(lastErr));
  }

  private lost(gen: number, reason: string) {
    if (gen !== this.gen || this.stopped) return;
    this.sock = null;
    this.tx = null;
    for (const c of this.channels.values()) c.attached = false;
    for (const c of this.agentChannels.values()) c.attached = false;
    for (const p of this.pending.values()) p.reject(new Error('connection lost'));
    this.pending.clear();
    const delay = Math.min(100 * 2 ** Math.min(this.retry, 6), 5000) * (1 + Math.random() / 4);
    this.retry++;
    this.setState('offline', reason);
    this.retryTimer = setTimeout(() => this.reconnect(), delay);
  }

  private sendPlain(plain: Uint8Array) {
    if (!this.sock || !this.tx) return false;
    this.sock.send(this.tx.send.encrypt(plain));
    return true;
  }

  private control(msg: BrowserToHost) {
    return this.sendPlain(encodeControl(msg));
  }

  private onMessage(gen: number, ct: Uint8Array) {
    if (gen !== this.gen || !this.tx) return;
    let msg;
    try {
      msg = decodeHost(this.tx.recv.decrypt(ct));
    } catch (e) {
      this.sock?.close();
      this.lost(gen, `bad message from the host: ${String(e)}`);
      return;
    }
    if (msg.kind === 'output') {
      const c = this.channels.get(msg.channel);
      if (!c) return;
      // Skip what we already have (overlap after a resume); a jump ahead would be a bug.
      const skip = Math.max(0, c.offset - msg.offset);
      if (skip >= msg.data.length) return;
      const data = msg.data.subarray(skip);
      const at = msg.offset + skip;
      c.offset = at + data.length;
      const now = performance.now();
      if (now - c.recent.at > 300) c.recent = { at: now, bytes: 0, prev: now - c.recent.at < 600 ? c.recent.bytes : 0 };
      c.recent.bytes += data.length;
      c.events.output(data, at);
      return;
    }
    this.onControl(msg.msg);
  }

  private onControl(m: HostToBrowser) {
    switch (m.type) {
      case 'hello': {
        const restarted = this.instance !== null && this.instance !== m.instance;
        this.hostName = m.host_name;
        this.role = String(m.role);
        this.instance = m.instance;
        this.retry = 0;
        if (restarted) {
          for (const c of this.channels.values()) c.events.error('The host restarted; this session ended with it.');
          this.channels.clear();
          this.onRestart?.();
        }
        this.setState('online');
        for (const c of this.channels.values()) {
          if (c.skipFrom !== null) void this.attachNearEnd(c, this.gen);
          else this.sendAttach(c);
        }
        // Agent sessions outlive host restarts (stable ids and sequence numbers): catch up.
        for (const c of this.agentChannels.values()) this.sendAgentAttach(c);
        for (const w of this.readyWaiters.splice(0)) w();
        break;
      }
      case 'response': {
        const p = this.pending.get(m.id);
        if (!p) break;
        this.pending.delete(m.id);
        if ('Ok' in m.result) p.resolve(m.result.Ok);
        else p.reject(new RequestError(m.result.Err.code, m.result.Err.message));
        break;
      }
      case 'attached': {
        const c = this.channels.get(m.channel);
        if (!c) break;
        c.attached = true;
        if (c.offset === FROM_NOW) {
          c.events.skipped?.(m.attached.start_offset);
          c.offset = m.attached.start_offset;
        }
        if (c.offset < m.attached.start_offset) c.offset = m.attached.start_offset;
        c.unacked = c.unacked.filter((u) => u.seq > m.attached.input_acked);
        for (const u of c.unacked) this.sendPlain(encodeInput(c.id, u.seq, u.data));
        c.events.attached(m.attached);
        break;
      }
      case 'input_ack': {
        const c = this.channels.get(m.channel);
        if (c) c.unacked = c.unacked.filter((u) => u.seq > m.seq);
        break;
      }
      case 'gap': {
        const c = this.channels.get(m.channel);
        if (!c) break;
        c.offset = Math.max(c.offset, m.gap.to);
        c.events.gap(m.gap.from, m.gap.to);
        break;
      }
      case 'exited': {
        const c = this.channels.get(m.channel);
        if (!c) break;
        this.channels.delete(m.channel);
        c.events.exited(m.exited.status.code, m.exited.status.signal);
        break;
      }
      case 'agent_attached': {
        const c = this.agentChannels.get(m.channel);
        if (!c) break;
        c.attached = true;
        c.events.attached(m.attached);
        break;
      }
      case 'agent_event': {
        const c = this.agentChannels.get(m.channel);
        if (!c) break;
        if (m.event.seq < c.nextSeq) {
          this.agentRepeats++;
          break;
        }
        c.nextSeq = m.event.seq + 1;
        c.events.event(m.event);
        break;
      }
      case 'error': {
        if (m.channel === null) {
          this.sock?.close();
          this.lost(this.gen, (m.error as WireError).message);
          break;
        }
        const ac = this.agentChannels.get(m.channel);
        if (ac) {
          this.agentChannels.delete(m.channel);
          ac.events.error(m.error.message);
          break;
        }
        const c = this.channels.get(m.channel);
        if (!c) break;
        this.channels.delete(m.channel);
        c.events.error(m.error.message);
        break;
      }
      default:
        break;
    }
  }

  /** Resolves once the channel is online (starting it if needed). */
  ready(): Promise<void> {
    if (this.state === 'online') return Promise.resolve();
    if (this.state === 'failed') return Promise.reject(new Error(this.detail));
    if (this.state === 'offline' && !this.sock && !this.retryTimer) this.reconnect();
    return new Promise((r) => this.readyWaiters.push(r));
  }

  async request(request: Request): Promise<Reply> {
    await this.ready();
    const id = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (!this.control({ type: 'request', id, request })) {
        this.pending.delete(id);
        reject(new Error('not connected'));
      }
    });
  }

  /** Attaches a new channel to `session` from `fromOffset`; it follows every reconnect. */
  attach(session: number, fromOffset: number, size: WinSize, events: ChannelEvents): number {
    const id = this.nextChannel++;
    const c: Channel = {
      id,
      session,
      // Random, non-zero, below 2^53 so JSON numbers carry it exactly.
      token: 1 + Math.floor(Math.random() * (2 ** 52 - 1)),
      offset: fromOffset,
      nextSeq: 1,
      unacked: [],
      size,
      events,
      attached: false,
      recent: { at: 0, bytes: 0, prev: 0 },
      skipFrom: null,
    };
    this.channels.set(id, c);
    if (this.state === 'online') this.sendAttach(c);
    else void this.ready();
    return id;
  }

  /**
   * Attaches a channel to agent session `session`'s events from `fromSeq` (0: the whole
   * transcript); after every reconnect it re-attaches from the last event received + 1.
   */
  attachAgent(session: number, fromSeq: number, events: AgentChannelEvents): number {
    const id = this.nextChannel++;
    const c: AgentChannel = { id, session, nextSeq: fromSeq, events, attached: false, sentOn: 0 };
    this.agentChannels.set(id, c);
    if (this.state === 'online') this.sendAgentAttach(c);
    else void this.ready();
    return id;
  }

  private sendAgentAttach(c: AgentChannel) {
    if (this.tx) c.sentOn = this.gen;
    this.control({ type: 'agent_attach', channel: c.id, attach: { session: c.session, from_seq: c.nextSeq } });
  }

  detachAgent(channel: number) {
    const c = this.agentChannels.get(channel);
    if (!c) return;
    this.agentChannels.delete(channel);
    // Also when the answer is still on its way: the host has the channel once it read the attach.
    if (c.sentOn === this.gen && this.tx) this.control({ type: 'detach', channel });
  }

  /** Agent channels, for tests. */
  agentStats() {
    return [...this.agentChannels.values()].map((c) => ({ id: c.id, session: c.session, nextSeq: c.nextSeq, attached: c.attached }));
  }

  private sendAttach(c: Channel) {
    this.control({
      type: 'attach',
      channel: c.id,
      attach: { session: c.session, from_offset: c.offset, client_token: c.token, size: c.size },
    });
  }

  /** Sends keystrokes; kept until acknowledged and re-sent after a reconnect. */
  input(channel: number, data: Uint8Array) {
    const c = this.channels.get(channel);
    if (!c) return;
    for (let at = 0; at < data.length; at += MAX_BINARY_DATA) {
      const part = data.slice(at, at + MAX_BINARY_DATA);
      const seq = c.nextSeq++;
      c.unacked.push({ seq, data: part });
      if (c.attached) this.sendPlain(encodeInput(c.id, seq, part));
    }
  }

  /**
   * Ctrl-C. Sent at once; if the channel is flooding, the host's backlog (up to its whole
   * output buffer) and the bytes in flight on this socket would still have to arrive before the
   * prompt shows. So the app also skips ahead: a fresh socket re-attaches the channel at the live
   * end of the output, with the same client token (input dedup holds: the ^C is applied once).
   */
  interrupt(channel: number) {
    const c = this.channels.get(channel);
    if (!c) return;
    this.input(channel, new Uint8Array([3]));
    const flooding = performance.now() - c.recent.at < 600 && c.recent.bytes + c.recent.prev > 128 * 1024;
    if (flooding && this.state === 'online') {
      this.skipAheads++;
      c.skipFrom = c.offset;
      this.reconnect(true);
    }
  }

  /**
   * The skip-ahead's re-attach: asks the host where the session's output ends now and attaches
   * `SKIP_TAIL` bytes before that (never below what was already received), so the backlog is
   * skipped but the ^C's echo and the prompt after it are not. If the question fails, attaches
   * at the live end.
   */
  private async attachNearEnd(c: Channel, gen: number) {
    const from = c.skipFrom ?? c.offset;
    let offset = FROM_NOW;
    try {
      const r = await this.request('ListSessions');
      const s = typeof r === 'object' && 'Sessions' in r ? r.Sessions.find((x) => x.id === c.session) : undefined;
      if (s) offset = Math.max(from, s.output_end - SKIP_TAIL);
    } catch {
      /* fall back to the live end */
    }
    if (gen !== this.gen || this.channels.get(c.id) !== c || c.skipFrom === null) return;
    c.skipFrom = null;
    if (offset !== FROM_NOW) {
      c.events.skipped?.(offset);
      c.offset = offset;
    } else c.offset = FROM_NOW;
    this.sendAttach(c);
  }

  resize(channel: number, size: WinSize) {
    const c = this.channels.get(channel);
    if (!c) return;
    c.size = size;
    if (c.attached) this.control({ type: 'resize', channel, size });
  }

  detach(channel: number) {
    const c = this.channels.get(channel);
    if (!c) return;
    this.channels.delete(channel);
    if (c.attached) this.control({ type: 'detach', channel });
  }

  /** Offsets and unacked input per channel, for the connection panel and tests. */
  channelStats() {
    return [...this.channels.values()].map((c) => ({
      id: c.id,
      session: c.session,
      offset: c.offset,
      unacked: c.unacked.length,
      attached: c.attached,
      recentBytes: c.recent.bytes + c.recent.prev,
    }));
  }
}

export function hostInfo(rec: { id: string; noiseKey: string; psk: string; bridges: string[] }): HostInfo {
  return { id: fromHex(rec.id), noiseKey: fromHex(rec.noiseKey), psk: fromHex(rec.psk), bridges: rec.bridges };
}
