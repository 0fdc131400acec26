//! The congestion controller of peer's QUIC connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::{Controller, ControllerFactory, ControllerMetrics, RttEstimator};
use noq_proto::congestion::Bbr3Config;

/// The congestion controller of every connection: BBR (version 3, from iroh's QUIC stack)
/// with its window, not its pacing rate, setting the pace ([`WindowPaced`]). Measured through
/// 1–3 % random loss (docs/benchmarks.md, "Over a lossy link"): the stack's default, CUBIC,
/// reads every loss as congestion and moved 0.1–0.4 MB/s, where TCP with BBR moved 3–9. BBR
/// with its own pacing rate moved 2–12 MB/s, but that rate, estimated while a terminal sends a
/// few bytes per round trip, held a keystroke's packet back 30–90 ms. Paced by its window: echo
/// at the round trip, and 3.7–12 MB/s.
///
/// Benchmarks only: `PEER_BENCH_CC=cubic` runs the stack's default, `bbr` BBR with its pacing.
pub(super) fn controller() -> Option<Arc<dyn ControllerFactory + Send + Sync>> {
    match std::env::var("PEER_BENCH_CC").as_deref() {
        Ok("cubic") => None,
        Ok("bbr") => Some(Arc::new(Bbr3Config::default())),
        _ => Some(Arc::new(WindowPaced(Arc::new(Bbr3Config::default())))),
    }
}

/// A congestion controller whose pacing rate is replaced by its window spread over the path's
/// shortest round trip ([`window_rate`]): the pacer only smooths bursts, and the window alone
/// limits what is in flight.
///
/// Not the stack's own fallback for a controller without a rate, the window over the
/// *smoothed* round trip: BBR sizes its window from the shortest round trip, and the smoothed
/// one swells whenever the other side stops answering for a while (a process stopped, a laptop
/// lid closed, a phone radio asleep: its late acknowledgements count as round trips of a
/// second). Paced that way, a client stopped for 1.2 s of every 1.25 s on loopback took 6 s, 29 s
/// and over 60 s to take 3 MB, and held a second client's stream back as long; paced over
/// the shortest round trip, 2.5 s every time (`exited_follows_the_last_byte_even_while_another_
/// client_lags`).
struct WindowPaced(Arc<Bbr3Config>);

impl ControllerFactory for WindowPaced {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(WindowPacedController {
            inner: self.0.clone().build(now, current_mtu),
            min_rtt: None,
        })
    }
}

/// One window per `min_rtt`, times the 5/4 the stack's own window pacing allows (bytes/s).
fn window_rate(window: u64, min_rtt: Duration) -> u64 {
    let nanos = min_rtt.as_nanos().max(1);
    u64::try_from(u128::from(window) * 5_000_000_000 / 4 / nanos).unwrap_or(u64::MAX)
}

#[derive(Debug)]
struct WindowPacedController {
    inner: Box<dyn Controller>,
    /// The path's shortest round trip, once a packet was acknowledged.
    min_rtt: Option<Duration>,
}

impl Controller for WindowPacedController {
    fn on_sent(&mut self, now: Instant, bytes: u64, largest_pn: u64) {
        self.inner.on_sent(now, bytes, largest_pn);
    }
    fn on_packet_sent(&mut self, now: Instant, bytes: u16, pn: u64) {
        self.inner.on_packet_sent(now, bytes, pn);
    }
    fn on_cwnd_limited(&mut self) {
        self.inner.on_cwnd_limited();
    }
    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        pn: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.min_rtt = Some(rtt.min());
        self.inner.on_ack(now, sent, bytes, pn, app_limited, rtt);
    }
    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.inner
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
    }
    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        is_ecn: bool,
        lost_bytes: u64,
        largest_lost_pn: u64,
    ) {
        self.inner.on_congestion_event(
            now,
            sent,
            is_persistent_congestion,
            is_ecn,
            lost_bytes,
            largest_lost_pn,
        );
    }
    fn on_packet_lost(&mut self, lost_bytes: u16, pn: u64, now: Instant) {
        self.inner.on_packet_lost(lost_bytes, pn, now);
    }
    fn on_spurious_congestion_event(&mut self) {
        self.inner.on_spurious_congestion_event();
    }
    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.inner.on_mtu_update(new_mtu);
    }
    fn on_ack_frequency_update(
        &mut self,
        ack_eliciting_threshold: u64,
        requested_max_ack_delay: Duration,
    ) {
        self.inner
            .on_ack_frequency_update(ack_eliciting_threshold, requested_max_ack_delay);
    }
    fn window(&self) -> u64 {
        self.inner.window()
    }
    fn metrics(&self) -> ControllerMetrics {
        let mut m = self.inner.metrics();
        // Before the first acknowledgement the stack paces by the window over its initial
        // round trip estimate.
        m.pacing_rate = self
            .min_rtt
            .map(|rtt| window_rate(m.congestion_window, rtt));
        m
    }
    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(WindowPacedController {
            inner: self.inner.clone_box(),
            min_rtt: self.min_rtt,
        })
    }
    fn initial_window(&self) -> u64 {
        self.inner.initial_window()
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_paced_bbr_keeps_bbrs_window_and_replaces_its_pacing_rate() {
        let now = Instant::now();
        let bbr = Arc::new(Bbr3Config::default()).build(now, 1200);
        let paced = Arc::new(WindowPaced(Arc::new(Bbr3Config::default()))).build(now, 1200);
        assert!(bbr.metrics().pacing_rate.is_some(), "BBR paces by rate");
        // No round trip measured yet: the stack's own window pacing.
        assert_eq!(paced.metrics().pacing_rate, None);
        assert_eq!(paced.window(), bbr.window());
        assert_eq!(paced.initial_window(), bbr.initial_window());
        assert_eq!(paced.clone_box().metrics().pacing_rate, None);
    }

    #[test]
    fn the_rate_is_a_window_and_a_quarter_per_shortest_round_trip() {
        assert_eq!(window_rate(12_000, Duration::from_millis(10)), 1_500_000);
        assert_eq!(window_rate(48_000, Duration::from_micros(100)), 600_000_000);
        // A round trip too short to measure does not divide by zero.
        assert_eq!(window_rate(1, Duration::ZERO), 1_250_000_000);
        assert_eq!(window_rate(u64::MAX, Duration::ZERO), u64::MAX);
    }
}
