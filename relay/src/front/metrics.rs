//! Counters of the front server and their Prometheus text rendering.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
};

use super::conn::Refusal;

/// Which part of the front server answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteKind {
    Relay,
    Probe,
    Healthz,
    Metrics,
    Route,
    Static,
}

impl RouteKind {
    const ALL: [Self; 6] = [
        Self::Relay,
        Self::Probe,
        Self::Healthz,
        Self::Metrics,
        Self::Route,
        Self::Static,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Relay => "relay",
            Self::Probe => "probe",
            Self::Healthz => "healthz",
            Self::Metrics => "metrics",
            Self::Route => "route",
            Self::Static => "static",
        }
    }
}

const REFUSALS: [Refusal; 5] = [
    Refusal::RateLimited,
    Refusal::PerIpCap,
    Refusal::GlobalCap,
    Refusal::ShuttingDown,
    Refusal::FdLimit,
];

fn refusal_label(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::RateLimited => "rate_limited",
        Refusal::PerIpCap => "per_ip_limit",
        Refusal::GlobalCap => "global_limit",
        Refusal::ShuttingDown => "shutting_down",
        Refusal::FdLimit => "fd_limit",
    }
}

/// Counters only ever grow; gauges are read from their owners when rendering.
#[derive(Debug, Default)]
pub(crate) struct FrontMetrics {
    requests: [AtomicU64; 6],
    accepted: AtomicU64,
    refused: [AtomicU64; 5],
    accept_errors: AtomicU64,
    fd_reserve_refusals: AtomicU64,
    tls_failed: AtomicU64,
    relay_admitted: AtomicU64,
    relay_denied: AtomicU64,
    relay_handshake_timeouts: AtomicU64,
}

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl FrontMetrics {
    pub(crate) fn request(&self, kind: RouteKind) {
        let index = RouteKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        inc(&self.requests[index]);
    }

    pub(crate) fn accepted(&self) {
        inc(&self.accepted);
    }

    pub(crate) fn refused(&self, refusal: Refusal) {
        let index = REFUSALS.iter().position(|r| *r == refusal).unwrap_or(0);
        inc(&self.refused[index]);
    }

    pub(crate) fn accept_failed(&self) {
        inc(&self.accept_errors);
    }

    pub(crate) fn fd_reserve_refused(&self) {
        inc(&self.fd_reserve_refusals);
    }

    pub(crate) fn tls_failed(&self) {
        inc(&self.tls_failed);
    }

    pub(crate) fn relay_admitted(&self) {
        inc(&self.relay_admitted);
    }

    pub(crate) fn relay_denied(&self) {
        inc(&self.relay_denied);
    }

    pub(crate) fn relay_handshake_timeout(&self) {
        inc(&self.relay_handshake_timeouts);
    }

    /// Appends this server's metrics in the Prometheus text format (version 0.0.4).
    pub(crate) fn render(&self, out: &mut String, gauges: &Gauges<'_>) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);

        header(
            out,
            "peer_relay_http_requests_total",
            "counter",
            "HTTP requests, by the part of the server that answered them.",
        );
        for (kind, counter) in RouteKind::ALL.iter().zip(&self.requests) {
            let _ = writeln!(
                out,
                "peer_relay_http_requests_total{{route=\"{}\"}} {}",
                kind.label(),
                get(counter)
            );
        }
        metric(
            out,
            "peer_relay_connections_accepted_total",
            "counter",
            "TCP connections accepted.",
            get(&self.accepted),
        );
        header(
            out,
            "peer_relay_connections_refused_total",
            "counter",
            "TCP connections closed right after accept, by reason.",
        );
        for (refusal, counter) in REFUSALS.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "peer_relay_connections_refused_total{{reason=\"{}\"}} {}",
                refusal_label(*refusal),
                get(counter)
            );
        }
        metric(
            out,
            "peer_relay_connections_open",
            "gauge",
            "Open TCP connections, including relay clients and upgraded routes.",
            gauges.open_connections as u64,
        );
        metric(
            out,
            "peer_relay_accept_errors_total",
            "counter",
            "Failed accept calls (typically: out of file descriptors).",
            get(&self.accept_errors),
        );
        metric(
            out,
            "peer_relay_fd_reserve_refusals_total",
            "counter",
            "Relay and route requests refused with 503 because the connection used the \
             descriptor reserve.",
            get(&self.fd_reserve_refusals),
        );
        if let Some(open) = gauges.open_fds {
            metric(
                out,
                "peer_relay_open_fds",
                "gauge",
                "File descriptors open in this process.",
                open as u64,
            );
        }
        if let Some(limit) = gauges.fd_limit {
            metric(
                out,
                "peer_relay_fd_limit",
                "gauge",
                "The process's file descriptor limit (soft RLIMIT_NOFILE).",
                limit,
            );
        }
        if let Some(reserve) = gauges.fd_reserve {
            metric(
                out,
                "peer_relay_fd_reserve",
                "gauge",
                "Descriptors kept free below the limit for health checks, metrics and the process.",
                reserve,
            );
        }
        metric(
            out,
            "peer_relay_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed or timed out.",
            get(&self.tls_failed),
        );
        metric(
            out,
            "peer_relay_relay_clients",
            "gauge",
            "Connected relay clients.",
            gauges.relay_clients as u64,
        );
        metric(
            out,
            "peer_relay_relay_clients_admitted_total",
            "counter",
            "Relay clients admitted by the access policy.",
            get(&self.relay_admitted),
        );
        metric(
            out,
            "peer_relay_relay_clients_denied_total",
            "counter",
            "Relay clients refused by the access policy.",
            get(&self.relay_denied),
        );
        metric(
            out,
            "peer_relay_relay_handshake_timeouts_total",
            "counter",
            "Relay connections closed because their handshake did not finish in time.",
            get(&self.relay_handshake_timeouts),
        );
        let relay = gauges.relay;
        for (name, help, value) in [
            (
                "peer_relay_relay_bytes_sent_total",
                "Bytes the relay forwarded to clients.",
                relay.bytes_sent.get(),
            ),
            (
                "peer_relay_relay_bytes_received_total",
                "Bytes the relay received from clients for forwarding.",
                relay.bytes_recv.get(),
            ),
            (
                "peer_relay_relay_packets_sent_total",
                "Datagram frames the relay forwarded to clients.",
                relay.send_packets_sent.get(),
            ),
            (
                "peer_relay_relay_packets_received_total",
                "Datagram frames the relay received from clients.",
                relay.send_packets_recv.get(),
            ),
            (
                "peer_relay_relay_packets_dropped_total",
                "Datagram frames dropped (recipient not connected or unwritable).",
                relay.send_packets_dropped.get(),
            ),
            (
                "peer_relay_relay_bytes_rate_limited_total",
                "Bytes received from relay clients that were rate limited.",
                relay.bytes_rx_ratelimited_total.get(),
            ),
        ] {
            metric(out, name, "counter", help, value);
        }
    }
}

/// Values owned elsewhere, sampled when rendering.
pub(crate) struct Gauges<'a> {
    pub(crate) open_connections: usize,
    /// Open descriptors, where the system can count them.
    pub(crate) open_fds: Option<usize>,
    /// The soft descriptor limit, where known.
    pub(crate) fd_limit: Option<u64>,
    /// The descriptor reserve in force, where the limit is known.
    pub(crate) fd_reserve: Option<u64>,
    pub(crate) relay_clients: usize,
    pub(crate) relay: &'a iroh_relay::server::Metrics,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = FrontMetrics::default();
        metrics.request(RouteKind::Static);
        metrics.request(RouteKind::Static);
        metrics.refused(Refusal::PerIpCap);
        let relay = iroh_relay::server::Metrics::default();
        let mut out = String::new();
        metrics.render(
            &mut out,
            &Gauges {
                open_connections: 3,
                open_fds: Some(40),
                fd_limit: Some(1024),
                fd_reserve: Some(64),
                relay_clients: 2,
                relay: &relay,
            },
        );
        assert!(out.contains("peer_relay_http_requests_total{route=\"static\"} 2\n"));
        assert!(out.contains("peer_relay_connections_refused_total{reason=\"per_ip_limit\"} 1\n"));
        assert!(out.contains("peer_relay_connections_open 3\n"));
        assert!(out.contains("peer_relay_open_fds 40\n"));
        assert!(out.contains("peer_relay_fd_limit 1024\n"));
        assert!(out.contains("peer_relay_fd_reserve 64\n"));
        assert!(out.contains("peer_relay_relay_clients 2\n"));
        assert!(out.contains("# TYPE peer_relay_relay_clients gauge\n"));
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').expect("name value");
            assert!(name.starts_with("peer_relay_"), "{line}");
            assert!(value.parse::<u64>().is_ok(), "{line}");
        }
    }
}
