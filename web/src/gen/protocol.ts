// Generated from the peer-proto crate (proto/src) by proto/tests/ts_codec.rs.
// Do not edit: change the Rust types, then run
//   PEER_REGEN_TS=1 cargo test -p peer-proto --test ts_codec
// Shapes are serde's JSON form (externally tagged enums); bytes are Uint8Array;
// integers are numbers (a u64 below 2^53, or Infinity for u64::MAX); the codec is
// postcard, as on the native streams.
/* eslint-disable */
import { PostcardError, Reader, Writer } from '../postcard';

/** The largest Noise plaintext (a Noise message is at most 65535 bytes, 16 of them the tag). */
export const MAX_PLAINTEXT = 65519;
/** The control channel. */
export const CONTROL = 0;
/**
 * The most terminal bytes one `Output` or `Input` frame carries on a browser channel, so that
 * its envelope fits one Noise message: 65519 minus at most 5 bytes of channel, 1 type byte,
 * 10 bytes of offset or sequence number and 3 bytes of length. The host splits larger output.
 */
export const MAX_BROWSER_CHUNK = 65500;
/** Channels (attachments) one browser socket may have open at once. */
export const MAX_CHANNELS = 32;
/** The host finished the channel normally. */
export const WS_NORMAL = 1000;
/** The bridge itself is shutting down. */
export const WS_GOING_AWAY = 1001;
/** The socket sent a message larger than allowed (the WebSocket layer's own limit). */
export const WS_MESSAGE_TOO_BIG = 1009;
/** The path to the host failed after it had answered (stream reset, connection lost). */
export const WS_HOST_ERROR = 1011;
/** Bridge: the host is unreachable or offline. */
export const WS_HOST_UNREACHABLE = 4001;
/** Bridge: the browser sent a text message or a message over 65535 bytes. */
export const WS_BAD_MESSAGE = 4002;
/** Bridge: no message either way for the bridge's idle timeout. */
export const WS_IDLE_TIMEOUT = 4003;
/** Bridge: the host refused the bridge ALPN or closed the connection before answering. */
export const WS_HOST_REFUSED = 4004;
/** Bridge: too many sockets (refused after the upgrade). */
export const WS_TOO_MANY = 4008;
/** Host: this device was revoked on the host. Do not reconnect; offer to pair again. */
export const WS_REVOKED = 4100;
/** Host: the handshake was refused (the refusal code came in message 2's place). */
export const WS_REFUSED = 4101;
/**
 * Host: the channel broke the protocol (a bad envelope, a frame that is not allowed on
 * channel 0, a message that does not decrypt). Reconnecting with the same app will not help.
 */
export const WS_PROTOCOL = 4102;
/** Host: a message larger than the channel allows. */
export const WS_TOO_LARGE = 4103;
/** Host: the host is shutting down. Reconnect with backoff. */
export const WS_SHUTTING_DOWN = 4104;
/** Host: no sign of life from the browser within the liveness timeout. Reconnect. */
export const WS_TIMEOUT = 4105;
/**
 * Version of the session protocol, in [`crate::ClientHello`] and [`crate::HostHello`] and
 * the browser channel's hello. Compared, not negotiated: both sides speak exactly this one.
 */
export const PROTOCOL_VERSION = 3;
/**
 * How far past a client's last [`crate::FrameType::Received`] the host sends output on an
 * attachment (bytes). A client that sends `Received` sends it before this much arrived
 * unacknowledged (the web app: every quarter of it); one that never sends it is not limited.
 */
export const OUTPUT_WINDOW = 2097152;
/** The largest frame body (type byte + payload) either side accepts. */
export const MAX_FRAME = 262144;
/** The largest chunk of terminal bytes carried in one [`Output`] or [`Input`] frame. */
export const MAX_CHUNK = 65536;
/**
 * The most picture bytes one [`Repaint`] frame carries, on native streams and browser
 * channels alike (its envelope then fits one Noise message); larger pictures take several.
 */
export const MAX_REPAINT_CHUNK = 65400;

/** Why the host refused a handshake: code, name and its words for people. */
export const REFUSALS: Record<number, { name: string; text: string }> = {
  1: { name: 'Unknown', text: "this pairing code is unknown to the host (it may have restarted); make a new one with `peer pair` on the host" },
  2: { name: 'Expired', text: "this pairing code has expired; make a new one with `peer pair` on the host" },
  3: { name: 'Used', text: "this pairing code was already used; each code pairs one device" },
  4: { name: 'Locked', text: "this pairing code was locked after failed attempts; make a new one" },
  5: { name: 'Handshake', text: "the handshake failed: the pairing code does not belong to this host or was altered" },
  6: { name: 'NotPaired', text: "this browser is not paired with the host; pair it again with a fresh code" },
  7: { name: 'Revoked', text: "this device was revoked on the host" },
  8: { name: 'RateLimited', text: "the host is refusing handshakes for a moment (too many attempts); try again shortly" },
};

/** First frame of an agent event stream. */
export interface AgentAttach {
  /** Agent session id. */
  session: number;
  /**
   * Send events from this sequence number on (0: the whole transcript; `u64::MAX`: only new
   * events).
   */
  from_seq: number;
}
export function encAgentAttach(w: Writer, v: AgentAttach): void {
  w.u64(v.session);
  w.u64(v.from_seq);
}
export function decAgentAttach(r: Reader): AgentAttach {
  return {
    session: r.u64(),
    from_seq: r.u64(),
  };
}

/** Answer to [`AgentAttach`]; events follow. */
export interface AgentAttached {
  /** The session as it is now. */
  info: AgentSessionInfo;
}
export function encAgentAttached(w: Writer, v: AgentAttached): void {
  encAgentSessionInfo(w, v.info);
}
export function decAgentAttached(r: Reader): AgentAttached {
  return {
    info: decAgentSessionInfo(r),
  };
}

/** An agent the host knows how to start. */
export interface AgentDef {
  /** Name used in requests. */
  name: string;
  /** Program and arguments. */
  command: string[];
  /** The program is found on the host. */
  installed: boolean;
  /** No login (credentials file or key variable) was found on the host. */
  needs_login: boolean;
  /** How to log in, when `needs_login`. */
  login_hint: string | null;
  /** It can run on a local model server (`NewAgentSession::model` = `local:…`). */
  local_models: boolean;
  /** Where its prompts and code go without a local model (e.g. `Anthropic`), if known. */
  provider: string | null;
}
export function encAgentDef(w: Writer, v: AgentDef): void {
  w.str(v.name);
  w.varint(v.command.length, 64); for (const x0 of v.command) { w.str(x0); }
  w.bool(v.installed);
  w.bool(v.needs_login);
  if (v.login_hint === null) w.u8(0); else { w.u8(1); w.str(v.login_hint); }
  w.bool(v.local_models);
  if (v.provider === null) w.u8(0); else { w.u8(1); w.str(v.provider); }
}
export function decAgentDef(r: Reader): AgentDef {
  return {
    name: r.str(),
    command: r.seq(() => r.str()),
    installed: r.bool(),
    needs_login: r.bool(),
    login_hint: (r.option() ? r.str() : null),
    local_models: r.bool(),
    provider: (r.option() ? r.str() : null),
  };
}

/** A worktree's changes against its base commit. */
export interface AgentDiff {
  /** Base commit (hex). */
  base: string;
  /** The session's branch. */
  branch: string;
  /** Changed files, by path. */
  files: FileDiff[];
}
export function encAgentDiff(w: Writer, v: AgentDiff): void {
  w.str(v.base);
  w.str(v.branch);
  w.varint(v.files.length, 64); for (const x0 of v.files) { encFileDiff(w, x0); }
}
export function decAgentDiff(r: Reader): AgentDiff {
  return {
    base: r.str(),
    branch: r.str(),
    files: r.seq(() => decFileDiff(r)),
  };
}

/** One event of an agent session's transcript. */
export interface AgentEvent {
  /** Agent session id. */
  session: number;
  /** 0, 1, 2… per session, without holes. */
  seq: number;
  /** When the host recorded it, unix milliseconds. */
  at_ms: number;
  /** What happened. */
  event: AgentEventKind;
}
export function encAgentEvent(w: Writer, v: AgentEvent): void {
  w.u64(v.session);
  w.u64(v.seq);
  w.u64(v.at_ms);
  encAgentEventKind(w, v.event);
}
export function decAgentEvent(r: Reader): AgentEvent {
  return {
    session: r.u64(),
    seq: r.u64(),
    at_ms: r.u64(),
    event: decAgentEventKind(r),
  };
}

/** What an agent event says. Variant indexes are wire values: new kinds are added at the end. */
export type AgentEventKind =
  /** The session's state changed. */
  | {
    state: {
      /** The new state. */
      state: AgentState;
      /** Why (for `Failed`), if anything to say. */
      detail: string | null;
    };
  }
  /** The ACP session is set up (`session/new` answered). */
  | {
    started: {
      /** The agent's own ACP session id. */
      agent_session: string;
      /** ACP `Implementation` of the agent, if it said. */
      agent_info: JsonText | null;
      /** The agent can `session/load`. */
      load_session: boolean;
      /** ACP `SessionModeState`, if the agent has modes. */
      modes: JsonText | null;
      /** ACP `SessionConfigOption` list, if the agent has options. */
      config_options: JsonText | null;
    };
  }
  /** After a host restart: how the conversation was re-attached. */
  | {
    resumed: {
      /** The ACP request that re-attached it. */
      method: ResumeMethod;
      /** The agent's session id, when it was loaded or resumed. */
      agent_session: string | null;
      /** Why the agent starts a new conversation (`method` is `New`). */
      note: string | null;
    };
  }
  /** A client sent a prompt. */
  | {
    prompt: {
      /** The prompt. */
      text: string;
      /** Device name. */
      by: string;
      /** Device id (hex), if a device sent it. */
      device: string | null;
      /** It waits behind a running turn. */
      queued: boolean;
    };
  }
  /** A prompt was sent to the agent (`session/prompt`). */
  | {
    turn_start: {
      /** The prompt. */
      text: string;
    };
  }
  /** The turn ended. */
  | {
    turn_end: {
      /** Why. */
      stop_reason: StopReason;
    };
  }
  /** A `session/update` notification. */
  | {
    update: {
      /** The ACP `SessionUpdate` object as the agent sent it. */
      update: JsonText;
    };
  }
  /** The agent asked `session/request_permission`: a pending approval. */
  | {
    permission: {
      /** 1, 2, … per session. */
      approval: number;
      /** ACP `ToolCallUpdate`: what the agent wants to do. */
      tool_call: JsonText;
      /** ACP `PermissionOption` list (`optionId`, `name`, `kind`). */
      options: JsonText;
      /**
       * What the tool call will do, as the host reads it from `tool_call` (the same reading
       * `peer agent attach` shows): every client shows this, not its own reading. `None` in
       * events recorded before hosts said it.
       */
      what: ToolAction[] | null;
    };
  }
  /** An approval was answered; exactly one per [`AgentEventKind::Permission`]. */
  | {
    permission_resolved: {
      /** The approval. */
      approval: number;
      /** The option chosen; `None`: the request was answered `cancelled`. */
      option_id: string | null;
      /**
       * The option the agent was sent instead (the `allow_once` / `reject_once` option in
       * place of an `allow_always` / `reject_always` choice), if another one.
       */
      forwarded: string | null;
      /**
       * Who decided: a device name, `policy (…)`, `timeout`, `cancelled by NAME`, `turn
       * ended`, `the agent exited`, `host restart`, `session closed`.
       */
      by: string;
      /** Device id (hex), if a device answered. */
      device: string | null;
    };
  }
  /** A client cancelled the turn. */
  | {
    cancel: {
      /** Device name. */
      by: string;
      /** Device id (hex). */
      device: string | null;
    };
  }
  /** Queued prompts were dropped (cancel, failure, close). */
  | {
    queue_cleared: {
      /** How many. */
      dropped: number;
    };
  }
  /** The agent could not start, failed ACP setup, or exited. */
  | {
    error: {
      /** What happened. */
      message: string;
    };
  }
  /** A client closed the session. */
  | {
    closed: {
      /** Device name. */
      by: string;
      /** Device id (hex). */
      device: string | null;
    };
  }
  /** The host started a command for the agent (ACP `terminal/create`). */
  | {
    terminal: {
      /** The id given to the agent (`term-1`, …). */
      terminal: string;
      /** The approval that allowed it. */
      approval: number;
      /** Program. */
      command: string;
      /** Arguments. */
      args: string[];
      /** Working directory (resolved). */
      cwd: string;
    };
  }
  /** The host refused a `terminal/create`. */
  | {
    terminal_refused: {
      /** Program, as the agent asked. */
      command: string;
      /** Arguments, as the agent asked. */
      args: string[];
      /** Working directory, as the agent asked. */
      cwd: string | null;
      /** Why. */
      reason: string;
    };
  }
  /** Something about the session a person should know. */
  | {
    warning: {
      /** What. */
      message: string;
    };
  }
  /**
   * An event too big to carry: its kind ([`AgentEventKind::name`]) and the size of its
   * postcard encoding. The host records it in place of an event over [`MAX_EVENT_DATA`];
   * a browser channel sends it in place of an event over one Noise message.
   */
  | {
    truncated: {
      /** The kind of the event left out. */
      kind: string;
      /** Its encoded size, bytes. */
      bytes: number;
    };
  }
  /**
   * A grant was made: from now on the host answers the tool calls it covers itself, in this
   * session, until it is revoked.
   */
  | {
    grant: {
      /** 1, 2, … per session. */
      grant: number;
      /** What it covers. */
      scope: GrantScope;
      /** Allow (`true`) or reject what it covers. */
      allow: boolean;
      /** Who made it: a device name. */
      by: string;
      /** Device id (hex), if a device made it. */
      device: string | null;
      /** The approval whose "always" answer made it, if one did. */
      approval: number | null;
    };
  }
  /** A grant was revoked. */
  | {
    grant_revoked: {
      /** The grant. */
      grant: number;
      /** Device name. */
      by: string;
      /** Device id (hex). */
      device: string | null;
    };
  };
export function encAgentEventKind(w: Writer, v: AgentEventKind): void {
  if (typeof v === 'object' && 'state' in v) { w.varint(0, 32); encAgentState(w, v.state.state); if (v.state.detail === null) w.u8(0); else { w.u8(1); w.str(v.state.detail); } return; }
  if (typeof v === 'object' && 'started' in v) { w.varint(1, 32); w.str(v.started.agent_session); if (v.started.agent_info === null) w.u8(0); else { w.u8(1); encJsonText(w, v.started.agent_info); } w.bool(v.started.load_session); if (v.started.modes === null) w.u8(0); else { w.u8(1); encJsonText(w, v.started.modes); } if (v.started.config_options === null) w.u8(0); else { w.u8(1); encJsonText(w, v.started.config_options); } return; }
  if (typeof v === 'object' && 'resumed' in v) { w.varint(2, 32); encResumeMethod(w, v.resumed.method); if (v.resumed.agent_session === null) w.u8(0); else { w.u8(1); w.str(v.resumed.agent_session); } if (v.resumed.note === null) w.u8(0); else { w.u8(1); w.str(v.resumed.note); } return; }
  if (typeof v === 'object' && 'prompt' in v) { w.varint(3, 32); w.str(v.prompt.text); w.str(v.prompt.by); if (v.prompt.device === null) w.u8(0); else { w.u8(1); w.str(v.prompt.device); } w.bool(v.prompt.queued); return; }
  if (typeof v === 'object' && 'turn_start' in v) { w.varint(4, 32); w.str(v.turn_start.text); return; }
  if (typeof v === 'object' && 'turn_end' in v) { w.varint(5, 32); encStopReason(w, v.turn_end.stop_reason); return; }
  if (typeof v === 'object' && 'update' in v) { w.varint(6, 32); encJsonText(w, v.update.update); return; }
  if (typeof v === 'object' && 'permission' in v) { w.varint(7, 32); w.u64(v.permission.approval); encJsonText(w, v.permission.tool_call); encJsonText(w, v.permission.options); if (v.permission.what === null) w.u8(0); else { w.u8(1); w.varint(v.permission.what.length, 64); for (const x0 of v.permission.what) { encToolAction(w, x0); } } return; }
  if (typeof v === 'object' && 'permission_resolved' in v) { w.varint(8, 32); w.u64(v.permission_resolved.approval); if (v.permission_resolved.option_id === null) w.u8(0); else { w.u8(1); w.str(v.permission_resolved.option_id); } if (v.permission_resolved.forwarded === null) w.u8(0); else { w.u8(1); w.str(v.permission_resolved.forwarded); } w.str(v.permission_resolved.by); if (v.permission_resolved.device === null) w.u8(0); else { w.u8(1); w.str(v.permission_resolved.device); } return; }
  if (typeof v === 'object' && 'cancel' in v) { w.varint(9, 32); w.str(v.cancel.by); if (v.cancel.device === null) w.u8(0); else { w.u8(1); w.str(v.cancel.device); } return; }
  if (typeof v === 'object' && 'queue_cleared' in v) { w.varint(10, 32); w.varint(v.queue_cleared.dropped, 32); return; }
  if (typeof v === 'object' && 'error' in v) { w.varint(11, 32); w.str(v.error.message); return; }
  if (typeof v === 'object' && 'closed' in v) { w.varint(12, 32); w.str(v.closed.by); if (v.closed.device === null) w.u8(0); else { w.u8(1); w.str(v.closed.device); } return; }
  if (typeof v === 'object' && 'terminal' in v) { w.varint(13, 32); w.str(v.terminal.terminal); w.u64(v.terminal.approval); w.str(v.terminal.command); w.varint(v.terminal.args.length, 64); for (const x0 of v.terminal.args) { w.str(x0); } w.str(v.terminal.cwd); return; }
  if (typeof v === 'object' && 'terminal_refused' in v) { w.varint(14, 32); w.str(v.terminal_refused.command); w.varint(v.terminal_refused.args.length, 64); for (const x0 of v.terminal_refused.args) { w.str(x0); } if (v.terminal_refused.cwd === null) w.u8(0); else { w.u8(1); w.str(v.terminal_refused.cwd); } w.str(v.terminal_refused.reason); return; }
  if (typeof v === 'object' && 'warning' in v) { w.varint(15, 32); w.str(v.warning.message); return; }
  if (typeof v === 'object' && 'truncated' in v) { w.varint(16, 32); w.str(v.truncated.kind); w.u64(v.truncated.bytes); return; }
  if (typeof v === 'object' && 'grant' in v) { w.varint(17, 32); w.u64(v.grant.grant); encGrantScope(w, v.grant.scope); w.bool(v.grant.allow); w.str(v.grant.by); if (v.grant.device === null) w.u8(0); else { w.u8(1); w.str(v.grant.device); } if (v.grant.approval === null) w.u8(0); else { w.u8(1); w.u64(v.grant.approval); } return; }
  if (typeof v === 'object' && 'grant_revoked' in v) { w.varint(18, 32); w.u64(v.grant_revoked.grant); w.str(v.grant_revoked.by); if (v.grant_revoked.device === null) w.u8(0); else { w.u8(1); w.str(v.grant_revoked.device); } return; }
  throw new PostcardError('not a AgentEventKind');
}
export function decAgentEventKind(r: Reader): AgentEventKind {
  switch (r.variant(19)) {
    case 0: return { state: { state: decAgentState(r), detail: (r.option() ? r.str() : null) } };
    case 1: return { started: { agent_session: r.str(), agent_info: (r.option() ? decJsonText(r) : null), load_session: r.bool(), modes: (r.option() ? decJsonText(r) : null), config_options: (r.option() ? decJsonText(r) : null) } };
    case 2: return { resumed: { method: decResumeMethod(r), agent_session: (r.option() ? r.str() : null), note: (r.option() ? r.str() : null) } };
    case 3: return { prompt: { text: r.str(), by: r.str(), device: (r.option() ? r.str() : null), queued: r.bool() } };
    case 4: return { turn_start: { text: r.str() } };
    case 5: return { turn_end: { stop_reason: decStopReason(r) } };
    case 6: return { update: { update: decJsonText(r) } };
    case 7: return { permission: { approval: r.u64(), tool_call: decJsonText(r), options: decJsonText(r), what: (r.option() ? r.seq(() => decToolAction(r)) : null) } };
    case 8: return { permission_resolved: { approval: r.u64(), option_id: (r.option() ? r.str() : null), forwarded: (r.option() ? r.str() : null), by: r.str(), device: (r.option() ? r.str() : null) } };
    case 9: return { cancel: { by: r.str(), device: (r.option() ? r.str() : null) } };
    case 10: return { queue_cleared: { dropped: r.varint(32) } };
    case 11: return { error: { message: r.str() } };
    case 12: return { closed: { by: r.str(), device: (r.option() ? r.str() : null) } };
    case 13: return { terminal: { terminal: r.str(), approval: r.u64(), command: r.str(), args: r.seq(() => r.str()), cwd: r.str() } };
    case 14: return { terminal_refused: { command: r.str(), args: r.seq(() => r.str()), cwd: (r.option() ? r.str() : null), reason: r.str() } };
    case 15: return { warning: { message: r.str() } };
    case 16: return { truncated: { kind: r.str(), bytes: r.u64() } };
    case 17: return { grant: { grant: r.u64(), scope: decGrantScope(r), allow: r.bool(), by: r.str(), device: (r.option() ? r.str() : null), approval: (r.option() ? r.u64() : null) } };
    case 18: return { grant_revoked: { grant: r.u64(), by: r.str(), device: (r.option() ? r.str() : null) } };
    default: throw new PostcardError('bad AgentEventKind');
  }
}

/** What an agent session list shows. */
export interface AgentSessionInfo {
  /** Host-unique id, stable across host restarts. */
  id: number;
  /** Agent name. */
  agent: string;
  /** The repository the worktree was made from. */
  repo: string;
  /** The worktree directory (the agent's cwd). */
  worktree: string;
  /** The session's branch. */
  branch: string;
  /** The commit the branch started from (hex). */
  base: string;
  /** State. */
  state: AgentState;
  /** Why the state is what it is (failure reason), if anything to say. */
  detail: string | null;
  /** Creation time, unix milliseconds. */
  created_at_ms: number;
  /** The sequence number the next event will get (events so far: `0..next_seq`). */
  next_seq: number;
  /** Approvals waiting for an answer. */
  pending_approvals: number;
  /** Prompts waiting behind the running turn. */
  queued_prompts: number;
  /** Event streams attached now. */
  attached: number;
  /** Where its model runs. */
  model: ModelPlace;
  /** The first line of the session's first prompt (at most 120 characters), if it had one. */
  title: string | null;
}
export function encAgentSessionInfo(w: Writer, v: AgentSessionInfo): void {
  w.u64(v.id);
  w.str(v.agent);
  w.str(v.repo);
  w.str(v.worktree);
  w.str(v.branch);
  w.str(v.base);
  encAgentState(w, v.state);
  if (v.detail === null) w.u8(0); else { w.u8(1); w.str(v.detail); }
  w.u64(v.created_at_ms);
  w.u64(v.next_seq);
  w.varint(v.pending_approvals, 32);
  w.varint(v.queued_prompts, 32);
  w.varint(v.attached, 32);
  encModelPlace(w, v.model);
  if (v.title === null) w.u8(0); else { w.u8(1); w.str(v.title); }
}
export function decAgentSessionInfo(r: Reader): AgentSessionInfo {
  return {
    id: r.u64(),
    agent: r.str(),
    repo: r.str(),
    worktree: r.str(),
    branch: r.str(),
    base: r.str(),
    state: decAgentState(r),
    detail: (r.option() ? r.str() : null),
    created_at_ms: r.u64(),
    next_seq: r.u64(),
    pending_approvals: r.varint(32),
    queued_prompts: r.varint(32),
    attached: r.varint(32),
    model: decModelPlace(r),
    title: (r.option() ? r.str() : null),
  };
}

/** Answer to [`crate::Request::StartAgent`]. */
export interface AgentStarted {
  /** The new session. */
  info: AgentSessionInfo;
  /**
   * The agent's working directory: the worktree, or the directory inside it that `repo`
   * named.
   */
  cwd: string;
  /**
   * What a person should know before going on (no login found for the agent, uncommitted
   * changes left behind, …).
   */
  warnings: string[];
}
export function encAgentStarted(w: Writer, v: AgentStarted): void {
  encAgentSessionInfo(w, v.info);
  w.str(v.cwd);
  w.varint(v.warnings.length, 64); for (const x0 of v.warnings) { w.str(x0); }
}
export function decAgentStarted(r: Reader): AgentStarted {
  return {
    info: decAgentSessionInfo(r),
    cwd: r.str(),
    warnings: r.seq(() => r.str()),
  };
}

/** Where an agent session is in its life. */
export type AgentState =
  /** The agent process starts and the ACP session is being set up. */
  | 'Starting'
  /** A turn runs. */
  | 'Running'
  /** A turn runs and waits for at least one approval. */
  | 'WaitingApproval'
  /** Ready for a prompt. */
  | 'Idle'
  /** Closed by a client. */
  | 'Done'
  /** The agent could not start or exited unexpectedly. */
  | 'Failed'
  /** The host restarted during a turn; the turn was cut off. Ready for a prompt. */
  | 'Interrupted';
export function encAgentState(w: Writer, v: AgentState): void {
  if (v === 'Starting') { w.varint(0, 32); return; }
  if (v === 'Running') { w.varint(1, 32); return; }
  if (v === 'WaitingApproval') { w.varint(2, 32); return; }
  if (v === 'Idle') { w.varint(3, 32); return; }
  if (v === 'Done') { w.varint(4, 32); return; }
  if (v === 'Failed') { w.varint(5, 32); return; }
  if (v === 'Interrupted') { w.varint(6, 32); return; }
  throw new PostcardError('not a AgentState');
}
export function decAgentState(r: Reader): AgentState {
  switch (r.variant(7)) {
    case 0: return 'Starting';
    case 1: return 'Running';
    case 2: return 'WaitingApproval';
    case 3: return 'Idle';
    case 4: return 'Done';
    case 5: return 'Failed';
    case 6: return 'Interrupted';
    default: throw new PostcardError('bad AgentState');
  }
}

/** First frame of a session stream. */
export interface Attach {
  /** Which session. */
  session: number;
  /** Send output from this absolute offset (`u64::MAX`: only new output from now on). */
  from_offset: number;
  /**
   * A random number that names this attachment across reconnects; input sequence numbers
   * are deduplicated per token.
   */
  client_token: number;
  /** The client's terminal size, if it has one. */
  size: WinSize | null;
  /**
   * Pictures of the screen ([`Repaint`]) where output cannot be sent as bytes: at attach
   * when `from_offset` is `u64::MAX` or older than the buffer, and whenever this attachment
   * falls behind the buffer. `None`: bytes only, and a [`Gap`] where they are lost.
   */
  screen: ScreenRequest | null;
  /** Send [`EchoAck`] frames (for predictive local echo). */
  echo_acks: boolean;
}
export function encAttach(w: Writer, v: Attach): void {
  w.u64(v.session);
  w.u64(v.from_offset);
  w.u64(v.client_token);
  if (v.size === null) w.u8(0); else { w.u8(1); encWinSize(w, v.size); }
  if (v.screen === null) w.u8(0); else { w.u8(1); encScreenRequest(w, v.screen); }
  w.bool(v.echo_acks);
}
export function decAttach(r: Reader): Attach {
  return {
    session: r.u64(),
    from_offset: r.u64(),
    client_token: r.u64(),
    size: (r.option() ? decWinSize(r) : null),
    screen: (r.option() ? decScreenRequest(r) : null),
    echo_acks: r.bool(),
  };
}

/** Answer to [`Attach`]; output frames follow. */
export interface Attached {
  /** The session as it is now. */
  info: SessionInfo;
  /**
   * The offset of the first output byte that will be sent (after a [`Repaint`], if one
   * comes first: then its offset).
   */
  start_offset: number;
  /** Highest input sequence number already applied for this `client_token` (0: none). */
  input_acked: number;
}
export function encAttached(w: Writer, v: Attached): void {
  encSessionInfo(w, v.info);
  w.u64(v.start_offset);
  w.u64(v.input_acked);
}
export function decAttached(r: Reader): Attached {
  return {
    info: decSessionInfo(r),
    start_offset: r.u64(),
    input_acked: r.u64(),
  };
}

/** Which audit rows [`LocalRequest::AuditQuery`] asks for. */
export interface AuditQuery {
  /** At most this many rows (at most 10000 are sent). */
  limit: number;
  /** Only rows at or after this time, unix seconds. */
  since: number | null;
  /** Only rows of this device: its name, or a prefix of its id (hex). */
  device: string | null;
  /**
   * Only rows whose event is this one or starts with it and a dot (`agent` matches
   * `agent.prompt`).
   */
  kind: string | null;
}
export function encAuditQuery(w: Writer, v: AuditQuery): void {
  w.varint(v.limit, 32);
  if (v.since === null) w.u8(0); else { w.u8(1); w.u64(v.since); }
  if (v.device === null) w.u8(0); else { w.u8(1); w.str(v.device); }
  if (v.kind === null) w.u8(0); else { w.u8(1); w.str(v.kind); }
}
export function decAuditQuery(r: Reader): AuditQuery {
  return {
    limit: r.varint(32),
    since: (r.option() ? r.u64() : null),
    device: (r.option() ? r.str() : null),
    kind: (r.option() ? r.str() : null),
  };
}

/** One audit log row. */
export interface AuditRow {
  /** Unix seconds. */
  at: number;
  /** Device id (hex), if a device did it. */
  device: string | null;
  /** The device's name then, if known. */
  device_name: string | null;
  /** What happened (`pair`, `connect`, `agent.prompt`, `agent.answer`, …). */
  event: string;
  /** Details, secrets redacted. */
  detail: string;
}
export function encAuditRow(w: Writer, v: AuditRow): void {
  w.u64(v.at);
  if (v.device === null) w.u8(0); else { w.u8(1); w.str(v.device); }
  if (v.device_name === null) w.u8(0); else { w.u8(1); w.str(v.device_name); }
  w.str(v.event);
  w.str(v.detail);
}
export function decAuditRow(r: Reader): AuditRow {
  return {
    at: r.u64(),
    device: (r.option() ? r.str() : null),
    device_name: (r.option() ? r.str() : null),
    event: r.str(),
    detail: r.str(),
  };
}

/** The host's answer to [`PairBrowser`] (frame `BrowserPaired`, channel 0). */
export interface BrowserPaired {
  /** The role given. */
  role: Role;
  /** The host's display name. */
  host_name: string;
  /** The browser's credential for later connections: the psk of its Noise handshakes. */
  device_psk: Uint8Array;
}
export function encBrowserPaired(w: Writer, v: BrowserPaired): void {
  encRole(w, v.role);
  w.str(v.host_name);
  w.fixed(v.device_psk, 32);
}
export function decBrowserPaired(r: Reader): BrowserPaired {
  return {
    role: decRole(r),
    host_name: r.str(),
    device_psk: r.fixed(32),
  };
}

/**
 * First frame of the control stream: who the client is, and its proof.
 *
 * `proof` is the device key's ed25519 signature over 32 bytes exported from this QUIC
 * connection's TLS session (label [`crate::PROOF_LABEL`], context = the client's endpoint
 * id). It binds the long-term device key to this one connection, so it cannot be replayed.
 */
export interface ClientHello {
  /** [`PROTOCOL_VERSION`] of the client. */
  protocol: number;
  /** The device's long-term public key (its device id). */
  device: Uint8Array;
  /** Signature, see above. */
  proof: Uint8Array;
}
export function encClientHello(w: Writer, v: ClientHello): void {
  w.varint(v.protocol, 16);
  w.fixed(v.device, 32);
  w.bytes(v.proof);
}
export function decClientHello(r: Reader): ClientHello {
  return {
    protocol: r.varint(16),
    device: r.fixed(32),
    proof: r.bytes(),
  };
}

/** Why the host is about to close a browser's socket (frame `Close`, channel 0). */
export interface CloseReason {
  /** The WebSocket close code that follows ([`crate::close::ws`], 4100–4199). */
  code: number;
  /** For people. */
  reason: string;
}
export function encCloseReason(w: Writer, v: CloseReason): void {
  w.varint(v.code, 16);
  w.str(v.reason);
}
export function decCloseReason(r: Reader): CloseReason {
  return {
    code: r.varint(16),
    reason: r.str(),
  };
}

/** Parameters of a new PTY session. */
export interface CreateSession {
  /** Optional display name. */
  name: string | null;
  /** Program and arguments; empty means the host user's login shell. */
  command: string[];
  /** Working directory; `None` means the host user's home. */
  cwd: string | null;
  /** Extra environment variables. */
  env: ([string, string])[];
  /** Initial terminal size. */
  size: WinSize;
  /**
   * Keep the output from its first byte for an attachment that follows at once (`peer
   * attach --new`, the web app's new terminal): until the session's first attachment
   * registers, the PTY reader waits as it would for an attached client that lags, so a
   * process that writes more than the buffer before the attach arrives loses nothing.
   * `false` (`peer new`) lets a detached session run freely from the start.
   */
  hold_output: boolean;
}
export function encCreateSession(w: Writer, v: CreateSession): void {
  if (v.name === null) w.u8(0); else { w.u8(1); w.str(v.name); }
  w.varint(v.command.length, 64); for (const x0 of v.command) { w.str(x0); }
  if (v.cwd === null) w.u8(0); else { w.u8(1); w.str(v.cwd); }
  w.varint(v.env.length, 64); for (const x0 of v.env) { w.str(x0[0]); w.str(x0[1]); }
  encWinSize(w, v.size);
  w.bool(v.hold_output);
}
export function decCreateSession(r: Reader): CreateSession {
  return {
    name: (r.option() ? r.str() : null),
    command: r.seq(() => r.str()),
    cwd: (r.option() ? r.str() : null),
    env: r.seq(() => [r.str(), r.str()] as [string, string]),
    size: decWinSize(r),
    hold_output: r.bool(),
  };
}

/** A paired device as listed. */
export interface DeviceInfo {
  /** Device id: hex of the device's public key. */
  id: string;
  /** Name given at pairing. */
  name: string;
  /** Role. */
  role: Role;
  /** Unix seconds of pairing. */
  paired_at: number;
  /** Unix seconds of the last connection, if any. */
  last_seen: number | null;
  /** Unix seconds of revocation, if revoked. */
  revoked_at: number | null;
  /** Live connections now. */
  connections: number;
  /** A browser (paired through the mobile bridge) rather than a native client. */
  browser: boolean;
}
export function encDeviceInfo(w: Writer, v: DeviceInfo): void {
  w.str(v.id);
  w.str(v.name);
  encRole(w, v.role);
  w.u64(v.paired_at);
  if (v.last_seen === null) w.u8(0); else { w.u8(1); w.u64(v.last_seen); }
  if (v.revoked_at === null) w.u8(0); else { w.u8(1); w.u64(v.revoked_at); }
  w.varint(v.connections, 32);
  w.bool(v.browser);
}
export function decDeviceInfo(r: Reader): DeviceInfo {
  return {
    id: r.str(),
    name: r.str(),
    role: decRole(r),
    paired_at: r.u64(),
    last_seen: (r.option() ? r.u64() : null),
    revoked_at: (r.option() ? r.u64() : null),
    connections: r.varint(32),
    browser: r.bool(),
  };
}

/** One line of a change shown with an approval. Variant indexes are wire values. */
export type DiffLine =
  /** Unchanged (context). */
  | { same: string }
  /** Removed. */
  | { del: string }
  /** Added. */
  | { add: string }
  /** A note that lines were left out: `… N more lines`. */
  | { cut: string };
export function encDiffLine(w: Writer, v: DiffLine): void {
  if (typeof v === 'object' && 'same' in v) { w.varint(0, 32); w.str(v.same); return; }
  if (typeof v === 'object' && 'del' in v) { w.varint(1, 32); w.str(v.del); return; }
  if (typeof v === 'object' && 'add' in v) { w.varint(2, 32); w.str(v.add); return; }
  if (typeof v === 'object' && 'cut' in v) { w.varint(3, 32); w.str(v.cut); return; }
  throw new PostcardError('not a DiffLine');
}
export function decDiffLine(r: Reader): DiffLine {
  switch (r.variant(4)) {
    case 0: return { same: r.str() };
    case 1: return { del: r.str() };
    case 2: return { add: r.str() };
    case 3: return { cut: r.str() };
    default: throw new PostcardError('bad DiffLine');
  }
}

/**
 * Inputs up to `seq` reached the program long enough ago that what it echoed is in the
 * output before `offset` (for predictive local echo: a prediction for those inputs that the
 * screen at `offset` does not show was wrong).
 */
export interface EchoAck {
  /** Highest input sequence number covered. */
  seq: number;
  /** Output offset by which the echo of those inputs has arrived. */
  offset: number;
  /** The terminal echoes typed characters itself (termios `ECHO`), as of `offset`. */
  echo: boolean;
  /** The terminal edits lines itself (termios `ICANON`), as of `offset`. */
  canonical: boolean;
}
export function encEchoAck(w: Writer, v: EchoAck): void {
  w.u64(v.seq);
  w.u64(v.offset);
  w.bool(v.echo);
  w.bool(v.canonical);
}
export function decEchoAck(r: Reader): EchoAck {
  return {
    seq: r.u64(),
    offset: r.u64(),
    echo: r.bool(),
    canonical: r.bool(),
  };
}

/** Error codes carried in [`WireError`]. */
export type ErrorCode =
  /** The frame could not be decoded or was not expected here. */
  | 'Protocol'
  /** No such session or device. */
  | 'NotFound'
  /** The device's role does not allow this. */
  | 'Forbidden'
  /** The request is well-formed but makes no sense (e.g. empty program name). */
  | 'BadRequest'
  /** The command could not be started. */
  | 'SpawnFailed'
  /** A host limit was reached. */
  | 'Limit'
  /** Something failed on the host. */
  | 'Internal'
  /** Someone else got there first (an approval already answered). */
  | 'Conflict';
export function encErrorCode(w: Writer, v: ErrorCode): void {
  if (v === 'Protocol') { w.varint(0, 32); return; }
  if (v === 'NotFound') { w.varint(1, 32); return; }
  if (v === 'Forbidden') { w.varint(2, 32); return; }
  if (v === 'BadRequest') { w.varint(3, 32); return; }
  if (v === 'SpawnFailed') { w.varint(4, 32); return; }
  if (v === 'Limit') { w.varint(5, 32); return; }
  if (v === 'Internal') { w.varint(6, 32); return; }
  if (v === 'Conflict') { w.varint(7, 32); return; }
  throw new PostcardError('not a ErrorCode');
}
export function decErrorCode(r: Reader): ErrorCode {
  switch (r.variant(8)) {
    case 0: return 'Protocol';
    case 1: return 'NotFound';
    case 2: return 'Forbidden';
    case 3: return 'BadRequest';
    case 4: return 'SpawnFailed';
    case 5: return 'Limit';
    case 6: return 'Internal';
    case 7: return 'Conflict';
    default: throw new PostcardError('bad ErrorCode');
  }
}

/** How a process ended. */
export interface ExitInfo {
  /** Exit code (1 if killed by a signal, as a shell reports 128+n is not available here). */
  code: number;
  /** Name of the signal that ended it, if any. */
  signal: string | null;
}
export function encExitInfo(w: Writer, v: ExitInfo): void {
  w.varint(v.code, 32);
  if (v.signal === null) w.u8(0); else { w.u8(1); w.str(v.signal); }
}
export function decExitInfo(r: Reader): ExitInfo {
  return {
    code: r.varint(32),
    signal: (r.option() ? r.str() : null),
  };
}

/** The session's process ended and all its output was sent. */
export interface Exited {
  /** Exit status. */
  status: ExitInfo;
  /** Final output offset. */
  end_offset: number;
}
export function encExited(w: Writer, v: Exited): void {
  encExitInfo(w, v.status);
  w.u64(v.end_offset);
}
export function decExited(r: Reader): Exited {
  return {
    status: decExitInfo(r),
    end_offset: r.u64(),
  };
}

/** One changed file. */
export interface FileDiff {
  /** Path relative to the worktree. */
  path: string;
  /** `added`, `modified`, `deleted`, `renamed` or `typechange`. */
  status: string;
  /** Unified diff text (git format, 3 lines of context); binary files say so. */
  patch: string;
}
export function encFileDiff(w: Writer, v: FileDiff): void {
  w.str(v.path);
  w.str(v.status);
  w.str(v.patch);
}
export function decFileDiff(r: Reader): FileDiff {
  return {
    path: r.str(),
    status: r.str(),
    patch: r.str(),
  };
}

/** Output in `from..to` was dropped from the host's buffer before this client read it. */
export interface Gap {
  /** First lost offset. */
  from: number;
  /** First offset that follows. */
  to: number;
}
export function encGap(w: Writer, v: Gap): void {
  w.u64(v.from);
  w.u64(v.to);
}
export function decGap(r: Reader): Gap {
  return {
    from: r.u64(),
    to: r.u64(),
  };
}

/** One GPU of the host, from `nvidia-smi`. */
export interface GpuInfo {
  /** The driver's index. */
  index: number;
  /** Product name. */
  name: string;
  /** `GPU-…` id. */
  uuid: string;
  /** Utilisation, percent, when the driver says. */
  utilization_pct: number | null;
  /** Memory in use, MiB. */
  memory_used_mib: number | null;
  /** Memory in all, MiB. */
  memory_total_mib: number | null;
  /** Processes holding memory on it. */
  processes: GpuProcess[];
}
export function encGpuInfo(w: Writer, v: GpuInfo): void {
  w.varint(v.index, 32);
  w.str(v.name);
  w.str(v.uuid);
  if (v.utilization_pct === null) w.u8(0); else { w.u8(1); w.varint(v.utilization_pct, 32); }
  if (v.memory_used_mib === null) w.u8(0); else { w.u8(1); w.u64(v.memory_used_mib); }
  if (v.memory_total_mib === null) w.u8(0); else { w.u8(1); w.u64(v.memory_total_mib); }
  w.varint(v.processes.length, 64); for (const x0 of v.processes) { encGpuProcess(w, x0); }
}
export function decGpuInfo(r: Reader): GpuInfo {
  return {
    index: r.varint(32),
    name: r.str(),
    uuid: r.str(),
    utilization_pct: (r.option() ? r.varint(32) : null),
    memory_used_mib: (r.option() ? r.u64() : null),
    memory_total_mib: (r.option() ? r.u64() : null),
    processes: r.seq(() => decGpuProcess(r)),
  };
}

/** A process holding GPU memory. */
export interface GpuProcess {
  /** Process id. */
  pid: number;
  /** Its name (the driver's `process_name`, usually the program's path). */
  name: string;
  /** Memory it holds, MiB, when the driver says. */
  used_mib: number | null;
}
export function encGpuProcess(w: Writer, v: GpuProcess): void {
  w.varint(v.pid, 32);
  w.str(v.name);
  if (v.used_mib === null) w.u8(0); else { w.u8(1); w.u64(v.used_mib); }
}
export function decGpuProcess(r: Reader): GpuProcess {
  return {
    pid: r.varint(32),
    name: r.str(),
    used_mib: (r.option() ? r.u64() : null),
  };
}

/** A grant as listed. */
export interface GrantInfo {
  /** Agent session id. */
  session: number;
  /** The grant's number in its session. */
  grant: number;
  /** What it covers. */
  scope: GrantScope;
  /** Allow (`true`) or reject. */
  allow: boolean;
  /** Who made it. */
  by: string;
  /** The approval whose "always" answer made it, if one did. */
  approval: number | null;
  /** When, unix milliseconds. */
  at_ms: number;
  /** How many requests it answered since the host started. */
  used: number;
}
export function encGrantInfo(w: Writer, v: GrantInfo): void {
  w.u64(v.session);
  w.u64(v.grant);
  encGrantScope(w, v.scope);
  w.bool(v.allow);
  w.str(v.by);
  if (v.approval === null) w.u8(0); else { w.u8(1); w.u64(v.approval); }
  w.u64(v.at_ms);
  w.varint(v.used, 32);
}
export function decGrantInfo(r: Reader): GrantInfo {
  return {
    session: r.u64(),
    grant: r.u64(),
    scope: decGrantScope(r),
    allow: r.bool(),
    by: r.str(),
    approval: (r.option() ? r.u64() : null),
    at_ms: r.u64(),
    used: r.varint(32),
  };
}

/** What a grant covers (always inside one agent session). */
export type GrantScope =
  /** Every tool call of the session, and every command it asks the host to run. */
  | 'session'
  /** Tool calls of this ACP kind (`read`, `edit`, `fetch`, `execute`, …). */
  | {
    kind: {
      /** The kind. */
      kind: string;
    };
  }
  /**
   * Commands that start with this one, compared as parsed commands (program, words, flags
   * normalised), never as text: `cargo test` covers `cargo test --release`.
   */
  | {
    command: {
      /** The command, as a person would type it. */
      command: string;
    };
  };
export function encGrantScope(w: Writer, v: GrantScope): void {
  if (v === 'session') { w.varint(0, 32); return; }
  if (typeof v === 'object' && 'kind' in v) { w.varint(1, 32); w.str(v.kind.kind); return; }
  if (typeof v === 'object' && 'command' in v) { w.varint(2, 32); w.str(v.command.command); return; }
  throw new PostcardError('not a GrantScope');
}
export function decGrantScope(r: Reader): GrantScope {
  switch (r.variant(3)) {
    case 0: return 'session';
    case 1: return { kind: { kind: r.str() } };
    case 2: return { command: { command: r.str() } };
    default: throw new PostcardError('bad GrantScope');
  }
}

/** The host's answer to [`ClientHello`]. */
export interface HostHello {
  /** [`PROTOCOL_VERSION`] of the host. */
  protocol: number;
  /** The host's display name. */
  host_name: string;
  /** The device's role on this host. */
  role: Role;
  /** Random per host process: session ids are only meaningful within one instance. */
  instance: number;
}
export function encHostHello(w: Writer, v: HostHello): void {
  w.varint(v.protocol, 16);
  w.str(v.host_name);
  encRole(w, v.role);
  w.u64(v.instance);
}
export function decHostHello(r: Reader): HostHello {
  return {
    protocol: r.varint(16),
    host_name: r.str(),
    role: decRole(r),
    instance: r.u64(),
  };
}

/**
 * Where the host can be reached now and how to get into its relays. The host sends it right
 * after [`HostHello`] on every connection (native control stream, browser channel 0), inside
 * the authenticated session; the device replaces what it learned at pairing with it, so a
 * host whose addresses, relays, relay token or relay certificate changed stays reachable for
 * every device that connected once since the previous change.
 *
 * `Debug` does not show the token.
 */
export interface HostRoutes {
  /** Relay URLs (`http://` or `https://`), at most 4, the host's home relay first. */
  relay_urls: string[];
  /**
   * Direct socket addresses (`192.0.2.7:41641`, `[2001:db8::7]:41641`), at most 8; none for a
   * relay-only host.
   */
  direct_addrs: string[];
  /**
   * SHA-256 of the relays' TLS certificate when the host pins it (self-signed relays): the
   * only certificate to trust for them.
   */
  relay_cert_sha256: Uint8Array | null;
  /**
   * The token the relays want (token mode). Never sent to browsers, which do not use the
   * relay protocol.
   */
  relay_token: string | null;
}
export function encHostRoutes(w: Writer, v: HostRoutes): void {
  w.varint(v.relay_urls.length, 64); for (const x0 of v.relay_urls) { w.str(x0); }
  w.varint(v.direct_addrs.length, 64); for (const x0 of v.direct_addrs) { w.str(x0); }
  if (v.relay_cert_sha256 === null) w.u8(0); else { w.u8(1); w.fixed(v.relay_cert_sha256, 32); }
  if (v.relay_token === null) w.u8(0); else { w.u8(1); w.str(v.relay_token); }
}
export function decHostRoutes(r: Reader): HostRoutes {
  return {
    relay_urls: r.seq(() => r.str()),
    direct_addrs: r.seq(() => r.str()),
    relay_cert_sha256: (r.option() ? r.fixed(32) : null),
    relay_token: (r.option() ? r.str() : null),
  };
}

/** What `peer status` shows. */
export interface HostStatus {
  /** Host name. */
  host_name: string;
  /** The host's endpoint id. */
  endpoint_id: string;
  /** Relay URLs in use. */
  relay_urls: string[];
  /** Direct addresses. */
  direct_addrs: string[];
  /** Where the host key is kept. */
  key_store: string;
  /** Sessions. */
  sessions: number;
  /** Live client connections. */
  connections: number;
  /** GPUs (empty without `nvidia-smi`). */
  gpus: GpuInfo[];
}
export function encHostStatus(w: Writer, v: HostStatus): void {
  w.str(v.host_name);
  w.str(v.endpoint_id);
  w.varint(v.relay_urls.length, 64); for (const x0 of v.relay_urls) { w.str(x0); }
  w.varint(v.direct_addrs.length, 64); for (const x0 of v.direct_addrs) { w.str(x0); }
  w.str(v.key_store);
  w.varint(v.sessions, 32);
  w.varint(v.connections, 32);
  w.varint(v.gpus.length, 64); for (const x0 of v.gpus) { encGpuInfo(w, x0); }
}
export function decHostStatus(r: Reader): HostStatus {
  return {
    host_name: r.str(),
    endpoint_id: r.str(),
    relay_urls: r.seq(() => r.str()),
    direct_addrs: r.seq(() => r.str()),
    key_store: r.str(),
    sessions: r.varint(32),
    connections: r.varint(32),
    gpus: r.seq(() => decGpuInfo(r)),
  };
}

/** Keystrokes. */
export interface Input {
  /** 1, 2, 3… per `client_token`; the host applies each number once. */
  seq: number;
  /** The bytes, at most [`crate::MAX_CHUNK`]. */
  data: Uint8Array;
}
export function encInput(w: Writer, v: Input): void {
  w.u64(v.seq);
  w.bytes(v.data);
}
export function decInput(r: Reader): Input {
  return {
    seq: r.u64(),
    data: r.bytes(),
  };
}

/** Inputs up to `seq` were applied. */
export interface InputAck {
  /** Highest applied sequence number. */
  seq: number;
}
export function encInputAck(w: Writer, v: InputAck): void {
  w.u64(v.seq);
}
export function decInputAck(r: Reader): InputAck {
  return {
    seq: r.u64(),
  };
}

/**
 * JSON text (UTF-8) of an ACP object.
 *
 * Postcard cannot carry arbitrary JSON values, so the ACP objects an event passes on (a
 * `SessionUpdate`, a `ToolCallUpdate`, `PermissionOption`s, `modes`, `configOptions`,
 * `agentInfo`) travel as their JSON text, exactly as the agent sent them.
 */
export type JsonText = string;
export function encJsonText(w: Writer, v: JsonText): void {
  w.str(v);
}
export function decJsonText(r: Reader): JsonText {
  return r.str();
}

/** A model a [`ModelServer`] serves. */
export interface LocalModel {
  /** The id requests name it by. */
  id: string;
  /**
   * Its context length in tokens, when the server says (vLLM `max_model_len`, llama.cpp
   * `meta.n_ctx_train`, LM Studio `max_context_length`).
   */
  context: number | null;
}
export function encLocalModel(w: Writer, v: LocalModel): void {
  w.str(v.id);
  if (v.context === null) w.u8(0); else { w.u8(1); w.u64(v.context); }
}
export function decLocalModel(r: Reader): LocalModel {
  return {
    id: r.str(),
    context: (r.option() ? r.u64() : null),
  };
}

/** Replies over the control socket. */
export type LocalReply =
  /** A new pairing code. */
  | {
    Pairing: {
      /** The URL to open or scan. */
      url: string;
      /** Unix seconds when it expires. */
      expires_at: number;
    };
  }
  /** Paired devices. */
  | { Devices: DeviceInfo[] }
  /** A device was revoked. */
  | {
    Revoked: {
      /** The device. */
      device: DeviceInfo;
      /** Connections closed. */
      closed: number;
    };
  }
  /** Host status. */
  | { Status: HostStatus }
  /** The request failed. */
  | { Error: WireError }
  /** Audit log rows. */
  | { Audit: AuditRow[] }
  /** Answer to [`LocalRequest::AwaitPairing`]: a device paired with the code. */
  | {
    Paired: {
      /** The device's name. */
      name: string;
      /** Its id, hex. */
      device: string;
      /** The role given. */
      role: Role;
      /** The short code both sides showed. */
      code: string;
    };
  }
  /**
   * The answer to [`LocalRequest::OpenSession`]: what a session connection's `HostHello`
   * says.
   */
  | { Session: HostHello };
export function encLocalReply(w: Writer, v: LocalReply): void {
  if (typeof v === 'object' && 'Pairing' in v) { w.varint(0, 32); w.str(v.Pairing.url); w.u64(v.Pairing.expires_at); return; }
  if (typeof v === 'object' && 'Devices' in v) { w.varint(1, 32); w.varint(v.Devices.length, 64); for (const x0 of v.Devices) { encDeviceInfo(w, x0); } return; }
  if (typeof v === 'object' && 'Revoked' in v) { w.varint(2, 32); encDeviceInfo(w, v.Revoked.device); w.varint(v.Revoked.closed, 32); return; }
  if (typeof v === 'object' && 'Status' in v) { w.varint(3, 32); encHostStatus(w, v.Status); return; }
  if (typeof v === 'object' && 'Error' in v) { w.varint(4, 32); encWireError(w, v.Error); return; }
  if (typeof v === 'object' && 'Audit' in v) { w.varint(5, 32); w.varint(v.Audit.length, 64); for (const x0 of v.Audit) { encAuditRow(w, x0); } return; }
  if (typeof v === 'object' && 'Paired' in v) { w.varint(6, 32); w.str(v.Paired.name); w.str(v.Paired.device); encRole(w, v.Paired.role); w.str(v.Paired.code); return; }
  if (typeof v === 'object' && 'Session' in v) { w.varint(7, 32); encHostHello(w, v.Session); return; }
  throw new PostcardError('not a LocalReply');
}
export function decLocalReply(r: Reader): LocalReply {
  switch (r.variant(8)) {
    case 0: return { Pairing: { url: r.str(), expires_at: r.u64() } };
    case 1: return { Devices: r.seq(() => decDeviceInfo(r)) };
    case 2: return { Revoked: { device: decDeviceInfo(r), closed: r.varint(32) } };
    case 3: return { Status: decHostStatus(r) };
    case 4: return { Error: decWireError(r) };
    case 5: return { Audit: r.seq(() => decAuditRow(r)) };
    case 6: return { Paired: { name: r.str(), device: r.str(), role: decRole(r), code: r.str() } };
    case 7: return { Session: decHostHello(r) };
    default: throw new PostcardError('bad LocalReply');
  }
}

/** Requests from the CLI on the host machine over the control socket. */
export type LocalRequest =
  /** Make a new one-time pairing code. */
  | {
    NewPairing: {
      /** Role the paired device gets. */
      role: Role;
      /** Seconds the code stays valid. */
      ttl_secs: number;
    };
  }
  /** List paired devices. */
  | 'ListDevices'
  /** Revoke a device by id or unique id prefix; closes its connections. */
  | {
    RevokeDevice: {
      /** Device id (hex) or a unique prefix of it. */
      id: string;
    };
  }
  /** Host status. */
  | 'Status'
  /** The newest audit log rows, newest first. */
  | {
    Audit: {
      /** At most this many rows. */
      limit: number;
    };
  }
  /**
   * Wait until the code with this pairing id pairs a device (or `timeout_secs` pass, or
   * the code expires).
   */
  | {
    AwaitPairing: {
      /** The code's pairing id. */
      pairing_id: Uint8Array;
      /** How long to wait at most. */
      timeout_secs: number;
    };
  }
  /** Audit log rows that match a filter, newest first. */
  | { AuditQuery: AuditQuery }
  /**
   * Make this connection a session's control stream (docs/protocol.md section 13.1): the
   * reply is [`LocalReply::Session`], then `Request`s are answered with `Response`s as on a
   * session connection's control stream. The local user is the owner (an operator).
   */
  | 'OpenSession';
export function encLocalRequest(w: Writer, v: LocalRequest): void {
  if (typeof v === 'object' && 'NewPairing' in v) { w.varint(0, 32); encRole(w, v.NewPairing.role); w.u64(v.NewPairing.ttl_secs); return; }
  if (v === 'ListDevices') { w.varint(1, 32); return; }
  if (typeof v === 'object' && 'RevokeDevice' in v) { w.varint(2, 32); w.str(v.RevokeDevice.id); return; }
  if (v === 'Status') { w.varint(3, 32); return; }
  if (typeof v === 'object' && 'Audit' in v) { w.varint(4, 32); w.varint(v.Audit.limit, 32); return; }
  if (typeof v === 'object' && 'AwaitPairing' in v) { w.varint(5, 32); w.fixed(v.AwaitPairing.pairing_id, 16); w.varint(v.AwaitPairing.timeout_secs, 32); return; }
  if (typeof v === 'object' && 'AuditQuery' in v) { w.varint(6, 32); encAuditQuery(w, v.AuditQuery); return; }
  if (v === 'OpenSession') { w.varint(7, 32); return; }
  throw new PostcardError('not a LocalRequest');
}
export function decLocalRequest(r: Reader): LocalRequest {
  switch (r.variant(8)) {
    case 0: return { NewPairing: { role: decRole(r), ttl_secs: r.u64() } };
    case 1: return 'ListDevices';
    case 2: return { RevokeDevice: { id: r.str() } };
    case 3: return 'Status';
    case 4: return { Audit: { limit: r.varint(32) } };
    case 5: return { AwaitPairing: { pairing_id: r.fixed(16), timeout_secs: r.varint(32) } };
    case 6: return { AuditQuery: decAuditQuery(r) };
    case 7: return 'OpenSession';
    default: throw new PostcardError('bad LocalRequest');
  }
}

/** Where an agent session's model runs, as far as the host knows. */
export type ModelPlace =
  /**
   * The agent's own configuration picks the model: prompts and code go where it sends
   * them.
   */
  | {
    provider: {
      /** Where the agent's preset sends them (e.g. `Anthropic`), if the host knows. */
      provider: string | null;
    };
  }
  /** A model server on the host's machine (or one listed in its `agents.toml`). */
  | {
    local: {
      /** The server's name ([`ModelServer::name`]). */
      server: string;
      /** Its base URL. */
      endpoint: string;
      /** The model id. */
      model: string;
    };
  };
export function encModelPlace(w: Writer, v: ModelPlace): void {
  if (typeof v === 'object' && 'provider' in v) { w.varint(0, 32); if (v.provider.provider === null) w.u8(0); else { w.u8(1); w.str(v.provider.provider); } return; }
  if (typeof v === 'object' && 'local' in v) { w.varint(1, 32); w.str(v.local.server); w.str(v.local.endpoint); w.str(v.local.model); return; }
  throw new PostcardError('not a ModelPlace');
}
export function decModelPlace(r: Reader): ModelPlace {
  switch (r.variant(2)) {
    case 0: return { provider: { provider: (r.option() ? r.str() : null) } };
    case 1: return { local: { server: r.str(), endpoint: r.str(), model: r.str() } };
    default: throw new PostcardError('bad ModelPlace');
  }
}

/** An OpenAI-compatible model server the host probed (`GET <url>/models`). */
export interface ModelServer {
  /**
   * `llama.cpp`, `ollama`, `vllm`, `lm-studio` for the usual ports; the table name for a
   * server listed in the host's `agents.toml`.
   */
  name: string;
  /** Base URL of its OpenAI API, e.g. `http://127.0.0.1:11434/v1`. */
  url: string;
  /** Listed in the host's `agents.toml` (rather than one of the usual ports). */
  configured: boolean;
  /** It answered the model list. */
  reachable: boolean;
  /** Why not, when not reachable (or why the answer was unusable). */
  error: string | null;
  /** Its models, as it listed them. */
  models: LocalModel[];
  /** How long the probe took, milliseconds. */
  elapsed_ms: number;
}
export function encModelServer(w: Writer, v: ModelServer): void {
  w.str(v.name);
  w.str(v.url);
  w.bool(v.configured);
  w.bool(v.reachable);
  if (v.error === null) w.u8(0); else { w.u8(1); w.str(v.error); }
  w.varint(v.models.length, 64); for (const x0 of v.models) { encLocalModel(w, x0); }
  w.varint(v.elapsed_ms, 32);
}
export function decModelServer(r: Reader): ModelServer {
  return {
    name: r.str(),
    url: r.str(),
    configured: r.bool(),
    reachable: r.bool(),
    error: (r.option() ? r.str() : null),
    models: r.seq(() => decLocalModel(r)),
    elapsed_ms: r.varint(32),
  };
}

/** Parameters of a new agent session. */
export interface NewAgentSession {
  /** Agent name from [`Request::ListAgents`]. */
  agent: string;
  /** Absolute path of a git repository on the host. */
  repo: string;
  /** Branch, tag or commit to start from; `None`: the repository's `HEAD`. */
  base: string | null;
  /** A first prompt, sent once the agent is ready. */
  prompt: string | null;
  /**
   * `local:MODEL` or `local:SERVER/MODEL`: run the agent on a model of a model server on
   * the host's machine ([`crate::Request::ListModelServers`]); `None`: the agent's own
   * configuration picks the model.
   */
  model: string | null;
}
export function encNewAgentSession(w: Writer, v: NewAgentSession): void {
  w.str(v.agent);
  w.str(v.repo);
  if (v.base === null) w.u8(0); else { w.u8(1); w.str(v.base); }
  if (v.prompt === null) w.u8(0); else { w.u8(1); w.str(v.prompt); }
  if (v.model === null) w.u8(0); else { w.u8(1); w.str(v.model); }
}
export function decNewAgentSession(r: Reader): NewAgentSession {
  return {
    agent: r.str(),
    repo: r.str(),
    base: (r.option() ? r.str() : null),
    prompt: (r.option() ? r.str() : null),
    model: (r.option() ? r.str() : null),
  };
}

/** One notice. */
export interface Notice {
  /** What happened. */
  kind: NoticeKind;
  /** Where. */
  session: NoticeSession;
  /** One line for a notification's title. */
  title: string;
  /** A few words more (the tool call's title, the exit status, the agent's last words). */
  body: string;
  /** When the host saw it, unix milliseconds. */
  at_ms: number;
  /** The approval's number, for [`NoticeKind::Approval`]. */
  approval: number | null;
}
export function encNotice(w: Writer, v: Notice): void {
  encNoticeKind(w, v.kind);
  encNoticeSession(w, v.session);
  w.str(v.title);
  w.str(v.body);
  w.u64(v.at_ms);
  if (v.approval === null) w.u8(0); else { w.u8(1); w.u64(v.approval); }
}
export function decNotice(r: Reader): Notice {
  return {
    kind: decNoticeKind(r),
    session: decNoticeSession(r),
    title: r.str(),
    body: r.str(),
    at_ms: r.u64(),
    approval: (r.option() ? r.u64() : null),
  };
}

/** What a notice is about. Variant indexes are wire values: new kinds go at the end. */
export type NoticeKind =
  /** An agent asks for approval and no policy rule answered it. */
  | 'approval'
  /** An agent's turn ended normally (`end_turn`). */
  | 'turn_end'
  /**
   * An agent's turn ended some other way: refused, out of tokens, an error, cut off by a
   * host restart. (Cancelled and closed turns are a person's doing and send nothing.)
   */
  | 'turn_failed'
  /** An agent process failed: it could not start, or it exited. */
  | 'agent_failed'
  /** A terminal session's process ended (not one a client killed). */
  | 'session_ended'
  /**
   * A terminal session rang its bell. Sent to a device only for the sessions it chose
   * ([`crate::Request::PushBell`]); a watch stream gets every one.
   */
  | 'bell';
export function encNoticeKind(w: Writer, v: NoticeKind): void {
  if (v === 'approval') { w.varint(0, 32); return; }
  if (v === 'turn_end') { w.varint(1, 32); return; }
  if (v === 'turn_failed') { w.varint(2, 32); return; }
  if (v === 'agent_failed') { w.varint(3, 32); return; }
  if (v === 'session_ended') { w.varint(4, 32); return; }
  if (v === 'bell') { w.varint(5, 32); return; }
  throw new PostcardError('not a NoticeKind');
}
export function decNoticeKind(r: Reader): NoticeKind {
  switch (r.variant(6)) {
    case 0: return 'approval';
    case 1: return 'turn_end';
    case 2: return 'turn_failed';
    case 3: return 'agent_failed';
    case 4: return 'session_ended';
    case 5: return 'bell';
    default: throw new PostcardError('bad NoticeKind');
  }
}

/** Which session a notice is about. */
export type NoticeSession =
  /** A terminal (PTY) session, by id. */
  | { pty: number }
  /** An agent session, by id. */
  | { agent: number };
export function encNoticeSession(w: Writer, v: NoticeSession): void {
  if (typeof v === 'object' && 'pty' in v) { w.varint(0, 32); w.u64(v.pty); return; }
  if (typeof v === 'object' && 'agent' in v) { w.varint(1, 32); w.u64(v.agent); return; }
  throw new PostcardError('not a NoticeSession');
}
export function decNoticeSession(r: Reader): NoticeSession {
  switch (r.variant(2)) {
    case 0: return { pty: r.u64() };
    case 1: return { agent: r.u64() };
    default: throw new PostcardError('bad NoticeSession');
  }
}

/** Terminal output. */
export interface Output {
  /** Absolute offset of `data[0]` in the session's output. */
  offset: number;
  /** The bytes, at most [`crate::MAX_CHUNK`]. */
  data: Uint8Array;
}
export function encOutput(w: Writer, v: Output): void {
  w.u64(v.offset);
  w.bytes(v.data);
}
export function decOutput(r: Reader): Output {
  return {
    offset: r.u64(),
    data: r.bytes(),
  };
}

/** A browser's first message after a pairing handshake (frame `PairBrowser`, channel 0). */
export interface PairBrowser {
  /** The name to list the browser under. */
  name: string;
}
export function encPairBrowser(w: Writer, v: PairBrowser): void {
  w.str(v.name);
}
export function decPairBrowser(r: Reader): PairBrowser {
  return {
    name: r.str(),
  };
}

/** An approval waiting for an answer, as [`crate::Request::ListApprovals`] lists it. */
export interface PendingApproval {
  /** Agent session id. */
  session: number;
  /** The approval's number. */
  approval: number;
  /** ACP `ToolCallUpdate`, as in the `permission` event. */
  tool_call: JsonText;
  /** ACP `PermissionOption` list, as in the `permission` event. */
  options: JsonText;
  /** The agent's working directory (a command without its own `cwd` runs there). */
  cwd: string;
  /** When the agent asked, unix milliseconds. */
  at_ms: number;
  /**
   * What the tool call will do, as the host reads it from `tool_call`: the reading the
   * `permission` event's `what` carries (empty: the agent said nothing more than the title).
   */
  what: ToolAction[];
}
export function encPendingApproval(w: Writer, v: PendingApproval): void {
  w.u64(v.session);
  w.u64(v.approval);
  encJsonText(w, v.tool_call);
  encJsonText(w, v.options);
  w.str(v.cwd);
  w.u64(v.at_ms);
  w.varint(v.what.length, 64); for (const x0 of v.what) { encToolAction(w, x0); }
}
export function decPendingApproval(r: Reader): PendingApproval {
  return {
    session: r.u64(),
    approval: r.u64(),
    tool_call: decJsonText(r),
    options: decJsonText(r),
    cwd: r.str(),
    at_ms: r.u64(),
    what: r.seq(() => decToolAction(r)),
  };
}

/**
 * A browser's Web Push subscription and the VAPID key to sign its requests with
 * ([`crate::Request::PushRegister`]).
 *
 * The VAPID key belongs to the app, not the host: a browser origin has one push subscription,
 * bound to one VAPID public key (`applicationServerKey`), and a phone may be paired with
 * several hosts. Every host the phone registers with signs with the same key.
 */
export interface PushRegister {
  /**
   * The subscription's endpoint (`PushSubscription.endpoint`), an `https://` URL of the
   * browser's push service.
   */
  endpoint: string;
  /** The subscription's P-256 public key (`keys.p256dh`), 65 bytes uncompressed. */
  p256dh: Uint8Array;
  /** The subscription's authentication secret (`keys.auth`), 16 bytes. */
  auth: Uint8Array;
  /** The VAPID private key (P-256 scalar), 32 bytes. */
  vapid_private: Uint8Array;
  /**
   * The VAPID public key (the subscription's `applicationServerKey`), 65 bytes
   * uncompressed.
   */
  vapid_public: Uint8Array;
  /** The kinds to send ([`NoticeKind::Bell`] is governed by [`crate::Request::PushBell`]). */
  kinds: NoticeKind[];
}
export function encPushRegister(w: Writer, v: PushRegister): void {
  w.str(v.endpoint);
  w.bytes(v.p256dh);
  w.bytes(v.auth);
  w.fixed(v.vapid_private, 32);
  w.bytes(v.vapid_public);
  w.varint(v.kinds.length, 64); for (const x0 of v.kinds) { encNoticeKind(w, x0); }
}
export function decPushRegister(r: Reader): PushRegister {
  return {
    endpoint: r.str(),
    p256dh: r.bytes(),
    auth: r.bytes(),
    vapid_private: r.fixed(32),
    vapid_public: r.bytes(),
    kinds: r.seq(() => decNoticeKind(r)),
  };
}

/** What the host holds for this device ([`crate::Reply::Push`]). */
export interface PushStatus {
  /** A subscription is registered. */
  registered: boolean;
  /** The origin of its endpoint (`https://fcm.googleapis.com`), if registered. */
  endpoint_origin: string | null;
  /** The kinds sent to it. */
  kinds: NoticeKind[];
  /** Terminal sessions whose bell it gets. */
  bell_sessions: number[];
  /** The last failure to deliver to it, if the last attempt failed (for people). */
  last_error: string | null;
}
export function encPushStatus(w: Writer, v: PushStatus): void {
  w.bool(v.registered);
  if (v.endpoint_origin === null) w.u8(0); else { w.u8(1); w.str(v.endpoint_origin); }
  w.varint(v.kinds.length, 64); for (const x0 of v.kinds) { encNoticeKind(w, x0); }
  w.varint(v.bell_sessions.length, 64); for (const x0 of v.bell_sessions) { w.u64(x0); }
  if (v.last_error === null) w.u8(0); else { w.u8(1); w.str(v.last_error); }
}
export function decPushStatus(r: Reader): PushStatus {
  return {
    registered: r.bool(),
    endpoint_origin: (r.option() ? r.str() : null),
    kinds: r.seq(() => decNoticeKind(r)),
    bell_sessions: r.seq(() => r.u64()),
    last_error: (r.option() ? r.str() : null),
  };
}

/**
 * A picture of the screen in place of output bytes. The output continues with the byte at
 * `offset`. A picture larger than one frame comes in several `Repaint` frames with the same
 * header, the last with `more: false`: a client joins their `data` and then draws it.
 */
export interface Repaint {
  /** The output offset the picture stands for: the next `Output` starts here. */
  offset: number;
  /**
   * Bytes of output before `offset` that this client asked for (or was following) and gets
   * only as this picture: `offset - skipped` is where it was.
   */
  skipped: number;
  /** The terminal size the picture is drawn for (the session's PTY size). */
  size: WinSize;
  /** Lines of scrollback drawn above the screen. */
  scrollback: number;
  /**
   * Escape sequences that draw the picture on a freshly reset terminal of `size` (part of
   * them, if `more`).
   */
  data: Uint8Array;
  /** More of the same picture follows in the next frame. */
  more: boolean;
}
export function encRepaint(w: Writer, v: Repaint): void {
  w.u64(v.offset);
  w.u64(v.skipped);
  encWinSize(w, v.size);
  w.varint(v.scrollback, 32);
  w.bytes(v.data);
  w.bool(v.more);
}
export function decRepaint(r: Reader): Repaint {
  return {
    offset: r.u64(),
    skipped: r.u64(),
    size: decWinSize(r),
    scrollback: r.varint(32),
    data: r.bytes(),
    more: r.bool(),
  };
}

/** Successful replies. */
export type Reply =
  /** Answer to [`Request::ListSessions`]. */
  | { Sessions: SessionInfo[] }
  /** Answer to [`Request::CreateSession`]. */
  | { Created: SessionInfo }
  /** Answer to [`Request::KillSession`]. */
  | 'Killed'
  /** Answer to [`Request::ListAgents`]. */
  | { Agents: AgentDef[] }
  /** Answer to [`Request::NewAgentSession`]. */
  | { AgentSession: AgentSessionInfo }
  /** Answer to [`Request::ListAgentSessions`], by id ascending. */
  | { AgentSessions: AgentSessionInfo[] }
  /** Answer to [`Request::AgentPrompt`]. */
  | {
    AgentPrompted: {
      /** The prompt waits behind a running turn (or other queued prompts). */
      queued: boolean;
    };
  }
  /** Answer to [`Request::AgentCancel`]. */
  | 'AgentCancelled'
  /** Answer to [`Request::AgentAnswer`]: this answer was the one given to the agent. */
  | 'AgentAnswered'
  /** Answer to [`Request::AgentDiff`]. */
  | { AgentDiff: AgentDiff }
  /** Answer to [`Request::AgentClose`]. */
  | 'AgentClosed'
  /** Answer to [`Request::AgentSetMode`] and [`Request::AgentSetOption`]: the agent agreed. */
  | 'AgentConfigured'
  /** Answer to [`Request::Unpair`]: the device is revoked; its connections close next. */
  | 'Unpaired'
  /** Answer to [`Request::ListModelServers`]. */
  | { ModelServers: ModelServer[] }
  /** Answer to [`Request::ListGpus`]. */
  | { Gpus: GpuInfo[] }
  /** Answer to every `Push*` request: what the host holds for this device now. */
  | { Push: PushStatus }
  /** Answer to [`Request::StartAgent`]. */
  | { AgentStarted: AgentStarted }
  /** Answer to [`Request::ListApprovals`], by session and approval. */
  | { Approvals: PendingApproval[] }
  /**
   * Answer to [`Request::ListGrants`] (by session and grant) and [`Request::AddGrant`] (the
   * new grant).
   */
  | { Grants: GrantInfo[] }
  /** Answer to [`Request::RevokeGrant`]. */
  | 'GrantRevoked'
  /** Answer to [`Request::RenameSession`]: the session as it is now. */
  | { Renamed: SessionInfo };
export function encReply(w: Writer, v: Reply): void {
  if (typeof v === 'object' && 'Sessions' in v) { w.varint(0, 32); w.varint(v.Sessions.length, 64); for (const x0 of v.Sessions) { encSessionInfo(w, x0); } return; }
  if (typeof v === 'object' && 'Created' in v) { w.varint(1, 32); encSessionInfo(w, v.Created); return; }
  if (v === 'Killed') { w.varint(2, 32); return; }
  if (typeof v === 'object' && 'Agents' in v) { w.varint(3, 32); w.varint(v.Agents.length, 64); for (const x0 of v.Agents) { encAgentDef(w, x0); } return; }
  if (typeof v === 'object' && 'AgentSession' in v) { w.varint(4, 32); encAgentSessionInfo(w, v.AgentSession); return; }
  if (typeof v === 'object' && 'AgentSessions' in v) { w.varint(5, 32); w.varint(v.AgentSessions.length, 64); for (const x0 of v.AgentSessions) { encAgentSessionInfo(w, x0); } return; }
  if (typeof v === 'object' && 'AgentPrompted' in v) { w.varint(6, 32); w.bool(v.AgentPrompted.queued); return; }
  if (v === 'AgentCancelled') { w.varint(7, 32); return; }
  if (v === 'AgentAnswered') { w.varint(8, 32); return; }
  if (typeof v === 'object' && 'AgentDiff' in v) { w.varint(9, 32); encAgentDiff(w, v.AgentDiff); return; }
  if (v === 'AgentClosed') { w.varint(10, 32); return; }
  if (v === 'AgentConfigured') { w.varint(11, 32); return; }
  if (v === 'Unpaired') { w.varint(12, 32); return; }
  if (typeof v === 'object' && 'ModelServers' in v) { w.varint(13, 32); w.varint(v.ModelServers.length, 64); for (const x0 of v.ModelServers) { encModelServer(w, x0); } return; }
  if (typeof v === 'object' && 'Gpus' in v) { w.varint(14, 32); w.varint(v.Gpus.length, 64); for (const x0 of v.Gpus) { encGpuInfo(w, x0); } return; }
  if (typeof v === 'object' && 'Push' in v) { w.varint(15, 32); encPushStatus(w, v.Push); return; }
  if (typeof v === 'object' && 'AgentStarted' in v) { w.varint(16, 32); encAgentStarted(w, v.AgentStarted); return; }
  if (typeof v === 'object' && 'Approvals' in v) { w.varint(17, 32); w.varint(v.Approvals.length, 64); for (const x0 of v.Approvals) { encPendingApproval(w, x0); } return; }
  if (typeof v === 'object' && 'Grants' in v) { w.varint(18, 32); w.varint(v.Grants.length, 64); for (const x0 of v.Grants) { encGrantInfo(w, x0); } return; }
  if (v === 'GrantRevoked') { w.varint(19, 32); return; }
  if (typeof v === 'object' && 'Renamed' in v) { w.varint(20, 32); encSessionInfo(w, v.Renamed); return; }
  throw new PostcardError('not a Reply');
}
export function decReply(r: Reader): Reply {
  switch (r.variant(21)) {
    case 0: return { Sessions: r.seq(() => decSessionInfo(r)) };
    case 1: return { Created: decSessionInfo(r) };
    case 2: return 'Killed';
    case 3: return { Agents: r.seq(() => decAgentDef(r)) };
    case 4: return { AgentSession: decAgentSessionInfo(r) };
    case 5: return { AgentSessions: r.seq(() => decAgentSessionInfo(r)) };
    case 6: return { AgentPrompted: { queued: r.bool() } };
    case 7: return 'AgentCancelled';
    case 8: return 'AgentAnswered';
    case 9: return { AgentDiff: decAgentDiff(r) };
    case 10: return 'AgentClosed';
    case 11: return 'AgentConfigured';
    case 12: return 'Unpaired';
    case 13: return { ModelServers: r.seq(() => decModelServer(r)) };
    case 14: return { Gpus: r.seq(() => decGpuInfo(r)) };
    case 15: return { Push: decPushStatus(r) };
    case 16: return { AgentStarted: decAgentStarted(r) };
    case 17: return { Approvals: r.seq(() => decPendingApproval(r)) };
    case 18: return { Grants: r.seq(() => decGrantInfo(r)) };
    case 19: return 'GrantRevoked';
    case 20: return { Renamed: decSessionInfo(r) };
    default: throw new PostcardError('bad Reply');
  }
}

/** Requests a client may make. */
export type Request =
  /** List the host's sessions. */
  | 'ListSessions'
  /** Start a new PTY session. */
  | { CreateSession: CreateSession }
  /** Kill a running session (SIGHUP, then SIGKILL after a grace period) or forget an ended one. */
  | {
    KillSession: {
      /** Session id. */
      session: number;
    };
  }
  /** List the agents the host can run. */
  | 'ListAgents'
  /** Start an agent session in a new git worktree. */
  | { NewAgentSession: NewAgentSession }
  /** List agent sessions. */
  | 'ListAgentSessions'
  /** Send a prompt; queued if a turn is running. */
  | {
    AgentPrompt: {
      /** Agent session id. */
      session: number;
      /** The prompt text. */
      text: string;
    };
  }
  /**
   * Cancel the running turn (pending approvals are answered cancelled, queued prompts
   * dropped).
   */
  | {
    AgentCancel: {
      /** Agent session id. */
      session: number;
    };
  }
  /** Answer a pending approval. */
  | {
    AgentAnswer: {
      /** Agent session id. */
      session: number;
      /** The approval's number, from its `permission` event. */
      approval: number;
      /** The chosen option id; `None` answers `cancelled`. */
      option: string | null;
    };
  }
  /** The worktree's changes against the session's base commit. */
  | {
    AgentDiff: {
      /** Agent session id. */
      session: number;
    };
  }
  /** Stop an agent session (state `done`); optionally remove its worktree and branch. */
  | {
    AgentClose: {
      /** Agent session id. */
      session: number;
      /** Also delete the worktree directory and its branch. */
      remove_worktree: boolean;
    };
  }
  /** Switch the agent's mode (ACP `session/set_mode`), e.g. `plan` or `code`. */
  | {
    AgentSetMode: {
      /** Agent session id. */
      session: number;
      /** A mode id the agent offered (see the `started` event's `modes`). */
      mode: string;
    };
  }
  /**
   * Set one of the agent's configuration options (ACP `session/set_config_option`), e.g.
   * the model.
   */
  | {
    AgentSetOption: {
      /** Agent session id. */
      session: number;
      /** The option id (see the `started` event's `configOptions`), e.g. `model`. */
      option: string;
      /** The value id to choose. */
      value: string;
    };
  }
  /**
   * This device leaves the host: the host revokes it (any role may). For a device whose
   * person saw different short codes at pairing, or that forgets the host.
   */
  | 'Unpair'
  /**
   * Probe the model servers the host can reach (the usual local ports and those in its
   * `agents.toml`), at most about a second.
   */
  | 'ListModelServers'
  /** The host's GPUs (empty without `nvidia-smi`). */
  | 'ListGpus'
  /** Send this device's notices as Web Push to this subscription (replaces an earlier one). */
  | { PushRegister: PushRegister }
  /** Stop sending Web Push to this device (forgets its subscription). */
  | 'PushUnregister'
  /** Which notice kinds this device's subscription gets. */
  | {
    PushKinds: {
      /** The kinds ([`NoticeKind::Bell`] is governed by [`Request::PushBell`]). */
      kinds: NoticeKind[];
    };
  }
  /** What the host holds for this device's notifications. */
  | 'PushStatus'
  /**
   * Whether this device's app is in front: a device that is attached to a session and
   * visible gets no notices about that session (they are held, and sent if it goes away
   * within a few seconds without having left the session).
   */
  | {
    PushFocus: {
      /** The app is visible (`false`: in the background, the screen is off). */
      visible: boolean;
    };
  }
  /** Notify this device when terminal session `session` rings its bell (or stop). */
  | {
    PushBell: {
      /** Terminal session id. */
      session: number;
      /** On or off. */
      on: boolean;
    };
  }
  /**
   * Start an agent session in a new git worktree ([`NewAgentSession`] with more options
   * and an answer that says what to know).
   */
  | { StartAgent: StartAgent }
  /** Every approval waiting for an answer, in every agent session. */
  | 'ListApprovals'
  /** The grants of one agent session, or of every session that is not done or failed. */
  | {
    ListGrants: {
      /** Agent session id; `None`: every live session. */
      session: number | null;
    };
  }
  /** Make a grant: the host answers the tool calls it covers itself from now on. */
  | {
    AddGrant: {
      /** Agent session id. */
      session: number;
      /** What it covers. */
      scope: GrantScope;
      /** Allow (`true`) or reject. */
      allow: boolean;
    };
  }
  /** Revoke a grant. */
  | {
    RevokeGrant: {
      /** Agent session id. */
      session: number;
      /** The grant's number. */
      grant: number;
    };
  }
  /** Give a PTY session a display name, or take it away. */
  | {
    RenameSession: {
      /** Session id. */
      session: number;
      /**
       * The new name (at most 64 bytes, no control characters, as in
       * [`CreateSession::name`]);
       * `None` or empty: no name.
       */
      name: string | null;
    };
  };
export function encRequest(w: Writer, v: Request): void {
  if (v === 'ListSessions') { w.varint(0, 32); return; }
  if (typeof v === 'object' && 'CreateSession' in v) { w.varint(1, 32); encCreateSession(w, v.CreateSession); return; }
  if (typeof v === 'object' && 'KillSession' in v) { w.varint(2, 32); w.u64(v.KillSession.session); return; }
  if (v === 'ListAgents') { w.varint(3, 32); return; }
  if (typeof v === 'object' && 'NewAgentSession' in v) { w.varint(4, 32); encNewAgentSession(w, v.NewAgentSession); return; }
  if (v === 'ListAgentSessions') { w.varint(5, 32); return; }
  if (typeof v === 'object' && 'AgentPrompt' in v) { w.varint(6, 32); w.u64(v.AgentPrompt.session); w.str(v.AgentPrompt.text); return; }
  if (typeof v === 'object' && 'AgentCancel' in v) { w.varint(7, 32); w.u64(v.AgentCancel.session); return; }
  if (typeof v === 'object' && 'AgentAnswer' in v) { w.varint(8, 32); w.u64(v.AgentAnswer.session); w.u64(v.AgentAnswer.approval); if (v.AgentAnswer.option === null) w.u8(0); else { w.u8(1); w.str(v.AgentAnswer.option); } return; }
  if (typeof v === 'object' && 'AgentDiff' in v) { w.varint(9, 32); w.u64(v.AgentDiff.session); return; }
  if (typeof v === 'object' && 'AgentClose' in v) { w.varint(10, 32); w.u64(v.AgentClose.session); w.bool(v.AgentClose.remove_worktree); return; }
  if (typeof v === 'object' && 'AgentSetMode' in v) { w.varint(11, 32); w.u64(v.AgentSetMode.session); w.str(v.AgentSetMode.mode); return; }
  if (typeof v === 'object' && 'AgentSetOption' in v) { w.varint(12, 32); w.u64(v.AgentSetOption.session); w.str(v.AgentSetOption.option); w.str(v.AgentSetOption.value); return; }
  if (v === 'Unpair') { w.varint(13, 32); return; }
  if (v === 'ListModelServers') { w.varint(14, 32); return; }
  if (v === 'ListGpus') { w.varint(15, 32); return; }
  if (typeof v === 'object' && 'PushRegister' in v) { w.varint(16, 32); encPushRegister(w, v.PushRegister); return; }
  if (v === 'PushUnregister') { w.varint(17, 32); return; }
  if (typeof v === 'object' && 'PushKinds' in v) { w.varint(18, 32); w.varint(v.PushKinds.kinds.length, 64); for (const x0 of v.PushKinds.kinds) { encNoticeKind(w, x0); } return; }
  if (v === 'PushStatus') { w.varint(19, 32); return; }
  if (typeof v === 'object' && 'PushFocus' in v) { w.varint(20, 32); w.bool(v.PushFocus.visible); return; }
  if (typeof v === 'object' && 'PushBell' in v) { w.varint(21, 32); w.u64(v.PushBell.session); w.bool(v.PushBell.on); return; }
  if (typeof v === 'object' && 'StartAgent' in v) { w.varint(22, 32); encStartAgent(w, v.StartAgent); return; }
  if (v === 'ListApprovals') { w.varint(23, 32); return; }
  if (typeof v === 'object' && 'ListGrants' in v) { w.varint(24, 32); if (v.ListGrants.session === null) w.u8(0); else { w.u8(1); w.u64(v.ListGrants.session); } return; }
  if (typeof v === 'object' && 'AddGrant' in v) { w.varint(25, 32); w.u64(v.AddGrant.session); encGrantScope(w, v.AddGrant.scope); w.bool(v.AddGrant.allow); return; }
  if (typeof v === 'object' && 'RevokeGrant' in v) { w.varint(26, 32); w.u64(v.RevokeGrant.session); w.u64(v.RevokeGrant.grant); return; }
  if (typeof v === 'object' && 'RenameSession' in v) { w.varint(27, 32); w.u64(v.RenameSession.session); if (v.RenameSession.name === null) w.u8(0); else { w.u8(1); w.str(v.RenameSession.name); } return; }
  throw new PostcardError('not a Request');
}
export function decRequest(r: Reader): Request {
  switch (r.variant(28)) {
    case 0: return 'ListSessions';
    case 1: return { CreateSession: decCreateSession(r) };
    case 2: return { KillSession: { session: r.u64() } };
    case 3: return 'ListAgents';
    case 4: return { NewAgentSession: decNewAgentSession(r) };
    case 5: return 'ListAgentSessions';
    case 6: return { AgentPrompt: { session: r.u64(), text: r.str() } };
    case 7: return { AgentCancel: { session: r.u64() } };
    case 8: return { AgentAnswer: { session: r.u64(), approval: r.u64(), option: (r.option() ? r.str() : null) } };
    case 9: return { AgentDiff: { session: r.u64() } };
    case 10: return { AgentClose: { session: r.u64(), remove_worktree: r.bool() } };
    case 11: return { AgentSetMode: { session: r.u64(), mode: r.str() } };
    case 12: return { AgentSetOption: { session: r.u64(), option: r.str(), value: r.str() } };
    case 13: return 'Unpair';
    case 14: return 'ListModelServers';
    case 15: return 'ListGpus';
    case 16: return { PushRegister: decPushRegister(r) };
    case 17: return 'PushUnregister';
    case 18: return { PushKinds: { kinds: r.seq(() => decNoticeKind(r)) } };
    case 19: return 'PushStatus';
    case 20: return { PushFocus: { visible: r.bool() } };
    case 21: return { PushBell: { session: r.u64(), on: r.bool() } };
    case 22: return { StartAgent: decStartAgent(r) };
    case 23: return 'ListApprovals';
    case 24: return { ListGrants: { session: (r.option() ? r.u64() : null) } };
    case 25: return { AddGrant: { session: r.u64(), scope: decGrantScope(r), allow: r.bool() } };
    case 26: return { RevokeGrant: { session: r.u64(), grant: r.u64() } };
    case 27: return { RenameSession: { session: r.u64(), name: (r.option() ? r.str() : null) } };
    default: throw new PostcardError('bad Request');
  }
}

/** A request on the control stream. */
export interface RequestFrame {
  /** Chosen by the client; echoed in the response. */
  id: number;
  /** What is asked. */
  request: Request;
}
export function encRequestFrame(w: Writer, v: RequestFrame): void {
  w.varint(v.id, 32);
  encRequest(w, v.request);
}
export function decRequestFrame(r: Reader): RequestFrame {
  return {
    id: r.varint(32),
    request: decRequest(r),
  };
}

/** The answer to a [`RequestFrame`]. */
export interface ResponseFrame {
  /** The request's id. */
  id: number;
  /** The outcome. */
  result: { Ok: Reply } | { Err: WireError };
}
export function encResponseFrame(w: Writer, v: ResponseFrame): void {
  w.varint(v.id, 32);
  if ('Ok' in v.result) { w.u8(0); encReply(w, v.result.Ok); } else { w.u8(1); encWireError(w, v.result.Err); }
}
export function decResponseFrame(r: Reader): ResponseFrame {
  return {
    id: r.varint(32),
    result: (r.variant(2) === 0 ? { Ok: decReply(r) } : { Err: decWireError(r) }),
  };
}

/** How a conversation was re-attached after a host restart. */
export type ResumeMethod =
  /** `session/load`: the agent has the whole conversation. */
  | 'load'
  /** `session/resume`: the agent has the conversation, without a replay. */
  | 'resume'
  /** `session/new`: the agent lost the conversation (the transcript is kept). */
  | 'new';
export function encResumeMethod(w: Writer, v: ResumeMethod): void {
  if (v === 'load') { w.varint(0, 32); return; }
  if (v === 'resume') { w.varint(1, 32); return; }
  if (v === 'new') { w.varint(2, 32); return; }
  throw new PostcardError('not a ResumeMethod');
}
export function decResumeMethod(r: Reader): ResumeMethod {
  switch (r.variant(3)) {
    case 0: return 'load';
    case 1: return 'resume';
    case 2: return 'new';
    default: throw new PostcardError('bad ResumeMethod');
  }
}

/** What a device may do on a host. */
export type Role =
  /** May create, kill and type into sessions. */
  | 'Operator'
  /** May list sessions and watch their output, nothing more. */
  | 'Viewer';
export function encRole(w: Writer, v: Role): void {
  if (v === 'Operator') { w.varint(0, 32); return; }
  if (v === 'Viewer') { w.varint(1, 32); return; }
  throw new PostcardError('not a Role');
}
export function decRole(r: Reader): Role {
  switch (r.variant(2)) {
    case 0: return 'Operator';
    case 1: return 'Viewer';
    default: throw new PostcardError('bad Role');
  }
}

/** What the host's model of a session's screen knows, for session lists. */
export interface ScreenFacts {
  /** The window title the program set (OSC 0 or 2). */
  title: string | null;
  /** The working directory the shell last announced (OSC 7 `file://host/path`). */
  cwd: string | null;
  /** The lowest line of the screen that is not blank, trimmed (at most 200 characters). */
  last_line: string | null;
  /** When the session last printed anything, unix milliseconds (0: never). */
  last_output_ms: number;
  /** Bells rung so far. */
  bells: number;
  /** When the last bell rang, unix milliseconds (0: never). */
  last_bell_ms: number;
}
export function encScreenFacts(w: Writer, v: ScreenFacts): void {
  if (v.title === null) w.u8(0); else { w.u8(1); w.str(v.title); }
  if (v.cwd === null) w.u8(0); else { w.u8(1); w.str(v.cwd); }
  if (v.last_line === null) w.u8(0); else { w.u8(1); w.str(v.last_line); }
  w.u64(v.last_output_ms);
  w.u64(v.bells);
  w.u64(v.last_bell_ms);
}
export function decScreenFacts(r: Reader): ScreenFacts {
  return {
    title: (r.option() ? r.str() : null),
    cwd: (r.option() ? r.str() : null),
    last_line: (r.option() ? r.str() : null),
    last_output_ms: r.u64(),
    bells: r.u64(),
    last_bell_ms: r.u64(),
  };
}

/** How a client wants its pictures of the screen. */
export interface ScreenRequest {
  /** Lines of scrollback to draw above the screen (the host draws at most what it keeps). */
  scrollback: number;
}
export function encScreenRequest(w: Writer, v: ScreenRequest): void {
  w.varint(v.scrollback, 32);
}
export function decScreenRequest(r: Reader): ScreenRequest {
  return {
    scrollback: r.varint(32),
  };
}

/** What a session list shows. */
export interface SessionInfo {
  /**
   * Host-unique id, small and stable; an ended session keeps it across host restarts until
   * it is forgotten.
   */
  id: number;
  /** Display name, if one was given. */
  name: string | null;
  /** The command line the session runs. */
  command: string[];
  /** Working directory. */
  cwd: string;
  /** Creation time, unix milliseconds. */
  created_at_ms: number;
  /** Running or ended. */
  state: SessionState;
  /** Current PTY size. */
  size: WinSize;
  /** Number of streams attached now. */
  attached: number;
  /** Absolute offset of the end of the output. */
  output_end: number;
  /** What the host's model of the screen knows (docs/protocol.md §8.7). */
  screen: ScreenFacts;
  /**
   * When output last arrived or input was last applied (creation time before either), unix
   * milliseconds.
   */
  last_activity_ms: number;
  /** When the process ended, unix milliseconds (`None` while it runs). */
  ended_at_ms: number | null;
}
export function encSessionInfo(w: Writer, v: SessionInfo): void {
  w.u64(v.id);
  if (v.name === null) w.u8(0); else { w.u8(1); w.str(v.name); }
  w.varint(v.command.length, 64); for (const x0 of v.command) { w.str(x0); }
  w.str(v.cwd);
  w.u64(v.created_at_ms);
  encSessionState(w, v.state);
  encWinSize(w, v.size);
  w.varint(v.attached, 32);
  w.u64(v.output_end);
  encScreenFacts(w, v.screen);
  w.u64(v.last_activity_ms);
  if (v.ended_at_ms === null) w.u8(0); else { w.u8(1); w.u64(v.ended_at_ms); }
}
export function decSessionInfo(r: Reader): SessionInfo {
  return {
    id: r.u64(),
    name: (r.option() ? r.str() : null),
    command: r.seq(() => r.str()),
    cwd: r.str(),
    created_at_ms: r.u64(),
    state: decSessionState(r),
    size: decWinSize(r),
    attached: r.varint(32),
    output_end: r.u64(),
    screen: decScreenFacts(r),
    last_activity_ms: r.u64(),
    ended_at_ms: (r.option() ? r.u64() : null),
  };
}

/** A session's life. */
export type SessionState =
  /** The process runs. */
  | 'Running'
  /** The process ended. */
  | { Exited: ExitInfo };
export function encSessionState(w: Writer, v: SessionState): void {
  if (v === 'Running') { w.varint(0, 32); return; }
  if (typeof v === 'object' && 'Exited' in v) { w.varint(1, 32); encExitInfo(w, v.Exited); return; }
  throw new PostcardError('not a SessionState');
}
export function decSessionState(r: Reader): SessionState {
  switch (r.variant(2)) {
    case 0: return 'Running';
    case 1: return { Exited: decExitInfo(r) };
    default: throw new PostcardError('bad SessionState');
  }
}

/** Parameters of a new agent session ([`crate::Request::StartAgent`]). */
export interface StartAgent {
  /** Agent name from [`crate::Request::ListAgents`]. */
  agent: string;
  /**
   * Absolute path on the host of a git repository or of a directory inside one (then the
   * agent works in that directory of the worktree).
   */
  repo: string;
  /** Branch, tag or commit to start from; `None`: the repository's `HEAD`. */
  base: string | null;
  /** A first prompt, sent once the agent is ready. */
  prompt: string | null;
  /**
   * Bring the checkout's uncommitted changes (staged, unstaged and untracked files) into the
   * new worktree.
   */
  with_changes: boolean;
  /**
   * `local:MODEL` or `local:SERVER/MODEL`: run the agent on a model of a model server on
   * the host's machine, as [`NewAgentSession::model`]; `None`: the agent's own model.
   */
  model: string | null;
}
export function encStartAgent(w: Writer, v: StartAgent): void {
  w.str(v.agent);
  w.str(v.repo);
  if (v.base === null) w.u8(0); else { w.u8(1); w.str(v.base); }
  if (v.prompt === null) w.u8(0); else { w.u8(1); w.str(v.prompt); }
  w.bool(v.with_changes);
  if (v.model === null) w.u8(0); else { w.u8(1); w.str(v.model); }
}
export function decStartAgent(r: Reader): StartAgent {
  return {
    agent: r.str(),
    repo: r.str(),
    base: (r.option() ? r.str() : null),
    prompt: (r.option() ? r.str() : null),
    with_changes: r.bool(),
    model: (r.option() ? r.str() : null),
  };
}

/** How a turn ended: ACP's stop reasons, and the host's own. */
export type StopReason =
  /** ACP `end_turn`. */
  | 'end_turn'
  /** ACP `max_tokens`. */
  | 'max_tokens'
  /** ACP `max_turn_requests`. */
  | 'max_turn_requests'
  /** ACP `refusal`. */
  | 'refusal'
  /** ACP `cancelled`. */
  | 'cancelled'
  /** The agent died during the turn. */
  | 'failed'
  /** The host restarted during the turn. */
  | {
    interrupted: {
      /** What happened. */
      reason: string;
    };
  }
  /** A client closed the session during the turn. */
  | 'closed'
  /** `session/prompt` failed. */
  | {
    error: {
      /** The agent's error. */
      error: string;
    };
  }
  /** A stop reason ACP added after this host was built. */
  | {
    other: {
      /** Its name. */
      name: string;
    };
  };
export function encStopReason(w: Writer, v: StopReason): void {
  if (v === 'end_turn') { w.varint(0, 32); return; }
  if (v === 'max_tokens') { w.varint(1, 32); return; }
  if (v === 'max_turn_requests') { w.varint(2, 32); return; }
  if (v === 'refusal') { w.varint(3, 32); return; }
  if (v === 'cancelled') { w.varint(4, 32); return; }
  if (v === 'failed') { w.varint(5, 32); return; }
  if (typeof v === 'object' && 'interrupted' in v) { w.varint(6, 32); w.str(v.interrupted.reason); return; }
  if (v === 'closed') { w.varint(7, 32); return; }
  if (typeof v === 'object' && 'error' in v) { w.varint(8, 32); w.str(v.error.error); return; }
  if (typeof v === 'object' && 'other' in v) { w.varint(9, 32); w.str(v.other.name); return; }
  throw new PostcardError('not a StopReason');
}
export function decStopReason(r: Reader): StopReason {
  switch (r.variant(10)) {
    case 0: return 'end_turn';
    case 1: return 'max_tokens';
    case 2: return 'max_turn_requests';
    case 3: return 'refusal';
    case 4: return 'cancelled';
    case 5: return 'failed';
    case 6: return { interrupted: { reason: r.str() } };
    case 7: return 'closed';
    case 8: return { error: { error: r.str() } };
    case 9: return { other: { name: r.str() } };
    default: throw new PostcardError('bad StopReason');
  }
}

/**
 * One thing a tool call will do, as a person checks it before approving: read by the host
 * from the ACP `ToolCallUpdate` (`title`, `kind`, `rawInput`, `locations`, `content`). Every
 * text is as the agent sent it, cut to at most 2000 characters (a cut ends `… (N more
 * characters)`); whoever shows it makes control characters visible first. Variant indexes are
 * wire values: new ones are added at the end.
 */
export type ToolAction =
  /** Runs a command. */
  | {
    run: {
      /** The command line. */
      command: string;
      /** Where: the tool call's own directory, or `None` for the agent's working directory. */
      cwd: string | null;
    };
  }
  /** Changes (or creates, or deletes) a file. */
  | {
    edit: {
      /** The file. */
      path: string;
      /**
       * The change (empty: the agent did not show it). At most 40 lines of at most 300
       * characters, then one [`DiffLine::Cut`].
       */
      diff: DiffLine[];
    };
  }
  /** Reads or touches a file without showing a change (`path:line` when a line is known). */
  | {
    file: {
      /** The file. */
      path: string;
    };
  }
  /** Fetches a URL. */
  | {
    fetch: {
      /** The URL. */
      url: string;
    };
  }
  /** Searches for something. */
  | {
    search: {
      /** The pattern or query. */
      query: string;
    };
  };
export function encToolAction(w: Writer, v: ToolAction): void {
  if (typeof v === 'object' && 'run' in v) { w.varint(0, 32); w.str(v.run.command); if (v.run.cwd === null) w.u8(0); else { w.u8(1); w.str(v.run.cwd); } return; }
  if (typeof v === 'object' && 'edit' in v) { w.varint(1, 32); w.str(v.edit.path); w.varint(v.edit.diff.length, 64); for (const x0 of v.edit.diff) { encDiffLine(w, x0); } return; }
  if (typeof v === 'object' && 'file' in v) { w.varint(2, 32); w.str(v.file.path); return; }
  if (typeof v === 'object' && 'fetch' in v) { w.varint(3, 32); w.str(v.fetch.url); return; }
  if (typeof v === 'object' && 'search' in v) { w.varint(4, 32); w.str(v.search.query); return; }
  throw new PostcardError('not a ToolAction');
}
export function decToolAction(r: Reader): ToolAction {
  switch (r.variant(5)) {
    case 0: return { run: { command: r.str(), cwd: (r.option() ? r.str() : null) } };
    case 1: return { edit: { path: r.str(), diff: r.seq(() => decDiffLine(r)) } };
    case 2: return { file: { path: r.str() } };
    case 3: return { fetch: { url: r.str() } };
    case 4: return { search: { query: r.str() } };
    default: throw new PostcardError('bad ToolAction');
  }
}

/** First frame of a notice stream ([`crate::Frame::Watch`]). */
export interface Watch {
  /** Only these kinds (empty: all). */
  kinds: NoticeKind[];
}
export function encWatch(w: Writer, v: Watch): void {
  w.varint(v.kinds.length, 64); for (const x0 of v.kinds) { encNoticeKind(w, x0); }
}
export function decWatch(r: Reader): Watch {
  return {
    kinds: r.seq(() => decNoticeKind(r)),
  };
}

/** A terminal size in character cells. */
export interface WinSize {
  /** Columns. */
  cols: number;
  /** Rows. */
  rows: number;
}
export function encWinSize(w: Writer, v: WinSize): void {
  w.varint(v.cols, 16);
  w.varint(v.rows, 16);
}
export function decWinSize(r: Reader): WinSize {
  return {
    cols: r.varint(16),
    rows: r.varint(16),
  };
}

/** An error with a code and a message for people. */
export interface WireError {
  /** Machine-readable code. */
  code: ErrorCode;
  /** For people. */
  message: string;
}
export function encWireError(w: Writer, v: WireError): void {
  encErrorCode(w, v.code);
  w.str(v.message);
}
export function decWireError(r: Reader): WireError {
  return {
    code: decErrorCode(r),
    message: r.str(),
  };
}

/** Who may send a frame type. */
export type Sender = 'Client' | 'Host' | 'Either';

/** One frame: its type and its message. */
export type Frame =
  /** client → host, first frame of the control stream. */
  | { type: 'ClientHello'; message: ClientHello }
  /**
   * host → client, answer to [`FrameType::ClientHello`]; on a browser channel, the first
   * frame on channel 0 after the handshake (and after pairing).
   */
  | { type: 'HostHello'; message: HostHello }
  /** client → host request on the control stream (channel 0). */
  | { type: 'Request'; message: RequestFrame }
  /** host → client answer to a request. */
  | { type: 'Response'; message: ResponseFrame }
  /**
   * Either side, control stream (channel 0): are you there? Answered by [`FrameType::Pong`]
   * with the same number.
   */
  | { type: 'Ping'; message: number }
  /** Either side: the answer to [`FrameType::Ping`]. */
  | { type: 'Pong'; message: number }
  /**
   * host → client, control stream (channel 0), right after [`FrameType::HostHello`] on every
   * connection: where the host is now and how to get into its relays.
   */
  | { type: 'HostRoutes'; message: HostRoutes }
  /** client → host, first frame of an attach stream (a browser: of a new channel). */
  | { type: 'Attach'; message: Attach }
  /** host → client, answer to [`FrameType::Attach`]. */
  | { type: 'Attached'; message: Attached }
  /** host → client terminal output at an absolute offset. */
  | { type: 'Output'; message: Output }
  /** host → client: output the client asked for is no longer in the buffer. */
  | { type: 'Gap'; message: Gap }
  /** host → client: the session's process ended; no output follows. */
  | { type: 'Exited'; message: Exited }
  /** client → host keystrokes with a sequence number. */
  | { type: 'Input'; message: Input }
  /** host → client: inputs up to this sequence number were applied. */
  | { type: 'InputAck'; message: InputAck }
  /** client → host window size. */
  | { type: 'Resize'; message: WinSize }
  /**
   * client → host, attach stream: output before this offset has arrived. From the first
   * one on, the host keeps what the client has not acknowledged for it to resume from, and
   * sends at most [`crate::OUTPUT_WINDOW`] past it.
   */
  | { type: 'Received'; message: number }
  /** client → host: detach this stream (channel) cleanly. */
  | { type: 'Detach' }
  /**
   * host → client, browser channel 0 only: the socket ends now, for this reason (the
   * WebSocket close code that follows says the same, but only this frame is authenticated).
   */
  | { type: 'Close'; message: CloseReason }
  /** either direction: an error on this stream (channel); the stream ends after it. */
  | { type: 'Error'; message: WireError }
  /** local CLI → host over the control socket. */
  | { type: 'LocalRequest'; message: LocalRequest }
  /** host → local CLI over the control socket. */
  | { type: 'LocalReply'; message: LocalReply }
  /** client → host, first frame of an agent event stream (a browser: of a new channel). */
  | { type: 'AgentAttach'; message: AgentAttach }
  /** host → client, answer to [`FrameType::AgentAttach`]. */
  | { type: 'AgentAttached'; message: AgentAttached }
  /** host → client, one transcript event of an agent session. */
  | { type: 'AgentEvent'; message: AgentEvent }
  /**
   * browser → host, channel 0, the first frame after a pairing handshake: the name to list
   * this browser under.
   */
  | { type: 'PairBrowser'; message: PairBrowser }
  /**
   * host → browser, channel 0: pairing done; keep the device psk. [`FrameType::HostHello`]
   * follows.
   */
  | { type: 'BrowserPaired'; message: BrowserPaired }
  /** client → host, first frame of a notice stream (native clients: `peer watch`). */
  | { type: 'Watch'; message: Watch }
  /** host → client, answer to [`FrameType::Watch`]: notices follow as they happen. */
  | { type: 'Watching' }
  /** host → client: one notice ([`crate::push`]). */
  | { type: 'Notice'; message: Notice }
  /**
   * host → client, attach stream: a picture of the screen in place of output bytes (after
   * `Attached`, or in place of a `Gap`), for clients that asked with `Attach.screen`.
   */
  | { type: 'Repaint'; message: Repaint }
  /**
   * host → client, attach stream: echo of inputs has arrived by an offset, for clients that
   * asked with `Attach.echo_acks`.
   */
  | { type: 'EchoAck'; message: EchoAck };

/** The registry: type byte and sender of every frame type. */
export const FRAME_TYPES: Record<Frame['type'], { byte: number; sender: Sender }> = {
  ClientHello: { byte: 0x01, sender: 'Client' },
  HostHello: { byte: 0x02, sender: 'Host' },
  Request: { byte: 0x03, sender: 'Client' },
  Response: { byte: 0x04, sender: 'Host' },
  Ping: { byte: 0x05, sender: 'Either' },
  Pong: { byte: 0x06, sender: 'Either' },
  HostRoutes: { byte: 0x07, sender: 'Host' },
  Attach: { byte: 0x10, sender: 'Client' },
  Attached: { byte: 0x11, sender: 'Host' },
  Output: { byte: 0x12, sender: 'Host' },
  Gap: { byte: 0x13, sender: 'Host' },
  Exited: { byte: 0x14, sender: 'Host' },
  Input: { byte: 0x15, sender: 'Client' },
  InputAck: { byte: 0x16, sender: 'Host' },
  Resize: { byte: 0x17, sender: 'Client' },
  Received: { byte: 0x1b, sender: 'Client' },
  Detach: { byte: 0x18, sender: 'Client' },
  Close: { byte: 0x1e, sender: 'Host' },
  Error: { byte: 0x1f, sender: 'Either' },
  LocalRequest: { byte: 0x20, sender: 'Client' },
  LocalReply: { byte: 0x21, sender: 'Host' },
  AgentAttach: { byte: 0x30, sender: 'Client' },
  AgentAttached: { byte: 0x31, sender: 'Host' },
  AgentEvent: { byte: 0x32, sender: 'Host' },
  PairBrowser: { byte: 0x40, sender: 'Client' },
  BrowserPaired: { byte: 0x41, sender: 'Host' },
  Watch: { byte: 0x50, sender: 'Client' },
  Watching: { byte: 0x51, sender: 'Host' },
  Notice: { byte: 0x52, sender: 'Host' },
  Repaint: { byte: 0x19, sender: 'Host' },
  EchoAck: { byte: 0x1a, sender: 'Host' },
};

/** Appends a frame body (type byte, postcard payload) to `w`. */
export function encodeFrameBody(w: Writer, f: Frame): void {
  switch (f.type) {
    case 'ClientHello': w.u8(0x01); encClientHello(w, f.message); return;
    case 'HostHello': w.u8(0x02); encHostHello(w, f.message); return;
    case 'Request': w.u8(0x03); encRequestFrame(w, f.message); return;
    case 'Response': w.u8(0x04); encResponseFrame(w, f.message); return;
    case 'Ping': w.u8(0x05); w.u64(f.message); return;
    case 'Pong': w.u8(0x06); w.u64(f.message); return;
    case 'HostRoutes': w.u8(0x07); encHostRoutes(w, f.message); return;
    case 'Attach': w.u8(0x10); encAttach(w, f.message); return;
    case 'Attached': w.u8(0x11); encAttached(w, f.message); return;
    case 'Output': w.u8(0x12); encOutput(w, f.message); return;
    case 'Gap': w.u8(0x13); encGap(w, f.message); return;
    case 'Exited': w.u8(0x14); encExited(w, f.message); return;
    case 'Input': w.u8(0x15); encInput(w, f.message); return;
    case 'InputAck': w.u8(0x16); encInputAck(w, f.message); return;
    case 'Resize': w.u8(0x17); encWinSize(w, f.message); return;
    case 'Received': w.u8(0x1b); w.u64(f.message); return;
    case 'Detach': w.u8(0x18); return;
    case 'Close': w.u8(0x1e); encCloseReason(w, f.message); return;
    case 'Error': w.u8(0x1f); encWireError(w, f.message); return;
    case 'LocalRequest': w.u8(0x20); encLocalRequest(w, f.message); return;
    case 'LocalReply': w.u8(0x21); encLocalReply(w, f.message); return;
    case 'AgentAttach': w.u8(0x30); encAgentAttach(w, f.message); return;
    case 'AgentAttached': w.u8(0x31); encAgentAttached(w, f.message); return;
    case 'AgentEvent': w.u8(0x32); encAgentEvent(w, f.message); return;
    case 'PairBrowser': w.u8(0x40); encPairBrowser(w, f.message); return;
    case 'BrowserPaired': w.u8(0x41); encBrowserPaired(w, f.message); return;
    case 'Watch': w.u8(0x50); encWatch(w, f.message); return;
    case 'Watching': w.u8(0x51); return;
    case 'Notice': w.u8(0x52); encNotice(w, f.message); return;
    case 'Repaint': w.u8(0x19); encRepaint(w, f.message); return;
    case 'EchoAck': w.u8(0x1a); encEchoAck(w, f.message); return;
  }
}

/**
 * Decodes a frame body that fills the reader to its end. Throws FrameError with the
 * words the Rust decoder uses (unknown type, malformed, trailing bytes).
 */
export function decodeFrameBody(r: Reader): Frame {
  if (r.done()) throw new FrameError('empty frame');
  const byte = r.u8();
  let f: Frame;
  try {
    switch (byte) {
      case 0x01: f = { type: 'ClientHello', message: decClientHello(r) }; break;
      case 0x02: f = { type: 'HostHello', message: decHostHello(r) }; break;
      case 0x03: f = { type: 'Request', message: decRequestFrame(r) }; break;
      case 0x04: f = { type: 'Response', message: decResponseFrame(r) }; break;
      case 0x05: f = { type: 'Ping', message: r.u64() }; break;
      case 0x06: f = { type: 'Pong', message: r.u64() }; break;
      case 0x07: f = { type: 'HostRoutes', message: decHostRoutes(r) }; break;
      case 0x10: f = { type: 'Attach', message: decAttach(r) }; break;
      case 0x11: f = { type: 'Attached', message: decAttached(r) }; break;
      case 0x12: f = { type: 'Output', message: decOutput(r) }; break;
      case 0x13: f = { type: 'Gap', message: decGap(r) }; break;
      case 0x14: f = { type: 'Exited', message: decExited(r) }; break;
      case 0x15: f = { type: 'Input', message: decInput(r) }; break;
      case 0x16: f = { type: 'InputAck', message: decInputAck(r) }; break;
      case 0x17: f = { type: 'Resize', message: decWinSize(r) }; break;
      case 0x1b: f = { type: 'Received', message: r.u64() }; break;
      case 0x18: f = { type: 'Detach' }; break;
      case 0x1e: f = { type: 'Close', message: decCloseReason(r) }; break;
      case 0x1f: f = { type: 'Error', message: decWireError(r) }; break;
      case 0x20: f = { type: 'LocalRequest', message: decLocalRequest(r) }; break;
      case 0x21: f = { type: 'LocalReply', message: decLocalReply(r) }; break;
      case 0x30: f = { type: 'AgentAttach', message: decAgentAttach(r) }; break;
      case 0x31: f = { type: 'AgentAttached', message: decAgentAttached(r) }; break;
      case 0x32: f = { type: 'AgentEvent', message: decAgentEvent(r) }; break;
      case 0x40: f = { type: 'PairBrowser', message: decPairBrowser(r) }; break;
      case 0x41: f = { type: 'BrowserPaired', message: decBrowserPaired(r) }; break;
      case 0x50: f = { type: 'Watch', message: decWatch(r) }; break;
      case 0x51: f = { type: 'Watching' }; break;
      case 0x52: f = { type: 'Notice', message: decNotice(r) }; break;
      case 0x19: f = { type: 'Repaint', message: decRepaint(r) }; break;
      case 0x1a: f = { type: 'EchoAck', message: decEchoAck(r) }; break;
      default: throw new FrameError(`unknown frame type 0x${byte.toString(16).padStart(2, '0')}`);
    }
  } catch (e) {
    if (e instanceof PostcardError) throw new FrameError(`malformed ${FRAME_NAMES[byte] ?? byte} frame`);
    throw e;
  }
  if (!r.done()) throw new FrameError(`trailing bytes after ${f.type} frame`);
  return f;
}

const FRAME_NAMES: Record<number, string> = {
  0x01: 'ClientHello',
  0x02: 'HostHello',
  0x03: 'Request',
  0x04: 'Response',
  0x05: 'Ping',
  0x06: 'Pong',
  0x07: 'HostRoutes',
  0x10: 'Attach',
  0x11: 'Attached',
  0x12: 'Output',
  0x13: 'Gap',
  0x14: 'Exited',
  0x15: 'Input',
  0x16: 'InputAck',
  0x17: 'Resize',
  0x1b: 'Received',
  0x18: 'Detach',
  0x1e: 'Close',
  0x1f: 'Error',
  0x20: 'LocalRequest',
  0x21: 'LocalReply',
  0x30: 'AgentAttach',
  0x31: 'AgentAttached',
  0x32: 'AgentEvent',
  0x40: 'PairBrowser',
  0x41: 'BrowserPaired',
  0x50: 'Watch',
  0x51: 'Watching',
  0x52: 'Notice',
  0x19: 'Repaint',
  0x1a: 'EchoAck',
};

/** A frame that could not be decoded. */
export class FrameError extends Error {}
