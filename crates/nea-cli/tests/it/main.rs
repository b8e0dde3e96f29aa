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
mod balancer;
mod capacity;
mod cli;
mod client;
mod dates;
mod handshake;
mod interop;
mod logs;
mod many_addresses;
mod mtls;
mod netns_kit;
mod proxy;
mod reload;
mod reversal;
mod service;
mod shutdown;
mod slow;
mod terminal;
