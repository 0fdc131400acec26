//! The integration tests of `peer`, one test binary (shared build and setup): the real `peer`
//! and `peer-relay` binaries on loopback, in-process hosts, the browser test client, the fault
//! suite and the agent tests. The harness is the `peer-testkit` crate.

#![allow(clippy::unwrap_used)]

mod agent_cli;
mod agent_fast_agent;
mod agent_life;
mod agent_local_model;
mod agent_terminals;
mod agent_trust;
mod bridge_vectors;
mod browser_agents;
mod browser_direct;
mod browser_durability;
mod browser_errors;
mod door;
mod e2e_agents;
mod e2e_bridge;
mod e2e_direct;
mod e2e_refusals;
mod e2e_relay;
mod ended_sessions;
mod faults;
mod hostile;
mod ipv6;
mod keeper;
mod local_attach;
mod multi_relay;
mod newcomer;
mod predict;
mod push;
mod relay_token;
mod routes;
mod screen_attach;
mod screen_cost;
mod session_rename;
