//! The session connection: hellos, requests and replies on the control stream.

use serde::{Deserialize, Serialize};

use crate::*;

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl Default for WinSize {
    fn default() -> Self {
        WinSize { cols: 80, rows: 24 }
    }
}

/// What a device may do on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// May create, kill and type into sessions.
    Operator,
    /// May list sessions and watch their output, nothing more.
    Viewer,
}

impl Role {
    /// The lowercase name used in the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "operator" => Ok(Role::Operator),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?} (operator or viewer)")),
        }
    }
}

/// First frame of the control stream: who the client is, and its proof.
///
/// `proof` is the device key's ed25519 signature over 32 bytes exported from this QUIC
/// connection's TLS session (label [`crate::PROOF_LABEL`], context = the client's endpoint
/// id). It binds the long-term device key to this one connection, so it cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// [`PROTOCOL_VERSION`] of the client.
    pub protocol: u16,
    /// The device's long-term public key (its device id).
    pub device: [u8; 32],
    /// Signature, see above.
    pub proof: Vec<u8>,
}

/// The host's answer to [`ClientHello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHello {
    /// [`PROTOCOL_VERSION`] of the host.
    pub protocol: u16,
    /// The host's display name.
    pub host_name: String,
    /// The device's role on this host.
    pub role: Role,
    /// Random per host process: session ids are only meaningful within one instance.
    pub instance: u64,
}

/// Where the host can be reached now and how to get into its relays. The host sends it right
/// after [`HostHello`] on every connection (native control stream, browser channel 0), inside
/// the authenticated session; the device replaces what it learned at pairing with it, so a
/// host whose addresses, relays, relay token or relay certificate changed stays reachable for
/// every device that connected once since the previous change.
///
/// `Debug` does not show the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoutes {
    /// Relay URLs (`http://` or `https://`), at most 4, the host's home relay first.
    pub relay_urls: Vec<String>,
    /// Direct socket addresses (`192.0.2.7:41641`, `[2001:db8::7]:41641`), at most 8; none for a
    /// relay-only host.
    pub direct_addrs: Vec<String>,
    /// SHA-256 of the relays' TLS certificate when the host pins it (self-signed relays): the
    /// only certificate to trust for them.
    pub relay_cert_sha256: Option<[u8; 32]>,
    /// The token the relays want (token mode). Never sent to browsers, which do not use the
    /// relay protocol.
    pub relay_token: Option<String>,
}

impl std::fmt::Debug for HostRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostRoutes")
            .field("relay_urls", &self.relay_urls)
            .field("direct_addrs", &self.direct_addrs)
            .field("relay_cert_sha256", &self.relay_cert_sha256.map(hex_short))
            .field(
                "relay_token",
                &self.relay_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

fn hex_short(b: [u8; 32]) -> String {
    b[..4]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect::<String>()
        + "…"
}

/// A request on the control stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    /// Chosen by the client; echoed in the response.
    pub id: u32,
    /// What is asked.
    pub request: Request,
}

/// Requests a client may make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// List the host's sessions.
    ListSessions,
    /// Start a new PTY session.
    CreateSession(CreateSession),
    /// Kill a running session (SIGHUP, then SIGKILL after a grace period) or forget an ended one.
    KillSession {
        /// Session id.
        session: u64,
    },
    /// List the agents the host can run.
    ListAgents,
    /// Start an agent session in a new git worktree.
    NewAgentSession(NewAgentSession),
    /// List agent sessions.
    ListAgentSessions,
    /// Send a prompt; queued if a turn is running.
    AgentPrompt {
        /// Agent session id.
        session: u64,
        /// The prompt text.
        text: String,
    },
    /// Cancel the running turn (pending approvals are answered cancelled, queued prompts
    /// dropped).
    AgentCancel {
        /// Agent session id.
        session: u64,
    },
    /// Answer a pending approval.
    AgentAnswer {
        /// Agent session id.
        session: u64,
        /// The approval's number, from its `permission` event.
        approval: u64,
        /// The chosen option id; `None` answers `cancelled`.
        option: Option<String>,
    },
    /// The worktree's changes against the session's base commit.
    AgentDiff {
        /// Agent session id.
        session: u64,
    },
    /// Stop an agent session (state `done`); optionally remove its worktree and branch.
    AgentClose {
        /// Agent session id.
        session: u64,
        /// Also delete the worktree directory and its branch.
        remove_worktree: bool,
    },
    /// Switch the agent's mode (ACP `session/set_mode`), e.g. `plan` or `code`.
    AgentSetMode {
        /// Agent session id.
        session: u64,
        /// A mode id the agent offered (see the `started` event's `modes`).
        mode: String,
    },
    /// Set one of the agent's configuration options (ACP `session/set_config_option`), e.g.
    /// the model.
    AgentSetOption {
        /// Agent session id.
        session: u64,
        /// The option id (see the `started` event's `configOptions`), e.g. `model`.
        option: String,
        /// The value id to choose.
        value: String,
    },
    /// This device leaves the host: the host revokes it (any role may). For a device whose
    /// person saw different short codes at pairing, or that forgets the host.
    Unpair,
    /// Probe the model servers the host can reach (the usual local ports and those in its
    /// `agents.toml`), at most about a second.
    ListModelServers,
    /// The host's GPUs (empty without `nvidia-smi`).
    ListGpus,
    /// Send this device's notices as Web Push to this subscription (replaces an earlier one).
    PushRegister(PushRegister),
    /// Stop sending Web Push to this device (forgets its subscription).
    PushUnregister,
    /// Which notice kinds this device's subscription gets.
    PushKinds {
        /// The kinds ([`NoticeKind::Bell`] is governed by [`Request::PushBell`]).
        kinds: Vec<NoticeKind>,
    },
    /// What the host holds for this device's notifications.
    PushStatus,
    /// Whether this device's app is in front: a device that is attached to a session and
    /// visible gets no notices about that session (they are held, and sent if it goes away
    /// within a few seconds without having left the session).
    PushFocus {
        /// The app is visible (`false`: in the background, the screen is off).
        visible: bool,
    },
    /// Notify this device when terminal session `session` rings its bell (or stop).
    PushBell {
        /// Terminal session id.
        session: u64,
        /// On or off.
        on: bool,
    },
    /// Start an agent session in a new git worktree ([`NewAgentSession`] with more options
    /// and an answer that says what to know).
    StartAgent(StartAgent),
    /// Every approval waiting for an answer, in every agent session.
    ListApprovals,
    /// The grants of one agent session, or of every session that is not done or failed.
    ListGrants {
        /// Agent session id; `None`: every live session.
        session: Option<u64>,
    },
    /// Make a grant: the host answers the tool calls it covers itself from now on.
    AddGrant {
        /// Agent session id.
        session: u64,
        /// What it covers.
        scope: GrantScope,
        /// Allow (`true`) or reject.
        allow: bool,
    },
    /// Revoke a grant.
    RevokeGrant {
        /// Agent session id.
        session: u64,
        /// The grant's number.
        grant: u64,
    },
    /// Give a PTY session a display name, or take it away.
    RenameSession {
        /// Session id.
        session: u64,
        /// The new name (at most 64 bytes, no control characters, as in
        /// [`CreateSession::name`]);
        /// `None` or empty: no name.
        name: Option<String>,
    },
}

/// Parameters of a new PTY session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSession {
    /// Optional display name.
    pub name: Option<String>,
    /// Program and arguments; empty means the host user's login shell.
    pub command: Vec<String>,
    /// Working directory; `None` means the host user's home.
    pub cwd: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Initial terminal size.
    pub size: WinSize,
    /// Keep the output from its first byte for an attachment that follows at once (`peer
    /// attach --new`, the web app's new terminal): until the session's first attachment
    /// registers, the PTY reader waits as it would for an attached client that lags, so a
    /// process that writes more than the buffer before the attach arrives loses nothing.
    /// `false` (`peer new`) lets a detached session run freely from the start.
    pub hold_output: bool,
}

/// The answer to a [`RequestFrame`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseFrame {
    /// The request's id.
    pub id: u32,
    /// The outcome.
    pub result: Result<Reply, WireError>,
}

/// Successful replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Answer to [`Request::ListSessions`].
    Sessions(Vec<SessionInfo>),
    /// Answer to [`Request::CreateSession`].
    Created(SessionInfo),
    /// Answer to [`Request::KillSession`].
    Killed,
    /// Answer to [`Request::ListAgents`].
    Agents(Vec<AgentDef>),
    /// Answer to [`Request::NewAgentSession`].
    AgentSession(AgentSessionInfo),
    /// Answer to [`Request::ListAgentSessions`], by id ascending.
    AgentSessions(Vec<AgentSessionInfo>),
    /// Answer to [`Request::AgentPrompt`].
    AgentPrompted {
        /// The prompt waits behind a running turn (or other queued prompts).
        queued: bool,
    },
    /// Answer to [`Request::AgentCancel`].
    AgentCancelled,
    /// Answer to [`Request::AgentAnswer`]: this answer was the one given to the agent.
    AgentAnswered,
    /// Answer to [`Request::AgentDiff`].
    AgentDiff(AgentDiff),
    /// Answer to [`Request::AgentClose`].
    AgentClosed,
    /// Answer to [`Request::AgentSetMode`] and [`Request::AgentSetOption`]: the agent agreed.
    AgentConfigured,
    /// Answer to [`Request::Unpair`]: the device is revoked; its connections close next.
    Unpaired,
    /// Answer to [`Request::ListModelServers`].
    ModelServers(Vec<ModelServer>),
    /// Answer to [`Request::ListGpus`].
    Gpus(Vec<GpuInfo>),
    /// Answer to every `Push*` request: what the host holds for this device now.
    Push(PushStatus),
    /// Answer to [`Request::StartAgent`].
    AgentStarted(AgentStarted),
    /// Answer to [`Request::ListApprovals`], by session and approval.
    Approvals(Vec<PendingApproval>),
    /// Answer to [`Request::ListGrants`] (by session and grant) and [`Request::AddGrant`] (the
    /// new grant).
    Grants(Vec<GrantInfo>),
    /// Answer to [`Request::RevokeGrant`].
    GrantRevoked,
    /// Answer to [`Request::RenameSession`]: the session as it is now.
    Renamed(SessionInfo),
}

/// Why the host is about to close a browser's socket (frame `Close`, channel 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseReason {
    /// The WebSocket close code that follows ([`crate::close::ws`], 4100–4199).
    pub code: u16,
    /// For people.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use crate::{Frame, HostHello, HostRoutes, Role};

    /// The example of docs/protocol.md section 7; `Debug` hides the token.
    #[test]
    fn golden_host_routes_and_its_debug_hides_the_token() {
        let f = Frame::HostRoutes(HostRoutes {
            relay_urls: vec!["http://r/".into()],
            direct_addrs: vec!["10.0.0.1:7".into()],
            relay_cert_sha256: None,
            relay_token: Some("secret-relay-token-123".into()),
        });
        assert_eq!(
            hex::encode(f.encode()),
            "00000031070109687474703a2f2f722f010a31302e302e302e313a370001167365637265742d72656c61792d746f6b656e2d313233"
        );
        assert_eq!(Frame::decode(&f.encode()[4..]), Ok(f.clone()));
        let text = format!("{f:?}");
        assert!(!text.contains("secret-relay-token"), "{text}");
        assert!(
            text.contains("http://r/") && text.contains("10.0.0.1:7"),
            "{text}"
        );
    }

    /// The example of docs/protocol.md section 12.3.
    #[test]
    fn golden_host_hello() {
        let f = Frame::HostHello(HostHello {
            protocol: 2,
            host_name: "box".into(),
            role: Role::Viewer,
            instance: 0x0011_2233_4455_6677,
        });
        assert_eq!(
            hex::encode(f.encode()),
            "0000000f020203626f7801f7ccd5a2b4c6c808"
        );
    }
}
