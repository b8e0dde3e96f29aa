//! The integration suite: one binary, one module per behaviour, over real
//! TLS on ephemeral ports, with certificates made in the test. Tests whose
//! subject is the server's behaviour run it in process, through the
//! library's entry point (`in_process`), and watch its state: its metrics,
//! client count and events. Tests whose subject is a program (flags, exit
//! statuses, signals, systemd, HAProxy, the terminal, the log) run the
//! real binaries (`common`), and watch a spawned server's admin endpoint
//! where they need its state; only tests whose subject is the log read it.

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
mod balancer_dead_peers;
mod capacity;
mod cli;
mod client;
mod client_accounting;
mod client_network;
mod client_pin;
mod dates;
mod dead_peers;
mod handshake;
mod interop;
mod live_metrics;
mod log_rules;
mod logs;
mod many_addresses;
mod mtls;
mod netns_kit;
mod nginx;
mod proxy;
mod reload;
mod reversal;
#[allow(dead_code)]
mod running_client;
mod service;
mod shutdown;
mod slow;
mod slow_paths;
mod terminal;
