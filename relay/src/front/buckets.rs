//! Token buckets per key ([`RateBuckets`]) and the key a client address is counted under
//! ([`IpKey`]): the relay front's per-IP connection rate, and the host's limits on pairing
//! attempts and failed authentication, use the same type.

use std::{
    collections::HashMap,
    hash::Hash,
    net::{IpAddr, Ipv4Addr},
};

use tokio::time::Instant;

use super::limits::RateLimit;

/// Addresses are counted per IPv4 address, and per /64 for IPv6 (one subscriber's prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses count as their IPv4 address).
    V4(Ipv4Addr),
    /// The upper 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl IpKey {
    /// The key `ip` is counted under.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            // The upper 64 bits of the address.
            IpAddr::V6(v6) => Self::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `per_second`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, per_second: f64, burst: f64) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(burst);
        self.last = now;
    }
}

/// Forget full buckets every this many takes.
const PRUNE_EVERY: u32 = 1024;

/// One token bucket per key, all at the same [`RateLimit`]; a key never seen has a full
/// bucket. Memory stays bounded by the keys that used tokens recently: full buckets are
/// forgotten now and then.
#[derive(Debug)]
pub struct RateBuckets<K> {
    rate: RateLimit,
    buckets: HashMap<K, Bucket>,
    since_prune: u32,
}

impl<K: Eq + Hash + Copy> RateBuckets<K> {
    /// Buckets of `rate.burst` tokens refilled at `rate.per_second`.
    pub fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            buckets: HashMap::new(),
            since_prune: 0,
        }
    }

    fn burst(&self) -> f64 {
        f64::from(self.rate.burst.max(1))
    }

    /// Whether `key` has a token at `now` (nothing is taken).
    pub fn has_token(&mut self, key: K, now: Instant) -> bool {
        let (per_second, burst) = (self.rate.per_second, self.burst());
        match self.buckets.get_mut(&key) {
            Some(b) => {
                b.refill(now, per_second, burst);
                b.tokens >= 1.0
            }
            None => true,
        }
    }

    /// Takes one of `key`'s tokens at `now`; `false` (and nothing taken) if it has none.
    pub fn take(&mut self, key: K, now: Instant) -> bool {
        let (per_second, burst) = (self.rate.per_second, self.burst());
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        bucket.refill(now, per_second, burst);
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        self.since_prune += 1;
        if self.since_prune >= PRUNE_EVERY {
            self.since_prune = 0;
            // Full buckets carry no information: forget them.
            self.buckets.retain(|_, b| {
                b.refill(now, per_second, burst);
                b.tokens < burst
            });
        }
        true
    }

    /// Keys with a bucket kept (for tests and metrics).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key has a bucket kept.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;
    use std::time::Duration;

    use super::*;

    #[test]
    fn ipv6_is_keyed_by_prefix_and_mapped_v4_by_address() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().expect("addr");
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().expect("addr");
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().expect("addr");
        assert_eq!(IpKey::of(a.into()), IpKey::of(b.into()));
        assert_ne!(IpKey::of(a.into()), IpKey::of(c.into()));
        let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().expect("addr");
        assert_eq!(
            IpKey::of(mapped.into()),
            IpKey::V4(Ipv4Addr::new(192, 0, 2, 7))
        );
    }

    #[test]
    fn bucket_refills_up_to_burst() {
        let start = Instant::now();
        let mut bucket = Bucket {
            tokens: 0.0,
            last: start,
        };
        bucket.refill(start + Duration::from_millis(500), 4.0, 3.0);
        assert!((bucket.tokens - 2.0).abs() < 1e-9);
        bucket.refill(start + Duration::from_secs(10), 4.0, 3.0);
        assert!((bucket.tokens - 3.0).abs() < 1e-9);
    }

    #[test]
    fn keys_spend_their_own_tokens_and_full_buckets_are_forgotten() {
        let mut b = RateBuckets::new(RateLimit {
            per_second: 1.0,
            burst: 2,
        });
        let t = Instant::now();
        assert!(b.has_token(1u8, t));
        assert!(b.take(1u8, t));
        assert!(b.take(1u8, t));
        assert!(!b.take(1u8, t));
        assert!(!b.has_token(1u8, t));
        // Another key is untouched.
        assert!(b.take(2u8, t));
        // A second later one token is back.
        let later = t + Duration::from_secs(1);
        assert!(b.take(1u8, later));
        assert!(!b.take(1u8, later));
        // Many keys that refill: the map is pruned of full buckets.
        let much_later = later + Duration::from_secs(60);
        for k in 0..PRUNE_EVERY {
            assert!(b.take(
                (k % 200) as u8,
                much_later + Duration::from_secs(u64::from(k))
            ));
        }
        assert!(b.len() <= 200);
    }
}
