// One host: a WebSocket to the host (its own front, or a relay's bridge), the Noise channel over
// it carrying enveloped frames (channel.ts), requests and attached channels, and resume after
// any loss (new socket, handshake, re-attach at the offsets, re-send unacknowledged input).
import { concat, fromUtf8, hex, utf8, fromHex } from './bytes';
import { CONTROL, decodeEnvelope, encodeEnvelope, EnvelopeError } from './channel';
import {
  MAX_BROWSER_CHUNK,
  OUTPUT_WINDOW,
  PROTOCOL_VERSION,
  REFUSALS,
  WS_PROTOCOL,
  WS_REFUSED,
  WS_REVOKED,
  type AgentAttached,
  type AgentEvent,
  type Attached,
  type EchoAck,
  type ErrorCode,
  type Frame,
  type HostRoutes,
  type Reply,
  type Request,
  type WinSize,
} from './gen/protocol';
import { Initiator, type StaticKey, type Transport } from './noise';
import { pairingId, shortCode } from './sas';
import type { PairingPayload } from './payload';
import { bridgeUrls as bridgeUrlsHex } from './routes';

/** Message 1 payload of a pairing: 0x01 || pairing id. */
export const MODE_PAIR = 0x01;
/** Message 1 payload of a paired browser. */
export const MODE_DEVICE = 0x02;
/** `Attach.from_offset` meaning "only output from now on" (u64::MAX on the wire). */
export const FROM_NOW = Infinity;
const CONNECT_TIMEOUT_MS = 8000;
/** The largest picture of the screen accepted (the host draws at most 4 MiB). */
const MAX_PICTURE = 8 << 20;
/** While online the app pings the host this often (the host closes a socket silent for 8 s). */
export const PING_EVERY_MS = 2000;
/** No message at all for this long (two pings unanswered) and the link is declared dead. */
export const DEAD_AFTER_MS = 4500;
/**
 * Output received since the last `Received` that makes the app say it again. The host keeps
 * what a phone has not said it received, however much the sockets and buffers on the way held
 * when it vanished, so a resume loses nothing.
 */
export const RECEIVED_EVERY = OUTPUT_WINDOW / 4;
/** How often the app checks the link's silence against DEAD_AFTER_MS. */
export const CHECK_EVERY_MS = 500;
/** Reconnect attempts back off from 100 ms to at most this (any sign of life resets it). */
export const RETRY_CAP_MS = 1000;
/**
 * After a ^C skip-ahead the channel re-attaches this far before the host's output end, so the
 * ^C's echo and the prompt are shown even when the host applied the ^C before the re-attach: what
 * the host appends after a ^C is at most the PTY chunk its reader already holds (64 KiB) plus the
 * echo and the prompt.
 */
export const SKIP_TAIL = 80 * 1024;
/** What a channel is told when its session did not outlive a host restart. */
const ENDED_WITH_HOST = 'The host restarted; this session ended with it.';

/** Refusal code: this device was revoked. */
export const REFUSAL_REVOKED = 7;
/** Refusal code: the pairing code was used already. */
export const REFUSAL_USED = 3;

/** The host refused the handshake (a code of `REFUSALS`, or one this app does not know). */
export class Refused extends Error {
  constructor(
    readonly code: number,
    reason: string,
  ) {
    const known = REFUSALS[code];
    super(known ? known.text.charAt(0).toUpperCase() + known.text.slice(1) + '.' : `The host refused: ${reason}`);
  }
}

/** A handshake that got no answer in time. */
class HandshakeTimeout extends Error {}

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
  /** The WebSocket close code, once closed (0 when the socket failed without one). */
  closeCode = 0;
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
    ws.onclose = (e) => {
      this.closeCode = e.code;
      this.gone(e.reason || `closed (${e.code})`);
    };
    ws.onerror = () => this.gone('connection failed');
  }

  static open(url: string, timeoutMs: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(() => {
        ws.close();
        reject(new HandshakeTimeout(`no answer from ${url}`));
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

/**
 * Opens a socket to each of `urls` at once and handshakes on each; the first handshake to
 * complete wins and every other socket is closed. A refusal (authoritative: the host's word)
 * ends the race at once; otherwise, if all fail, the error of the first URL is thrown. Racing
 * matters when some URL cannot work (a page origin that is another host's front, an advertised
 * LAN address the phone cannot reach): its failure costs nothing while another path wins.
 */
async function race(
  urls: string[],
  openTimeoutMs: number,
  hs: (sock: Socket) => Promise<Transport>,
): Promise<{ sock: Socket; t: Transport }> {
  if (urls.length === 0) throw new Error('no bridge to try');
  return new Promise((resolve, reject) => {
    let done = false;
    let left = urls.length;
    const errors: unknown[] = new Array(urls.length);
    const sockets: Socket[] = [];
    const finish = () => {
      if (--left > 0 || done) return;
      done = true;
      reject(errors.find((e) => e instanceof Refused) ?? errors.find((e) => e !== undefined));
    };
    urls.forEach((url, i) => {
      void (async () => {
        let sock: Socket | null = null;
        try {
          sock = await Socket.open(url, openTimeoutMs);
          sockets.push(sock);
          if (done) return sock.close();
          const t = await hs(sock);
          if (done) return sock.close();
          done = true;
          for (const other of sockets) if (other !== sock) other.close();
          resolve({ sock, t });
        } catch (e) {
          sock?.close();
          errors[i] = e;
          if (e instanceof Refused && !done) {
            done = true;
            for (const other of sockets) other.close();
            reject(e);
            return;
          }
          finish();
        }
      })();
    });
  });
}

/** Candidate bridge URLs: this page's own origin first, then the payload's relays. */
export function bridgeUrls(hostId: Uint8Array, relays: string[], origin: string): string[] {
  return bridgeUrlsHex(hex(hostId), relays, origin);
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
  const { sock, t } = await race(urls, CONNECT_TIMEOUT_MS, (sock) =>
    handshake(
      sock,
      payload.hostId,
      payload.hostNoiseKey,
      key,
      payload.secret,
      concat(new Uint8Array([MODE_PAIR]), pairingId(payload.secret)),
    ),
  );
  try {
    const code = shortCode(t.handshakeHash);
    onCode(code);
    sock.send(t.send.encrypt(encodeEnvelope(CONTROL, { type: 'PairBrowser', message: { name } })));
    const ct = await sock.recv();
    if (!ct) throw new Error(`the host closed the channel: ${sock.closeReason}`);
    const env = decodeEnvelope(t.recv.decrypt(ct));
    if ('frame' in env && env.frame.type === 'BrowserPaired') {
      const p = env.frame.message;
      return { code, hostName: p.host_name, role: String(p.role), psk: hex(p.device_psk) };
    }
    if ('frame' in env && env.frame.type === 'Close') throw new Error(env.frame.message.reason);
    throw new Error('unexpected answer from the host');
  } finally {
    sock.close();
  }
}

export type ConnState = 'connecting' | 'online' | 'offline' | 'failed';

/** Why a connection stopped for good: each maps to a sentence and an action in the app. */
export type Failure =
  | { kind: 'revoked'; detail: string }
  | { kind: 'refused'; code: number; detail: string }
  | { kind: 'protocol'; detail: string }
  | { kind: 'version'; detail: string };

export interface ChannelEvents {
  output(data: Uint8Array, offset: number): void;
  attached(a: Attached): void;
  /**
   * The channel lost its attachment (the socket is gone or is being replaced): input is queued
   * until the next `attached`, which follows the resume (or `error`/`exited` if the session is
   * gone).
   */
  offline?(): void;
  exited(code: number, signal: string | null): void;
  error(message: string): void;
  gap(from: number, to: number): void;
  /** After an interrupt during a flood: output now continues from `offset`. */
  skipped?(offset: number): void;
  /**
   * A picture of the screen in place of output bytes (channels attached with `screen`): draw
   * `data` on a freshly reset terminal; output continues from `offset`. `skipped`: bytes of
   * output before `offset` this channel was owed and gets only as this picture.
   */
  repaint?(p: { offset: number; skipped: number; size: WinSize; data: Uint8Array }): void;
  /** The host applied inputs up to `seq` (a round-trip sample for predicted echo). */
  inputAck?(seq: number): void;
  /** Channels attached with `echoAcks`: the echo of inputs up to `a.seq` has arrived. */
  echoAck?(a: EchoAck): void;
}

interface Channel {
  id: number;
  session: number;
  token: number;
  /** Offset of the next output byte not yet received. */
  offset: number;
  /** The offset last said received (`Received`): the host keeps output from there for a resume,
   * and sends at most OUTPUT_WINDOW past it. */
  receivedSaid: number;
  nextSeq: number;
  unacked: { seq: number; data: Uint8Array }[];
  size: WinSize;
  events: ChannelEvents;
  attached: boolean;
  /** Output bytes received recently, to tell a flood. */
  recent: { at: number; bytes: number; prev: number };
  /** Set by a ^C skip-ahead: the offset reached when it was pressed (re-attach no lower). */
  skipFrom: number | null;
  /** Scrollback lines of pictures of the screen (`Attach.screen`); null: bytes and gaps. */
  screen: number | null;
  /** A picture arriving in several `Repaint` frames. */
  picture: { offset: number; parts: Uint8Array[]; bytes: number } | null;
  /** The first `Attached` has come (before it, `FROM_NOW` with a picture is no skip-ahead). */
  everAttached: boolean;
  /** Ask for `EchoAck`s (predicted echo). */
  echoAcks: boolean;
  /** When the session was created (from the first `Attached`): tells it from another that
   * took its id after a host restart. */
  created: number | null;
  /** The host restarted since the last `Attached`. */
  restarted: boolean;
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
  /** The host restarted (sessions its keepers kept go on; the others end). */
  onRestart: (() => void) | null = null;
  /** The host told where it is now (after every hello). */
  onRoutes: ((r: HostRoutes) => void) | null = null;
  /** The relays the host named last (its routes), for the settings screen. */
  relays: string[] = [];
  /** Agent events received again (below the seq asked for); 0 when every re-attach asks right. */
  agentRepeats = 0;
  /** How often an interrupt skipped a flood's backlog (for tests and the curious). */
  skipAheads = 0;
  /** Set when the connection stopped for good. */
  failure: Failure | null = null;
  /** How often the link was declared dead by the heartbeat (for tests and the curious). */
  deadLinks = 0;
  /** The latest state changes with their times (`performance.now()`), for diagnosis. */
  readonly history: { at: number; state: ConnState; detail: string }[] = [];

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
  /** The reason the host gave (frame `Close`) for the socket's end, until the socket ends. */
  private closing: { code: number; reason: string } | null = null;
  /** When anything last arrived on the current socket. */
  private lastHeard = 0;
  private pingSeq = 0;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** How long the last successful handshake took, ms. */
  private handshakeMs: number | null = null;

  constructor(
    private readonly host: HostInfo,
    private readonly key: StaticKey,
  ) {}

  private setState(s: ConnState, detail = '') {
    this.state = s;
    this.detail = detail;
    this.history.push({ at: performance.now(), state: s, detail });
    if (this.history.length > 200) this.history.shift();
    this.onState?.();
  }

  /** Opens a fresh socket now (dropping the current one), handshakes and resumes. */
  reconnect(keepOld = false) {
    if (this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.connect(keepOld);
  }

  /** Where the next sockets go (the host's routes changed). */
  setBridges(bridges: string[]) {
    this.host.bridges = bridges;
  }

  /** The bridge URLs this connection tries, in order. */
  bridges(): string[] {
    return [...this.host.bridges];
  }

  /** For tests: lose the socket as a phone does (no goodbye), then resume. */
  dropSocket() {
    this.sock?.close();
  }

  stop() {
    this.stopped = true;
    // A handshake in flight is abandoned: its socket is closed when it finishes.
    this.gen++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    this.sock?.close();
  }

  /**
   * Pings every PING_EVERY_MS while a socket is up (the host answers at once), and gives up a
   * link that stays silent for DEAD_AFTER_MS: checked every CHECK_EVERY_MS, so it is noticed
   * within DEAD_AFTER_MS + CHECK_EVERY_MS (5 s).
   */
  private startHeartbeat() {
    this.stopHeartbeat();
    let lastPing = performance.now();
    this.heartbeat = setInterval(() => {
      if (!this.sock || !this.tx) return;
      const now = performance.now();
      if (now - this.lastHeard > DEAD_AFTER_MS) {
        // The socket stopped carrying data without closing (a network change, a NAT that
        // forgot us, a captive portal): a fresh one, now.
        this.deadLinks++;
        const gen = this.gen;
        this.sock.close();
        this.lost(gen, 'no contact', 0, true);
        return;
      }
      if (now - lastPing >= PING_EVERY_MS) {
        lastPing = now;
        this.send(CONTROL, { type: 'Ping', message: ++this.pingSeq });
      }
    }, CHECK_EVERY_MS);
  }

  private stopHeartbeat() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /** Keystrokes typed but not yet acknowledged by the host, in bytes (shown while offline). */
  pendingInput(): number {
    let n = 0;
    for (const c of this.channels.values()) for (const u of c.unacked) n += u.data.length;
    return n;
  }

  /**
   * Asks the host to forget this device (revoke it), e.g. because the short codes differed.
   * Resolves once the host said so or closed with "revoked".
   */
  async unpair(): Promise<void> {
    try {
      await this.request('Unpair');
    } catch (e) {
      if (this.failure?.kind !== 'revoked') throw e;
    }
    this.stop();
  }

  /**
   * `keepOld`: leave the current socket open (its messages are ignored from now on) until the
   * new one is up, so what was just sent on it (a ^C) still reaches the host at once.
   */
  private async connect(keepOld = false) {
    if (this.stopped) return;
    const gen = ++this.gen;
    const old = this.sock;
    this.sock = null;
    this.tx = null;
    if (!keepOld) old?.close();
    const closeOld = () => {
      if (keepOld) old?.close();
    };
    this.detachAll();
    this.closing = null;
    // Keep saying why while reconnecting (no contact, offline): it is still true.
    this.setState('connecting', this.state === 'offline' || this.state === 'connecting' ? this.detail : '');
    let won: { sock: Socket; t: Transport };
    const started = performance.now();
    const timeout = this.handshakeTimeout();
    try {
      // Opening the socket gets the same bound as the handshake: on a link that swallows
      // connection attempts, a fresh attempt soon beats waiting out a hung one.
      won = await race(this.host.bridges, timeout, (sock) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        return Promise.race([
          handshake(sock, this.host.id, this.host.noiseKey, this.key, this.host.psk, new Uint8Array([MODE_DEVICE])),
          new Promise<never>((_, rej) => {
            timer = setTimeout(() => {
              sock.close();
              rej(new HandshakeTimeout('no answer to the handshake'));
            }, timeout);
          }),
        ]).finally(() => clearTimeout(timer));
      });
    } catch (e) {
      closeOld();
      if (gen !== this.gen) return;
      if (e instanceof Refused) {
        if (e.code === REFUSAL_REVOKED) this.fail({ kind: 'revoked', detail: e.message });
        else this.fail({ kind: 'refused', code: e.code, detail: e.message });
        return;
      }
      // A handshake that timed out has waited long enough: try again at once (while the link
      // is down these attempts are what notices it coming back).
      this.lost(gen, e instanceof Error ? e.message : String(e), 0, e instanceof HandshakeTimeout);
      return;
    }
    const { sock, t } = won;
    if (gen !== this.gen || this.stopped) {
      closeOld();
      sock.close();
      return;
    }
    this.handshakeMs = performance.now() - started;
    this.sock = sock;
    this.tx = t;
    this.lastHeard = performance.now();
    this.startHeartbeat();
    sock.onMessage = (m) => this.onMessage(gen, m);
    sock.onClose = () => this.lost(gen, sock.closeReason, sock.closeCode);
    // Messages that arrived during the handshake.
    for (;;) {
      const early = sock.queue.shift();
      if (!early) break;
      this.onMessage(gen, early);
    }
    if (sock.closed) this.lost(gen, sock.closeReason, sock.closeCode);
    closeOld();
  }

  /**
   * How long a handshake may take: the first one up to CONNECT_TIMEOUT_MS; later ones three
   * times the last that succeeded, at least 1.2 s, so that an attempt whose first message was
   * lost while the link was down is given up (and a new one made) soon after it comes back.
   */
  private handshakeTimeout(): number {
    if (this.handshakeMs === null) return CONNECT_TIMEOUT_MS;
    return Math.min(CONNECT_TIMEOUT_MS, Math.max(1200, 3 * this.handshakeMs));
  }

  /**
   * The socket is gone: say why and try again (at once when `now`, else after a backoff), or
   * stop for good when the host's reason says retrying will not help.
   */
  private lost(gen: number, reason: string, code = 0, now = false) {
    if (gen !== this.gen || this.stopped) return;
    this.stopHeartbeat();
    // What the host said inside the channel outranks the close code anyone could forge.
    const said = this.closing;
    this.closing = null;
    const why = said?.code ?? code;
    const text = said?.reason || reason;
    if (why === WS_REVOKED) return this.fail({ kind: 'revoked', detail: text });
    if (why === WS_REFUSED) return this.fail({ kind: 'refused', code: 0, detail: text });
    if (why === WS_PROTOCOL) return this.fail({ kind: 'protocol', detail: text });
    this.sock = null;
    this.tx = null;
    this.detachAll();
    for (const p of this.pending.values()) p.reject(new Error('connection lost'));
    this.pending.clear();
    const delay = now ? 0 : Math.min(100 * 2 ** Math.min(this.retry, 4), RETRY_CAP_MS) * (1 + Math.random() / 4);
    this.retry++;
    this.setState('offline', reason);
    this.retryTimer = setTimeout(() => this.reconnect(), delay);
  }

  /** No channel is attached any more (the socket is gone or being replaced). */
  private detachAll() {
    for (const c of this.channels.values()) {
      const was = c.attached;
      c.attached = false;
      if (was) c.events.offline?.();
    }
    for (const c of this.agentChannels.values()) c.attached = false;
  }

  private send(channel: number, frame: Frame) {
    if (!this.sock || !this.tx) return false;
    this.sock.send(this.tx.send.encrypt(encodeEnvelope(channel, frame)));
    return true;
  }

  /**
   * The socket ended for a reason retrying will not fix (revoked, refused, a protocol error):
   * stop, and say why.
   */
  private fail(failure: Failure) {
    this.stopped = true;
    this.failure = failure;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    this.sock?.close();
    this.sock = null;
    this.tx = null;
    for (const p of this.pending.values()) p.reject(new Error(failure.detail));
    this.pending.clear();
    this.setState('failed', failure.detail);
  }

  private onMessage(gen: number, ct: Uint8Array) {
    if (gen !== this.gen || !this.tx) return;
    // Any sign of life: the link works, and the next loss starts its backoff afresh.
    this.lastHeard = performance.now();
    this.retry = 0;
    let env;
    try {
      env = decodeEnvelope(this.tx.recv.decrypt(ct));
    } catch (e) {
      // A message that does not decrypt or an envelope that does not read: the channel is
      // broken; a fresh socket starts over.
      this.sock?.close();
      this.lost(gen, `bad message from the host: ${e instanceof EnvelopeError ? e.message : String(e)}`);
      return;
    }
    if ('error' in env) {
      // A frame this app cannot read ends its channel only.
      if (env.channel !== CONTROL) this.channelError(env.channel, `unreadable message from the host: ${env.error}`);
      return;
    }
    if (env.channel === CONTROL) this.onControl(env.frame);
    else this.onChannel(env.channel, env.frame);
  }

  private onControl(f: Frame) {
    switch (f.type) {
      case 'HostHello': {
        const m = f.message;
        if (m.protocol !== PROTOCOL_VERSION) {
          this.fail({
            kind: 'version',
            detail: `The host speaks protocol ${m.protocol}, this app ${PROTOCOL_VERSION}: reload the app (or update the host).`,
          });
          return;
        }
        const restarted = this.instance !== null && this.instance !== m.instance;
        this.hostName = m.host_name;
        this.role = String(m.role);
        this.instance = m.instance;
        this.retry = 0;
        if (restarted) {
          // Sessions kept by their keepers outlive the host: each channel attaches again and
          // learns from the answer whether its session is still there (see 'Attached', 'Error').
          for (const c of this.channels.values()) c.restarted = true;
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
      case 'Response': {
        const m = f.message;
        const p = this.pending.get(m.id);
        if (!p) break;
        this.pending.delete(m.id);
        if ('Ok' in m.result) p.resolve(m.result.Ok);
        else p.reject(new RequestError(m.result.Err.code, m.result.Err.message));
        break;
      }
      case 'HostRoutes':
        this.relays = f.message.relay_urls;
        this.onRoutes?.(f.message);
        break;
      case 'Ping':
        this.send(CONTROL, { type: 'Pong', message: f.message });
        break;
      case 'Close':
        // The authenticated reason for the close that follows.
        this.closing = f.message;
        break;
      default:
        break;
    }
  }

  private onChannel(id: number, f: Frame) {
    const c = this.channels.get(id);
    const ac = this.agentChannels.get(id);
    switch (f.type) {
      case 'Output': {
        if (!c) return;
        const o = f.message;
        // Skip what we already have (overlap after a resume); a jump ahead would be a bug.
        const skip = Math.max(0, c.offset - o.offset);
        if (skip >= o.data.length) return;
        const data = o.data.subarray(skip);
        const at = o.offset + skip;
        c.offset = at + data.length;
        const now = performance.now();
        if (now - c.recent.at > 300) c.recent = { at: now, bytes: 0, prev: now - c.recent.at < 600 ? c.recent.bytes : 0 };
        c.recent.bytes += data.length;
        // Said every quarter window: the host never waits on it while output flows.
        if (c.offset - c.receivedSaid >= RECEIVED_EVERY) {
          c.receivedSaid = c.offset;
          this.send(id, { type: 'Received', message: c.offset });
        }
        c.events.output(data, at);
        return;
      }
      case 'Attached': {
        if (!c) return;
        const a = f.message;
        if (c.restarted && c.created !== null && a.info.created_at_ms !== c.created) {
          // Another session that took the id of one that ended with the old host.
          this.channels.delete(id);
          this.send(id, { type: 'Detach' });
          c.events.error(ENDED_WITH_HOST);
          return;
        }
        c.restarted = false;
        c.created = a.info.created_at_ms;
        c.attached = true;
        if (c.offset === FROM_NOW) {
          // A first attach with a picture is no skip-ahead: the picture follows.
          if (c.everAttached || c.screen === null) c.events.skipped?.(a.start_offset);
          c.offset = a.start_offset;
        }
        c.everAttached = true;
        if (c.offset < a.start_offset) c.offset = a.start_offset;
        c.unacked = c.unacked.filter((u) => u.seq > a.input_acked);
        for (const u of c.unacked) this.send(c.id, { type: 'Input', message: { seq: u.seq, data: u.data } });
        c.events.attached(a);
        return;
      }
      case 'InputAck': {
        if (!c) return;
        c.unacked = c.unacked.filter((u) => u.seq > f.message.seq);
        c.events.inputAck?.(f.message.seq);
        return;
      }
      case 'EchoAck': {
        if (c) c.events.echoAck?.(f.message);
        return;
      }
      case 'Repaint': {
        if (!c) return;
        const r = f.message;
        if (!c.picture || c.picture.offset !== r.offset) c.picture = { offset: r.offset, parts: [], bytes: 0 };
        const pic = c.picture;
        pic.parts.push(r.data);
        pic.bytes += r.data.length;
        if (pic.bytes > MAX_PICTURE) {
          c.picture = null;
          this.channelError(id, 'the host sent a picture of the screen larger than 8 MiB');
          return;
        }
        if (r.more) return;
        c.picture = null;
        const data = new Uint8Array(pic.bytes);
        let at = 0;
        for (const part of pic.parts) {
          data.set(part, at);
          at += part.length;
        }
        c.offset = r.offset;
        c.events.repaint?.({ offset: r.offset, skipped: r.skipped, size: r.size, data });
        return;
      }
      case 'Gap': {
        if (!c) return;
        c.offset = Math.max(c.offset, f.message.to);
        c.events.gap(f.message.from, f.message.to);
        return;
      }
      case 'Exited': {
        if (!c) return;
        this.channels.delete(id);
        c.events.exited(f.message.status.code, f.message.status.signal);
        return;
      }
      case 'AgentAttached': {
        if (!ac) return;
        ac.attached = true;
        ac.events.attached(f.message);
        return;
      }
      case 'AgentEvent': {
        if (!ac) return;
        if (f.message.seq < ac.nextSeq) {
          this.agentRepeats++;
          return;
        }
        ac.nextSeq = f.message.seq + 1;
        ac.events.event(f.message);
        return;
      }
      case 'Error':
        this.channelError(id, c?.restarted ? ENDED_WITH_HOST : f.message.message);
        return;
      default:
        return;
    }
  }

  /** The host ended channel `id` with an error (or sent something unreadable on it). */
  private channelError(id: number, message: string) {
    const ac = this.agentChannels.get(id);
    if (ac) {
      this.agentChannels.delete(id);
      ac.events.error(message);
      return;
    }
    const c = this.channels.get(id);
    if (!c) return;
    this.channels.delete(id);
    c.events.error(message);
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
      if (!this.send(CONTROL, { type: 'Request', message: { id, request } })) {
        this.pending.delete(id);
        reject(new Error('not connected'));
      }
    });
  }

  /** Attaches a new channel to `session` from `fromOffset`; it follows every reconnect. */
  attach(
    session: number,
    fromOffset: number,
    size: WinSize,
    events: ChannelEvents,
    screen: number | null = null,
    echoAcks = false,
  ): number {
    const id = this.nextChannel++;
    const c: Channel = {
      id,
      session,
      // Random, non-zero, below 2^53 so JSON numbers carry it exactly.
      token: 1 + Math.floor(Math.random() * (2 ** 52 - 1)),
      offset: fromOffset,
      receivedSaid: 0,
      nextSeq: 1,
      unacked: [],
      size,
      events,
      attached: false,
      recent: { at: 0, bytes: 0, prev: 0 },
      skipFrom: null,
      screen,
      picture: null,
      everAttached: false,
      echoAcks,
      created: null,
      restarted: false,
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
    this.send(c.id, { type: 'AgentAttach', message: { session: c.session, from_seq: c.nextSeq } });
  }

  detachAgent(channel: number) {
    const c = this.agentChannels.get(channel);
    if (!c) return;
    this.agentChannels.delete(channel);
    // Also when the answer is still on its way: the host has the channel once it read the attach.
    if (c.sentOn === this.gen && this.tx) this.send(channel, { type: 'Detach' });
  }

  /** Agent channels, for tests. */
  agentStats() {
    return [...this.agentChannels.values()].map((c) => ({ id: c.id, session: c.session, nextSeq: c.nextSeq, attached: c.attached }));
  }

  private sendAttach(c: Channel) {
    // A picture cut short by the reconnect is sent again whole if still needed.
    c.picture = null;
    this.send(c.id, {
      type: 'Attach',
      message: {
        session: c.session,
        from_offset: c.offset,
        client_token: c.token,
        size: c.size,
        screen: c.screen === null ? null : { scrollback: c.screen },
        echo_acks: c.echoAcks,
      },
    });
  }

  /**
   * Sends keystrokes; kept until acknowledged and re-sent after a reconnect. Returns the
   * sequence number of the last part (0: no such channel).
   */
  input(channel: number, data: Uint8Array): number {
    const c = this.channels.get(channel);
    if (!c) return 0;
    for (let at = 0; at < data.length; at += MAX_BROWSER_CHUNK) {
      const part = data.slice(at, at + MAX_BROWSER_CHUNK);
      const seq = c.nextSeq++;
      c.unacked.push({ seq, data: part });
      if (c.attached) this.send(c.id, { type: 'Input', message: { seq, data: part } });
    }
    return c.nextSeq - 1;
  }

  /**
   * Ctrl-C. Sent at once; if the channel is flooding, the host's backlog (up to its whole
   * output buffer) and the bytes in flight on this socket would still have to arrive before the
   * prompt shows. So the app also skips ahead: a fresh socket re-attaches the channel at the live
   * end of the output, with the same client token (input dedup holds: the ^C is applied once).
   * Returns the ^C's sequence number, as `input` does (0: no such channel).
   */
  interrupt(channel: number): number {
    const c = this.channels.get(channel);
    if (!c) return 0;
    const seq = this.input(channel, new Uint8Array([3]));
    const flooding = performance.now() - c.recent.at < 600 && c.recent.bytes + c.recent.prev > 128 * 1024;
    if (flooding && this.state === 'online') {
      this.skipAheads++;
      c.skipFrom = c.offset;
      this.reconnect(true);
    }
    return seq;
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
    if (c.attached) this.send(channel, { type: 'Resize', message: size });
  }

  detach(channel: number) {
    const c = this.channels.get(channel);
    if (!c) return;
    this.channels.delete(channel);
    if (c.attached) this.send(channel, { type: 'Detach' });
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
