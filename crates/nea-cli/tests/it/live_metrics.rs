//! SPEC §11, counters that count work as it happens: a scrape shows the
//! lines answered, line errors and dates sent of clients still connected,
//! every label value is there from the start, and the standard process
//! metrics and the build are exported.

use std::time::Duration;

use nea::server::Config;

use crate::in_process::InProcess;

#[tokio::test]
async fn a_scrape_shows_the_work_of_clients_still_connected() {
    let server = InProcess::start(
        Config::builder()
            .date_period(Duration::from_millis(50))
            .max_line_bytes(8),
    );
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(server.connect().await);
    }
    for client in &mut clients {
        for n in 0..5 {
            let line = format!("line {n}");
            assert_eq!(client.round_trip(&line).await, nea::reverse::reverse(&line));
        }
        client.send(b"far too long a line\n").await;
    }
    // Every client is still connected: the counters already show their
    // work (counted per read, so within the scrape that follows it).
    server
        .until("nea_lines_answered_total", |n| n == 15.0)
        .await;
    server
        .until("nea_line_errors_total{code=\"line_too_long\"}", |n| {
            n == 3.0
        })
        .await;
    server.until("nea_dates_sent_total", |n| n >= 3.0).await;
    assert_eq!(server.connected(), 3);
    assert_eq!(
        server.sample("nea_sessions_ended_total{reason=\"closed\"}"),
        0.0
    );
    for client in clients {
        client.close().await;
    }
    server.until_connected(0).await;
    // Nothing is counted twice when they leave.
    assert_eq!(server.sample("nea_lines_answered_total"), 15.0);
    server.stop();
}

#[tokio::test]
async fn process_metrics_and_the_build_are_exported() {
    let server = InProcess::start(Config::builder());
    let scrape = server.metrics();
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
    ] {
        let value = crate::common::sample_if_any(&scrape, name)
            .unwrap_or_else(|| panic!("{name} missing:\n{scrape}"));
        assert!(
            value > 0.0 || name == "process_cpu_seconds_total",
            "{name} = {value}"
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        crate::common::sample_if_any(&scrape, &format!("nea_build_info{{version=\"{version}\"}}")),
        Some(1.0),
        "{scrape}"
    );
    server.stop();
}
