//! nea's server inside a program of your own: a throw-away CA and its
//! certificate for localhost, limits of your choosing, the admin endpoint
//! with its metrics, an observer told what the server does, and a shutdown
//! of your own (Ctrl-C, or after a number of seconds).
//!
//! ```text
//! cargo run --example embedded -- [SECONDS]
//! clientcli --host localhost --port PORT --ca CA    # as the example prints
//! ```
//!
//! `servercli` is one such program; this one shows the same entry point
//! with nothing else around it.

use std::sync::Arc;
use std::time::Duration;

use nea::devca::CertificateAuthority;
use nea::server::{Config, Event, Identity, Observer, Server};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Prints what the server reports: where it listens, reloads, shutdown.
struct Printed;

impl Observer for Printed {
    fn event(&self, event: &Event) {
        eprintln!("server: {event:?}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 60,
    };

    // The identity: here a CA made for the run, its certificate written
    // where a client can be told to trust it. In production, name your
    // files with `Identity::Files`.
    let ca = CertificateAuthority::new("embedded example CA")?;
    let issued = ca.issue_server(&["localhost", "127.0.0.1"])?;
    let ca_file = std::env::temp_dir().join(format!("nea-example-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.cert_pem())?;
    let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())?;
    let tls = nea::tls::server_config(chain, key, None)?;

    let config = Config::builder()
        .max_clients(10)
        .date_period(Duration::from_secs(2))
        .build()?;
    let server = Server::builder(Identity::Tls(tls))
        .listen_on("127.0.0.1:0".parse()?)
        .config(config)
        .admin("127.0.0.1:0".parse()?)
        .observer(Arc::new(Printed))
        .bind()
        .await?;
    let port = server.local_addr().port();
    println!(
        "clientcli --host localhost --port {port} --ca {}",
        ca_file.display()
    );
    if let Some(admin) = server.admin_addr() {
        println!("metrics: http://{admin}/metrics");
    }

    // The shutdown is any future: here Ctrl-C or the end of the run.
    let metrics = server.metrics();
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
        }
    };
    server.run(shutdown).await;
    let lines = metrics
        .encode()
        .lines()
        .find(|line| line.starts_with("nea_lines_answered_total "))
        .map(str::to_owned)
        .unwrap_or_default();
    println!("stopped; {lines}");
    std::fs::remove_file(&ca_file)?;
    Ok(())
}
