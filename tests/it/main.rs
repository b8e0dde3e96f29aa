//! The integration suite: one binary, one module per behaviour. Every test
//! runs the real binaries (`servercli`, `clientcli`, `loadcli`) over real
//! TLS on ephemeral ports, with certificates made in the test.

// Test helpers are `pub` for the sibling modules of this one binary.
#![allow(unreachable_pub)]

mod common;

mod abuse;
mod admin;
mod alerting;
mod balancer;
mod capacity;
mod cli;
mod client;
mod dates;
mod handshake;
mod interop;
mod logs;
mod mtls;
mod proxy;
mod reload;
mod reversal;
mod service;
mod shutdown;
mod slow;
mod terminal;
