//! [`Shared`]: the state the accept loop and every connection of one front server share.

use std::{fmt, sync::Arc};

use iroh_relay::server::{Metrics as RelayMetrics, RelayService};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    config::MetricsExposure,
    conn::ConnTracker,
    fds::{FdBudget, Throttled},
    limits::Limits,
    metrics::{FrontMetrics, Gauges},
    relay_access::RelayAccess,
    route::RouteHandler,
    statics::Statics,
};

/// State shared by the accept loop and every connection.
pub(crate) struct Shared {
    pub(crate) relay: RelayService,
    pub(crate) relay_metrics: Arc<RelayMetrics>,
    pub(crate) access: Arc<RelayAccess>,
    pub(crate) tracker: Arc<ConnTracker>,
    pub(crate) metrics: Arc<FrontMetrics>,
    pub(crate) statics: Option<Statics>,
    /// Longest prefix first.
    pub(crate) routes: Vec<(&'static str, Arc<dyn RouteHandler>)>,
    pub(crate) metrics_exposure: MetricsExposure,
    pub(crate) limits: Limits,
    pub(crate) fds: FdBudget,
    /// "accept failed" lines.
    pub(crate) accept_log: Throttled,
    /// "near the descriptor limit" lines.
    pub(crate) fd_log: Throttled,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("access", &self.access)
            .field("statics", &self.statics)
            .field(
                "routes",
                &self.routes.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            )
            .field("fds", &self.fds)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The route serving `path`, if any.
    pub(crate) fn route_for(&self, path: &str) -> Option<&Arc<dyn RouteHandler>> {
        self.routes
            .iter()
            .find(|(prefix, _)| under_prefix(path, prefix))
            .map(|(_, route)| route)
    }

    pub(crate) fn render_metrics(&self) -> String {
        let mut out = String::new();
        let fd_limit = crate::fd_limit::current().ok().map(|l| l.soft);
        self.metrics.render(
            &mut out,
            &Gauges {
                open_connections: self.tracker.open_count(),
                open_fds: crate::fd_limit::open_fds(),
                fd_limit,
                fd_reserve: self.fds.limit().map(|_| self.fds.reserve()),
                relay_clients: self.access.client_count(),
                relay: &self.relay_metrics,
            },
        );
        for (_, route) in &self.routes {
            route.write_metrics(&mut out);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// Whether `path` is `prefix` or lies below it (whole segments only).
pub(crate) fn under_prefix(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(under_prefix("/bridge", "/bridge"));
        assert!(under_prefix("/bridge/ws", "/bridge"));
        assert!(!under_prefix("/bridges", "/bridge"));
        assert!(!under_prefix("/", "/bridge"));
    }
}
