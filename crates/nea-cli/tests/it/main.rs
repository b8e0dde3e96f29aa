//! The integration suite: one binary, one module per behaviour. Every test
//! runs the real binaries (`servercli`, `clientcli`, `loadcli`) over real
//! TLS on ephemeral ports, with certificates made in the test.

// Test helpers are `pub` for the sibling modules of this one binary.
#![allow(unreachable_pub)]

mod common;
// Harness modules: not every helper is used by every test.
#[allow(dead_code)]
mod in_process;
// The kit for tests on real network faults (namespaces, nftables, latency).
mod netns;

mod abuse;
mod admin;
mod admin_eviction;
mod alerting;
mod balancer;
mod capacity;
mod cli;
mod client;
mod client_accounting;
mod client_network;
mod dates;
mod dead_peers;
mod handshake;
mod interop;
mod live_metrics;
mod logs;
mod many_addresses;
mod mtls;
mod netns_kit;
mod proxy;
mod reload;
mod reversal;
#[allow(dead_code)]
mod running_client;
mod service;
mod shutdown;
mod slow;
mod terminal;
