//! Notifications: what the host tells a device that is not looking (agent needs approval, turn
//! finished, session ended), as Web Push to a phone and as a notice stream to `peer watch`.
//!
//! A browser registers its Web Push subscription with [`crate::Request::PushRegister`]; the
//! host then encrypts each [`Notice`] to that subscription's keys (RFC 8291) and signs the
//! request with the VAPID key the browser gave it (RFC 8292), so neither a relay nor the push
//! service can read it. A native client opens a stream with [`crate::Frame::Watch`] and gets
//! every notice as a [`crate::Frame::Notice`].

use serde::{Deserialize, Serialize};

/// What a notice is about. Variant indexes are wire values: new kinds go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// An agent asks for approval and no policy rule answered it.
    Approval,
    /// An agent's turn ended normally (`end_turn`).
    TurnEnd,
    /// An agent's turn ended some other way: refused, out of tokens, an error, cut off by a
    /// host restart. (Cancelled and closed turns are a person's doing and send nothing.)
    TurnFailed,
    /// An agent process failed: it could not start, or it exited.
    AgentFailed,
    /// A terminal session's process ended (not one a client killed).
    SessionEnded,
    /// A terminal session rang its bell. Sent to a device only for the sessions it chose
    /// ([`crate::Request::PushBell`]); a watch stream gets every one.
    Bell,
}

impl NoticeKind {
    /// Every kind, in wire order.
    pub const ALL: [NoticeKind; 6] = [
        NoticeKind::Approval,
        NoticeKind::TurnEnd,
        NoticeKind::TurnFailed,
        NoticeKind::AgentFailed,
        NoticeKind::SessionEnded,
        NoticeKind::Bell,
    ];

    /// The snake_case name (the JSON form, the CLI's `--kinds`).
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Approval => "approval",
            NoticeKind::TurnEnd => "turn_end",
            NoticeKind::TurnFailed => "turn_failed",
            NoticeKind::AgentFailed => "agent_failed",
            NoticeKind::SessionEnded => "session_ended",
            NoticeKind::Bell => "bell",
        }
    }

    /// Parses [`NoticeKind::as_str`].
    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which session a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeSession {
    /// A terminal (PTY) session, by id.
    Pty(u64),
    /// An agent session, by id.
    Agent(u64),
}

impl std::fmt::Display for NoticeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoticeSession::Pty(id) => write!(f, "pty:{id}"),
            NoticeSession::Agent(id) => write!(f, "agent:{id}"),
        }
    }
}

/// One notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// What happened.
    pub kind: NoticeKind,
    /// Where.
    pub session: NoticeSession,
    /// One line for a notification's title.
    pub title: String,
    /// A few words more (the tool call's title, the exit status, the agent's last words).
    pub body: String,
    /// When the host saw it, unix milliseconds.
    pub at_ms: u64,
    /// The approval's number, for [`NoticeKind::Approval`].
    pub approval: Option<u64>,
}

/// First frame of a notice stream ([`crate::Frame::Watch`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// Only these kinds (empty: all).
    pub kinds: Vec<NoticeKind>,
}

/// A browser's Web Push subscription and the VAPID key to sign its requests with
/// ([`crate::Request::PushRegister`]).
///
/// The VAPID key belongs to the app, not the host: a browser origin has one push subscription,
/// bound to one VAPID public key (`applicationServerKey`), and a phone may be paired with
/// several hosts. Every host the phone registers with signs with the same key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRegister {
    /// The subscription's endpoint (`PushSubscription.endpoint`), an `https://` URL of the
    /// browser's push service.
    pub endpoint: String,
    /// The subscription's P-256 public key (`keys.p256dh`), 65 bytes uncompressed.
    #[serde(with = "serde_bytes")]
    pub p256dh: Vec<u8>,
    /// The subscription's authentication secret (`keys.auth`), 16 bytes.
    #[serde(with = "serde_bytes")]
    pub auth: Vec<u8>,
    /// The VAPID private key (P-256 scalar), 32 bytes.
    pub vapid_private: [u8; 32],
    /// The VAPID public key (the subscription's `applicationServerKey`), 65 bytes
    /// uncompressed.
    #[serde(with = "serde_bytes")]
    pub vapid_public: Vec<u8>,
    /// The kinds to send ([`NoticeKind::Bell`] is governed by [`crate::Request::PushBell`]).
    pub kinds: Vec<NoticeKind>,
}

impl std::fmt::Debug for PushRegister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushRegister")
            .field("endpoint", &"..")
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

/// What the host holds for this device ([`crate::Reply::Push`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushStatus {
    /// A subscription is registered.
    pub registered: bool,
    /// The origin of its endpoint (`https://fcm.googleapis.com`), if registered.
    pub endpoint_origin: Option<String>,
    /// The kinds sent to it.
    pub kinds: Vec<NoticeKind>,
    /// Terminal sessions whose bell it gets.
    pub bell_sessions: Vec<u64>,
    /// The last failure to deliver to it, if the last attempt failed (for people).
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Frame;

    #[test]
    fn kinds_have_their_names() {
        for k in NoticeKind::ALL {
            assert_eq!(NoticeKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(NoticeKind::parse("nope"), None);
        assert_eq!(NoticeSession::Agent(3).to_string(), "agent:3");
    }

    #[test]
    fn golden_notice_frames() {
        let n = Frame::Notice(Notice {
            kind: NoticeKind::Approval,
            session: NoticeSession::Agent(3),
            title: "t".into(),
            body: "b".into(),
            at_ms: 300,
            approval: Some(2),
        });
        assert_eq!(hex::encode(n.encode()), "0000000c5200010301740162ac020102");
        let w = Frame::Watch(Watch {
            kinds: vec![NoticeKind::SessionEnded],
        });
        assert_eq!(hex::encode(w.encode()), "00000003500104");
        assert_eq!(hex::encode(Frame::Watching.encode()), "0000000151");
        // The JSON form the web app and `peer watch --json` see.
        let Frame::Notice(notice) = &n else {
            unreachable!()
        };
        assert_eq!(
            serde_json::to_string(notice).expect("json"),
            r#"{"kind":"approval","session":{"agent":3},"title":"t","body":"b","at_ms":300,"approval":2}"#
        );
        for f in [n, w, Frame::Watching] {
            let enc = f.encode();
            assert_eq!(Frame::decode(&enc[4..]), Ok(f));
        }
    }

    #[test]
    fn a_registration_never_shows_its_keys() {
        let r = PushRegister {
            endpoint: "https://push.example/secret-token".into(),
            p256dh: vec![4; 65],
            auth: vec![1; 16],
            vapid_private: [7; 32],
            vapid_public: vec![4; 65],
            kinds: vec![NoticeKind::Approval],
        };
        let d = format!("{r:?}");
        assert!(!d.contains("secret-token") && !d.contains("7, 7"), "{d}");
    }
}
