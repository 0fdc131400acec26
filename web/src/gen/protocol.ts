// Generated from peer/src/proto/messages.rs and peer/src/proto/browser.rs by
// peer/tests/ts_types.rs. Do not edit: change the Rust types, then run
//   PEER_REGEN_TS=1 cargo test -p peer --test ts_types
// serde's JSON form: structs are objects, Option is T | null, enums are externally
// tagged unless marked otherwise, byte arrays are arrays of numbers.

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

/** Answer to [`AgentAttach`]; events follow. */
export interface AgentAttached {
  /** The session as it is now. */
  info: AgentSessionInfo;
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

/** One event of an agent session's transcript. */
export interface AgentEvent {
  /** Agent session id. */
  session: number;
  /** 0, 1, 2… per session, without holes. */
  seq: number;
  /** When the host recorded it, unix milliseconds. */
  at_ms: number;
  /** Event kind (`update`, `prompt`, `turn_start`, `turn_end`, `permission`, …). */
  kind: string;
  /** The event's fields as a JSON object (UTF-8 text). */
  data: string;
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
}

/** Where an agent session is in its life. */
export type AgentState =
  /** The agent process starts and the ACP session is being set up. */
  | "Starting"
  /** A turn runs. */
  | "Running"
  /** A turn runs and waits for at least one approval. */
  | "WaitingApproval"
  /** Ready for a prompt. */
  | "Idle"
  /** Closed by a client. */
  | "Done"
  /** The agent could not start or exited unexpectedly. */
  | "Failed"
  /** The host restarted during a turn; the turn was cut off. Ready for a prompt. */
  | "Interrupted";

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
}

/** Answer to [`Attach`]; output frames follow. */
export interface Attached {
  /** The session as it is now. */
  info: SessionInfo;
  /** The offset of the first output byte that will be sent. */
  start_offset: number;
  /** Highest input sequence number already applied for this `client_token` (0: none). */
  input_acked: number;
}

/** Control messages from the browser. */
export type BrowserToHost =
  /** First message after a pairing handshake: the name to list this browser under. */
  | {
    type: "pair_confirm";
    /** Device name. */
    name: string;
  }
  /** A request, as on the native control stream. */
  | {
    type: "request";
    /** Echoed in the response. */
    id: number;
    /** What is asked. */
    request: Request;
  }
  /** Attach `channel` to a session. */
  | {
    type: "attach";
    /** The browser's channel number. */
    channel: number;
    /** As on a native session stream. */
    attach: Attach;
  }
  /** New terminal size for a channel. */
  | {
    type: "resize";
    /** Channel. */
    channel: number;
    /** Size. */
    size: WinSize;
  }
  /** Detach a channel. */
  | {
    type: "detach";
    /** Channel. */
    channel: number;
  }
  /** Attach `channel` to an agent session's event stream. */
  | {
    type: "agent_attach";
    /** The browser's channel number. */
    channel: number;
    /** As on a native agent event stream. */
    attach: AgentAttach;
  };

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

/** Error codes carried in [`WireError`]. */
export type ErrorCode =
  /** The frame could not be decoded or was not expected here. */
  | "Protocol"
  /** No such session or device. */
  | "NotFound"
  /** The device's role does not allow this. */
  | "Forbidden"
  /** The request is well-formed but makes no sense (e.g. empty program name). */
  | "BadRequest"
  /** The command could not be started. */
  | "SpawnFailed"
  /** A host limit was reached. */
  | "Limit"
  /** Something failed on the host. */
  | "Internal"
  /** Someone else got there first (an approval already answered). */
  | "Conflict";

/** How a process ended. */
export interface ExitInfo {
  /** Exit code (1 if killed by a signal, as a shell reports 128+n is not available here). */
  code: number;
  /** Name of the signal that ended it, if any. */
  signal: string | null;
}

/** The session's process ended and all its output was sent. */
export interface Exited {
  /** Exit status. */
  status: ExitInfo;
  /** Final output offset. */
  end_offset: number;
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

/** Output in `from..to` was dropped from the host's buffer before this client read it. */
export interface Gap {
  /** First lost offset. */
  from: number;
  /** First offset that follows. */
  to: number;
}

/** Control messages from the host. */
export type HostToBrowser =
  /** Pairing done; the browser keeps `device_psk` (hex) for later connections. */
  | {
    type: "paired";
    /** The role given. */
    role: Role;
    /** The host's display name. */
    host_name: string;
    /** The per-device pre-shared key for the Noise handshake of later connections, hex. */
    device_psk: string;
  }
  /** Who the host is, sent first on every device connection. */
  | {
    type: "hello";
    /** Host name. */
    host_name: string;
    /** The device's role. */
    role: Role;
    /** Random per host process; session ids mean something only within one instance. */
    instance: number;
  }
  /** The answer to a request. */
  | {
    type: "response";
    /** The request's id. */
    id: number;
    /** The outcome. */
    result: { Ok: Reply } | { Err: WireError };
  }
  /** A channel is attached. */
  | {
    type: "attached";
    /** Channel. */
    channel: number;
    /** As on a native session stream. */
    attached: Attached;
  }
  /** Output was lost for a channel. */
  | {
    type: "gap";
    /** Channel. */
    channel: number;
    /** The lost range. */
    gap: Gap;
  }
  /** Inputs up to `seq` were applied. */
  | {
    type: "input_ack";
    /** Channel. */
    channel: number;
    /** Highest applied sequence number. */
    seq: number;
  }
  /** The channel's session ended. */
  | {
    type: "exited";
    /** Channel. */
    channel: number;
    /** How. */
    exited: Exited;
  }
  /** An agent channel is attached; events follow. */
  | {
    type: "agent_attached";
    /** Channel. */
    channel: number;
    /** As on a native agent event stream. */
    attached: AgentAttached;
  }
  /** One event of an agent session's transcript. */
  | {
    type: "agent_event";
    /** Channel. */
    channel: number;
    /** The event (its `data` is JSON text). */
    event: AgentEvent;
  }
  /** An error on a channel (the channel is closed) or, without a channel, on the socket. */
  | {
    type: "error";
    /** Channel, if the error is about one. */
    channel: number | null;
    /** What went wrong. */
    error: WireError;
  };

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
}

/** Successful replies. */
export type Reply =
  /** Answer to [`Request::ListSessions`]. */
  | { Sessions: SessionInfo[] }
  /** Answer to [`Request::CreateSession`]. */
  | { Created: SessionInfo }
  /** Answer to [`Request::KillSession`]. */
  | "Killed"
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
  | "AgentCancelled"
  /** Answer to [`Request::AgentAnswer`]: this answer was the one given to the agent. */
  | "AgentAnswered"
  /** Answer to [`Request::AgentDiff`]. */
  | { AgentDiff: AgentDiff }
  /** Answer to [`Request::AgentClose`]. */
  | "AgentClosed"
  /** Answer to [`Request::AgentSetMode`] and [`Request::AgentSetOption`]: the agent agreed. */
  | "AgentConfigured";

/** Requests a client may make. */
export type Request =
  /** List the host's sessions. */
  | "ListSessions"
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
  | "ListAgents"
  /** Start an agent session in a new git worktree. */
  | { NewAgentSession: NewAgentSession }
  /** List agent sessions. */
  | "ListAgentSessions"
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
  };

/** What a device may do on a host. */
export type Role =
  /** May create, kill and type into sessions. */
  | "Operator"
  /** May list sessions and watch their output, nothing more. */
  | "Viewer";

/** What a session list shows. */
export interface SessionInfo {
  /** Host-unique id, small and stable for the host process's life. */
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
}

/** A session's life. */
export type SessionState =
  /** The process runs. */
  | "Running"
  /** The process ended. */
  | { Exited: ExitInfo };

/** A terminal size in character cells. */
export interface WinSize {
  /** Columns. */
  cols: number;
  /** Rows. */
  rows: number;
}

/** An error with a code and a message for people. */
export interface WireError {
  /** Machine-readable code. */
  code: ErrorCode;
  /** For people. */
  message: string;
}
