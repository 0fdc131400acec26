// Generated from peer/src/proto/messages.rs and peer/src/proto/browser.rs by
// peer/tests/ts_types.rs. Do not edit: change the Rust types, then run
//   PEER_REGEN_TS=1 cargo test -p peer --test ts_types
// serde's JSON form: structs are objects, Option is T | null, enums are externally
// tagged unless marked otherwise, byte arrays are arrays of numbers.

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
  | "Internal";

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
  /** An error on a channel (the channel is closed) or, without a channel, on the socket. */
  | {
    type: "error";
    /** Channel, if the error is about one. */
    channel: number | null;
    /** What went wrong. */
    error: WireError;
  };

/** Successful replies. */
export type Reply =
  /** Answer to [`Request::ListSessions`]. */
  | { Sessions: SessionInfo[] }
  /** Answer to [`Request::CreateSession`]. */
  | { Created: SessionInfo }
  /** Answer to [`Request::KillSession`]. */
  | "Killed";

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
