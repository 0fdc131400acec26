//! The congestion controller of peer's QUIC connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::{Controller, ControllerFactory, ControllerMetrics, RttEstimator};
use noq_proto::congestion::Bbr3Config;

/// The congestion controller of every connection: BBR (version 3, from iroh's QUIC stack)
/// without its pacing rate ([`Unpaced`]). Measured through 1–3 % random loss
/// (docs/benchmarks.md, "Over a lossy link"): the stack's default, CUBIC, reads every loss as
/// congestion and moved 0.1–0.4 MB/s, where TCP with BBR moved 3–9. BBR with its own pacing
/// rate moved 2–12 MB/s, but that rate, estimated while a terminal sends a few bytes per round
/// trip, held a keystroke's packet back 30–90 ms. Unpaced, the stack paces by the congestion
/// window (as it does for CUBIC): echo at the round trip, and 3.7–12 MB/s.
///
/// Benchmarks only: `PEER_BENCH_CC=cubic` runs the stack's default, `bbr` BBR with its pacing.
pub(super) fn controller() -> Option<Arc<dyn ControllerFactory + Send + Sync>> {
    match std::env::var("PEER_BENCH_CC").as_deref() {
        Ok("cubic") => None,
        Ok("bbr") => Some(Arc::new(Bbr3Config::default())),
        _ => Some(Arc::new(Unpaced(Arc::new(Bbr3Config::default())))),
    }
}

/// A congestion controller whose pacing rate is withheld from the stack, which then paces by
/// the congestion window.
struct Unpaced(Arc<Bbr3Config>);

impl ControllerFactory for Unpaced {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(UnpacedController(self.0.clone().build(now, current_mtu)))
    }
}

#[derive(Debug)]
struct UnpacedController(Box<dyn Controller>);

impl Controller for UnpacedController {
    fn on_sent(&mut self, now: Instant, bytes: u64, largest_pn: u64) {
        self.0.on_sent(now, bytes, largest_pn);
    }
    fn on_packet_sent(&mut self, now: Instant, bytes: u16, pn: u64) {
        self.0.on_packet_sent(now, bytes, pn);
    }
    fn on_cwnd_limited(&mut self) {
        self.0.on_cwnd_limited();
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
        self.0.on_ack(now, sent, bytes, pn, app_limited, rtt);
    }
    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.0
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
        self.0.on_congestion_event(
            now,
            sent,
            is_persistent_congestion,
            is_ecn,
            lost_bytes,
            largest_lost_pn,
        );
    }
    fn on_packet_lost(&mut self, lost_bytes: u16, pn: u64, now: Instant) {
        self.0.on_packet_lost(lost_bytes, pn, now);
    }
    fn on_spurious_congestion_event(&mut self) {
        self.0.on_spurious_congestion_event();
    }
    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.0.on_mtu_update(new_mtu);
    }
    fn on_ack_frequency_update(
        &mut self,
        ack_eliciting_threshold: u64,
        requested_max_ack_delay: Duration,
    ) {
        self.0
            .on_ack_frequency_update(ack_eliciting_threshold, requested_max_ack_delay);
    }
    fn window(&self) -> u64 {
        self.0.window()
    }
    fn metrics(&self) -> ControllerMetrics {
        let mut m = self.0.metrics();
        m.pacing_rate = None;
        m
    }
    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(UnpacedController(self.0.clone_box()))
    }
    fn initial_window(&self) -> u64 {
        self.0.initial_window()
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaced_bbr_keeps_bbrs_window_and_drops_only_its_pacing_rate() {
        let now = Instant::now();
        let bbr = Arc::new(Bbr3Config::default()).build(now, 1200);
        let unpaced = Arc::new(Unpaced(Arc::new(Bbr3Config::default()))).build(now, 1200);
        assert!(bbr.metrics().pacing_rate.is_some(), "BBR paces by rate");
        assert_eq!(unpaced.metrics().pacing_rate, None);
        assert_eq!(unpaced.window(), bbr.window());
        assert_eq!(unpaced.initial_window(), bbr.initial_window());
        assert_eq!(unpaced.clone_box().metrics().pacing_rate, None);
    }
}
