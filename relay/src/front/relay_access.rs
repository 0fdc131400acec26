//! The relay service's `AccessControl` hook: applies the [`AccessPolicy`] to each relay client,
//! ties the client to its TCP connection's [`Slot`], and remembers connected clients so that
//! stopping (or a new policy) can disconnect them.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock},
};

use http::HeaderName;
use iroh_base::EndpointId;
use iroh_relay::server::{Access, AccessControl, ClientRequest, ConnectionId};
use tracing::{debug, info};
use zeroize::Zeroizing;

use super::{
    conn::{ConnTracker, Slot},
    metrics::FrontMetrics,
};
use crate::access::{AccessMode, AccessPolicy, Admission, TokenDigest};

/// Header the front server sets on `/relay` requests so the access control can find the
/// request's connection. Any value a client sends is replaced.
pub(crate) const SLOT_HEADER: HeaderName = HeaderName::from_static("x-peer-relay-slot");

/// A relay connection admitted by [`RelayAccess`] and not disconnected yet.
#[derive(Debug)]
struct Admitted {
    endpoint: EndpointId,
    /// Digest of the token the client presented, to re-check it when the policy changes.
    token: Option<TokenDigest>,
    /// The client's TCP connection (keeps it counted against the connection limits).
    _slot: Option<Slot>,
}

#[derive(Debug, Default)]
struct AccessState {
    /// Set when the relay stops; from then on every client is refused.
    closed: bool,
    admitted: HashMap<ConnectionId, Admitted>,
}

/// The relay service's `AccessControl`: applies the [`AccessPolicy`], ties each relay client to
/// its TCP connection's slot, and remembers connected clients so stopping can disconnect them.
#[derive(Debug)]
pub(crate) struct RelayAccess {
    policy: RwLock<AccessPolicy>,
    /// Endpoints of the relay's own services, admitted whatever the policy.
    services: RwLock<BTreeSet<EndpointId>>,
    state: Mutex<AccessState>,
    tracker: Arc<ConnTracker>,
    metrics: Arc<FrontMetrics>,
}

impl RelayAccess {
    pub(crate) fn new(
        policy: AccessPolicy,
        tracker: Arc<ConnTracker>,
        metrics: Arc<FrontMetrics>,
    ) -> Self {
        Self {
            policy: RwLock::new(policy),
            services: RwLock::default(),
            state: Mutex::default(),
            tracker,
            metrics,
        }
    }

    fn state(&self) -> MutexGuard<'_, AccessState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses all further clients.
    pub(crate) fn close(&self) {
        self.state().closed = true;
    }

    /// Number of admitted relay connections that have not ended.
    pub(crate) fn client_count(&self) -> usize {
        self.state().admitted.len()
    }

    /// The endpoints that have at least one admitted, not yet ended connection.
    pub(crate) fn connected(&self) -> Vec<EndpointId> {
        let mut endpoints: Vec<_> = self.state().admitted.values().map(|a| a.endpoint).collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        endpoints
    }

    /// The current policy's mode.
    pub(crate) fn mode(&self) -> AccessMode {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .mode()
    }

    /// Admits `endpoint` whatever the policy, now and after policy changes: for the relay's own
    /// services (its mobile bridge dials hosts through the relay with an endpoint of its own).
    pub(crate) fn admit_service(&self, endpoint: EndpointId) {
        self.services
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(endpoint);
    }

    fn is_service(&self, endpoint: &EndpointId) -> bool {
        self.services
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(endpoint)
    }

    /// Replaces the policy; returns the connections it no longer admits.
    pub(crate) fn set_policy(&self, policy: AccessPolicy) -> Vec<(EndpointId, ConnectionId)> {
        let state = self.state();
        let revoked = state
            .admitted
            .iter()
            .filter(|(_, a)| !self.is_service(&a.endpoint))
            .filter(|(_, a)| policy.decide(&a.endpoint, a.token.as_ref()).is_none())
            .map(|(id, a)| (a.endpoint, *id))
            .collect();
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = policy;
        revoked
    }
}

impl AccessControl for RelayAccess {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        let endpoint = request.endpoint_id();
        let slot = request
            .headers()
            .get(SLOT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|id| self.tracker.slot(id));
        let peer = slot.as_ref().map(|s| s.peer().ip());
        // The token is checked and hashed right away; the text is zeroized at the end of this
        // statement. Text that is not a valid token counts as no token.
        let presented = request.auth_token().map(Zeroizing::new);
        let presented_token = presented.is_some();
        let token = presented.and_then(|t| TokenDigest::of_presented(&t));

        let admission = if self.is_service(&endpoint) {
            Some(Admission::Service)
        } else {
            self.policy
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .decide(&endpoint, token.as_ref())
        };
        let mut state = self.state();
        if state.closed {
            return Access::Deny {
                reason: Some("relay is shutting down".to_owned()),
            };
        }
        let Some(admission) = admission else {
            drop(state);
            self.metrics.relay_denied();
            info!(
                endpoint = %endpoint.fmt_short(),
                peer = ?peer,
                presented_token,
                valid_token = token.is_some(),
                "relay client refused by the access policy"
            );
            return Access::Deny {
                reason: Some("this relay does not serve this endpoint".to_owned()),
            };
        };
        if let Some(slot) = &slot {
            slot.set_relay_admitted();
        }
        state.admitted.insert(
            request.connection_id(),
            Admitted {
                endpoint,
                token,
                _slot: slot,
            },
        );
        drop(state);
        self.metrics.relay_admitted();
        debug!(endpoint = %endpoint.fmt_short(), peer = ?peer, ?admission, "relay client connected");
        Access::Allow
    }

    fn on_disconnect(&self, endpoint: EndpointId, connection_id: ConnectionId) {
        // Drops the slot, which frees the connection's place in the limits.
        let removed = self.state().admitted.remove(&connection_id);
        drop(removed);
        debug!(endpoint = %endpoint.fmt_short(), "relay client disconnected");
    }
}
