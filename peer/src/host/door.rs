//! Limits on the host's unauthenticated surface: pairing attempts, and connections that fail
//! authentication, per source address, per key and in total.
//!
//! Anyone who can reach the host can open a connection and start a pairing or present a
//! device proof; a fresh iroh key (or a fresh browser key) costs nothing, so a per-key limit
//! alone stops no one, and an address is not always known (a relayed path, a remote bridge),
//! so the total is the limit that always holds. The buckets are the relay front's
//! ([`peer_relay::RateBuckets`]).
//!
//! - **Pairing** is rare for a real user: every attempt spends a token of its address (when
//!   known) and of its key *before* the host does any work for it, and one of the total once it
//!   names a live code; without one the attempt is refused with
//!   [`Refusal::RateLimited`](crate::proto::Refusal::RateLimited). Attempts with made-up codes
//!   from fresh keys through a relay therefore cannot lock out the person pairing.
//! - **Authentication** never refuses a connection that authenticates: a paired device keeps
//!   working whoever floods from its address. Only failures spend tokens; past the budget a
//!   failing connection is refused with the rate-limit code instead of the specific reason
//!   (which tells a prober nothing more), and an endpoint key out of tokens is refused at the
//!   door, before its hello is read.
//!
//! Refused session connections are audited (`connect.refused`) within [`AuditBudget`].

use std::net::IpAddr;

use parking_lot::Mutex;
use peer_relay::{IpKey, RateBuckets, RateLimit};
use tokio::time::Instant;

/// Where an unauthenticated attempt comes from, as far as the host can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Source {
    /// The peer's IP address: a direct path, or the host's own front's socket. `None` through
    /// a relay or a remote bridge.
    pub ip: Option<IpAddr>,
    /// A key the attempt presents: the iroh endpoint id, or a browser's static key.
    pub key: Option<[u8; 32]>,
}

impl Source {
    /// For audit rows: the address if known, else the key's first bytes.
    pub(crate) fn describe(&self) -> String {
        match (self.ip, self.key) {
            (Some(ip), _) => ip.to_string(),
            (None, Some(k)) => format!("key {}", hex::encode(&k[..4])),
            (None, None) => "an unknown address".into(),
        }
    }
}

/// Rates of one kind of attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rates {
    pub per_ip: RateLimit,
    pub per_key: RateLimit,
    pub total: RateLimit,
}

/// Pairing attempts: per address 20 at once then one every 2 s; per key 5 then one every 5 s;
/// in total 60 at once then 2 a second.
pub(crate) const PAIRING: Rates = Rates {
    per_ip: RateLimit {
        per_second: 0.5,
        burst: 20,
    },
    per_key: RateLimit {
        per_second: 0.2,
        burst: 5,
    },
    total: RateLimit {
        per_second: 2.0,
        burst: 60,
    },
};

/// Failed authentications: per address 20 at once then one every 2 s; per key 3 then one
/// every 10 s; in total 100 at once then 5 a second.
pub(crate) const AUTH_FAILURES: Rates = Rates {
    per_ip: RateLimit {
        per_second: 0.5,
        burst: 20,
    },
    per_key: RateLimit {
        per_second: 0.1,
        burst: 3,
    },
    total: RateLimit {
        per_second: 5.0,
        burst: 100,
    },
};

/// Token buckets for one kind of attempt.
#[derive(Debug)]
struct Limiter {
    per_ip: RateBuckets<IpKey>,
    per_key: RateBuckets<[u8; 32]>,
    total: RateBuckets<()>,
}

impl Limiter {
    fn new(r: Rates) -> Limiter {
        Limiter {
            per_ip: RateBuckets::new(r.per_ip),
            per_key: RateBuckets::new(r.per_key),
            total: RateBuckets::new(r.total),
        }
    }

    /// Takes a token from each bucket `src` counts against, or from none if one is empty.
    fn take(&mut self, src: &Source, now: Instant) -> bool {
        self.take_counting(src, now, true)
    }

    /// [`Limiter::take`], leaving the total out unless `total`.
    fn take_counting(&mut self, src: &Source, now: Instant, total: bool) -> bool {
        let ip = src.ip.map(IpKey::of);
        let ok = (!total || self.total.has_token((), now))
            && ip.is_none_or(|k| self.per_ip.has_token(k, now))
            && src.key.is_none_or(|k| self.per_key.has_token(k, now));
        if ok {
            if total {
                self.total.take((), now);
            }
            if let Some(k) = ip {
                self.per_ip.take(k, now);
            }
            if let Some(k) = src.key {
                self.per_key.take(k, now);
            }
        }
        ok
    }
}

/// The host's limits on pairing attempts and failed authentication.
#[derive(Debug)]
pub(crate) struct Door {
    pairing: Mutex<Limiter>,
    auth: Mutex<Limiter>,
    /// Refused session connections audited this minute.
    pub(crate) refusals: AuditBudget,
}

impl Default for Door {
    fn default() -> Self {
        Door::new(PAIRING, AUTH_FAILURES)
    }
}

impl Door {
    pub(crate) fn new(pairing: Rates, auth: Rates) -> Door {
        Door {
            pairing: Mutex::new(Limiter::new(pairing)),
            auth: Mutex::new(Limiter::new(auth)),
            refusals: AuditBudget::new(
                REFUSALS_AUDITED_PER_MINUTE,
                "more refused connections this minute were not recorded",
            ),
        }
    }

    /// A pairing attempt begins: whether it may go on (a token of its address and key was
    /// spent). The total is not spent here: attempts that name no live code must not use up the
    /// budget of the person pairing right now ([`Door::pairing_on_code`]).
    pub(crate) fn pairing_attempt(&self, src: &Source) -> bool {
        self.pairing
            .lock()
            .take_counting(src, Instant::now(), false)
    }

    /// A pairing attempt names a live code (the only case where its secret can be guessed):
    /// whether the total allows it (a token was spent). Each code also locks itself after a
    /// few wrong confirmations.
    pub(crate) fn pairing_on_code(&self) -> bool {
        let now = Instant::now();
        let mut l = self.pairing.lock();
        let ok = l.total.has_token((), now);
        if ok {
            l.total.take((), now);
        }
        ok
    }

    /// An authentication failed: whether it was within the budget (a token was spent).
    pub(crate) fn auth_failed(&self, src: &Source) -> bool {
        self.auth.lock().take(src, Instant::now())
    }

    /// Whether `key` failed so often that its next attempt is refused before any work.
    pub(crate) fn key_blocked(&self, key: [u8; 32]) -> bool {
        !self.auth.lock().per_key.has_token(key, Instant::now())
    }
}

/// Most refused session connections audited one by one per minute.
pub(crate) const REFUSALS_AUDITED_PER_MINUTE: u32 = 30;

/// At most `per_minute` audit rows of one kind a minute, then one row saying more were not
/// recorded: a flood must not fill the database.
#[derive(Debug)]
pub(crate) struct AuditBudget {
    per_minute: u32,
    overflow: &'static str,
    /// (minute, rows asked for in it)
    window: Mutex<(u64, u32)>,
}

impl AuditBudget {
    pub(crate) fn new(per_minute: u32, overflow: &'static str) -> AuditBudget {
        AuditBudget {
            per_minute,
            overflow,
            window: Mutex::new((0, 0)),
        }
    }

    /// The row to write for `detail` in `minute`, if one is written.
    pub(crate) fn row(&self, minute: u64, detail: String) -> Option<String> {
        let n = {
            let mut w = self.window.lock();
            if w.0 != minute {
                *w = (minute, 0);
            }
            w.1 = w.1.saturating_add(1);
            w.1
        };
        match n {
            n if n <= self.per_minute => Some(detail),
            n if n == self.per_minute + 1 => Some(self.overflow.into()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rate(per_second: f64, burst: u32) -> RateLimit {
        RateLimit { per_second, burst }
    }

    #[test]
    fn fresh_keys_from_one_address_meet_its_limit_and_the_total_holds_without_one() {
        let mut l = Limiter::new(Rates {
            per_ip: rate(0.0, 3),
            per_key: rate(0.0, 1),
            total: rate(0.0, 5),
        });
        let t = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let from = |k: u8, ip: Option<IpAddr>| Source {
            ip,
            key: Some([k; 32]),
        };
        assert!(l.take(&from(1, Some(ip)), t));
        // The same key again: its own bucket is empty.
        assert!(!l.take(&from(1, Some(ip)), t));
        assert!(l.take(&from(2, Some(ip)), t));
        assert!(l.take(&from(3, Some(ip)), t));
        // A fresh key from the same address: the address is spent.
        assert!(!l.take(&from(4, Some(ip)), t));
        // Without an address (relayed) only the key and the total count: two left in total.
        assert!(l.take(&from(5, None), t));
        assert!(l.take(&from(6, None), t));
        assert!(!l.take(&from(7, None), t));
        // Another address is refused too once the total is spent.
        assert!(!l.take(&from(8, Some("192.0.2.2".parse().expect("ip"))), t));
    }

    #[test]
    fn pairings_with_made_up_codes_leave_the_total_to_the_real_one() {
        let door = Door::new(
            Rates {
                per_ip: rate(0.0, 100),
                per_key: rate(0.0, 1),
                total: rate(0.0, 2),
            },
            AUTH_FAILURES,
        );
        // Fresh keys through a relay (no address), naming no live code.
        for k in 0..50u8 {
            let src = Source {
                ip: None,
                key: Some([k; 32]),
            };
            assert!(door.pairing_attempt(&src));
        }
        // The real attempt on a live code still finds the total untouched.
        assert!(door.pairing_on_code());
        assert!(door.pairing_on_code());
        assert!(!door.pairing_on_code());
    }

    #[test]
    fn a_refused_attempt_spends_nothing() {
        let mut l = Limiter::new(Rates {
            per_ip: rate(0.0, 1),
            per_key: rate(0.0, 5),
            total: rate(1.0, 2),
        });
        let t = Instant::now();
        let ip = Some("192.0.2.1".parse().expect("ip"));
        assert!(l.take(&Source { ip, key: None }, t));
        assert!(!l.take(&Source { ip, key: None }, t));
        // The refusal above did not spend a token of the total.
        assert!(l.take(
            &Source {
                ip: None,
                key: None
            },
            t
        ));
        assert!(!l.take(
            &Source {
                ip: None,
                key: None
            },
            t
        ));
        assert!(l.take(
            &Source {
                ip: None,
                key: None
            },
            t + Duration::from_secs(1)
        ));
    }

    #[test]
    fn the_audit_budget_writes_a_few_rows_a_minute_and_says_when_it_stopped() {
        let b = AuditBudget::new(3, "more not recorded");
        let rows: Vec<Option<String>> = (0..6).map(|i| b.row(7, format!("r{i}"))).collect();
        assert!(rows[..3].iter().all(Option::is_some));
        assert_eq!(rows[3].as_deref(), Some("more not recorded"));
        assert!(rows[4..].iter().all(Option::is_none));
        assert_eq!(b.row(8, "x".into()).as_deref(), Some("x"));
    }

    #[test]
    fn blocked_keys_are_known_at_the_door() {
        let door = Door::new(
            PAIRING,
            Rates {
                per_ip: rate(0.0, 100),
                per_key: rate(0.0, 2),
                total: rate(0.0, 100),
            },
        );
        let src = Source {
            ip: None,
            key: Some([9; 32]),
        };
        assert!(!door.key_blocked([9; 32]));
        assert!(door.auth_failed(&src));
        assert!(door.auth_failed(&src));
        assert!(door.key_blocked([9; 32]));
        assert!(!door.auth_failed(&src));
        assert!(!door.key_blocked([8; 32]));
    }
}
