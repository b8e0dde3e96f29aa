//! SPEC §11, certificate reload: SIGHUP (on the real binary) and a change
//! of the files on disk (a rename over them, no signal; on a server run in
//! process) make new handshakes use the new certificate, connected clients
//! are not disturbed, and a reload that fails keeps the certificate in use.
//! Reloads are seen in `nea_reloads_total`, and the certificate in use is
//! the one a new client is shown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nea::server::Event;
use nix::sys::signal::Signal;

use crate::common::{
    Client, PATIENCE, Pki, Server, get, sample, start_with_admin, tls_connect, until_scraped,
};
use crate::in_process::InProcess;

const RELOADED: &str = "nea_reloads_total{result=\"ok\"}";
const RELOAD_FAILED: &str = "nea_reloads_total{result=\"failed\"}";

/// The SHA-256 fingerprint of the certificate the server at `addr`
/// presents to a new connection now, if a client with `config` completes
/// its handshake.
async fn shown_to(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<String> {
    let stream = tls_connect(addr, config).await?;
    let (_, session) = stream.get_ref();
    let chain = session.peer_certificates().expect("a certificate");
    Ok(nea::tls::fingerprint(&chain[0]))
}

/// A client configuration that trusts the CA in `ca_pem` alone.
fn trusting(ca_pem: &std::path::Path) -> Arc<rustls::ClientConfig> {
    let ca = nea::tls::load_certs(ca_pem).expect("ca");
    nea::tls::client_config(nea::tls::root_store(ca).expect("roots"), None).expect("config")
}

/// The fingerprint the server at `addr`, with `pki`'s certificates,
/// presents to a new connection now.
async fn presented(addr: SocketAddr, pki: &Pki) -> String {
    shown_to(addr, pki.client_config())
        .await
        .expect("handshake")
}

/// The fingerprint of the PEM certificate in `path`.
fn fingerprint_of(path: &std::path::Path) -> String {
    nea::tls::fingerprint(&nea::tls::load_certs(path).expect("cert")[0])
}

/// Issues a new server certificate from the same CA and writes it as
/// `cert.new` and `key.new` beside the files in use; returns the paths.
fn new_identity(pki: &Pki) -> (std::path::PathBuf, std::path::PathBuf) {
    let issued = pki
        .authority
        .issue_server(&["localhost", "127.0.0.1"])
        .expect("issue");
    let dir = pki.dir.path();
    (
        crate::common::write(dir, "cert.new", &issued.cert_pem),
        crate::common::write(dir, "key.new", &issued.key_pem),
    )
}

/// Waits until a new connection to `addr` by a client with `config` is
/// shown `expected`.
async fn wait_for_presented(addr: SocketAddr, config: Arc<rustls::ClientConfig>, expected: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if shown_to(addr, config.clone()).await.ok().as_deref() == Some(expected) {
            return;
        }
        assert!(Instant::now() < deadline, "the new certificate never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sighup_makes_new_handshakes_use_new_files_and_leaves_clients_alone() {
    let (server, admin) = start_with_admin(&[]);
    let old = fingerprint_of(&server.pki.cert);
    assert_eq!(presented(server.addr, &server.pki).await, old);
    let mut connected = server.connect().await;
    assert_eq!(connected.round_trip("before").await, "erofeb");

    // SIGHUP alone reloads (the files are the same: no change to watch).
    server.signal(Signal::SIGHUP);
    until_scraped(admin, RELOADED, |n| n == 1.0).await;
    assert_eq!(presented(server.addr, &server.pki).await, old);

    let (cert, key) = new_identity(&server.pki);
    let new = fingerprint_of(&cert);
    std::fs::copy(&cert, &server.pki.cert).expect("copy cert");
    std::fs::copy(&key, &server.pki.key).expect("copy key");
    server.signal(Signal::SIGHUP);
    wait_for_presented(server.addr, server.pki.client_config(), &new).await;
    // Reloaded again (by the signal, and perhaps by the copies seen on
    // disk), and the expiry shown is the new certificate's.
    until_scraped(admin, RELOADED, |n| n >= 2.0).await;
    let (_, metrics) = get(admin, "/metrics");
    assert!(sample(&metrics, "nea_certificate_expiry_timestamp_seconds") > 1.7e9);

    // The client connected before is served as if nothing happened.
    assert_eq!(connected.round_trip("after").await, "retfa");
    assert!(server.stop().success());
}

#[tokio::test]
async fn files_renamed_over_the_old_ones_are_used_without_a_signal() {
    // In process, with no way to ask for a reload: only the files' change
    // can make one.
    let server = InProcess::start_with(Pki::new(), |builder| builder);
    let mut connected = server.connect().await;
    let (cert, key) = new_identity(&server.pki);
    let new = fingerprint_of(&cert);
    // As a secret manager does: new files renamed over the old ones.
    std::fs::rename(&key, &server.pki.key).expect("rename key");
    std::fs::rename(&cert, &server.pki.cert).expect("rename cert");
    wait_for_presented(server.addr, server.pki.client_config(), &new).await;
    assert!(server.sample(RELOADED) >= 1.0, "{}", server.metrics());
    assert!(
        server.events().contains(&Event::Reloaded),
        "{:?}",
        server.events()
    );
    assert_eq!(connected.round_trip("still").await, "llits");
    server.stop();
}

#[tokio::test]
async fn a_reload_that_fails_keeps_the_certificate_in_use() {
    let (server, admin) = start_with_admin(&[]);
    let old = fingerprint_of(&server.pki.cert);
    // A key that does not match the certificate, then one that is no key.
    let (_, other_key) = new_identity(&server.pki);
    for broken in [
        std::fs::read_to_string(&other_key).expect("key"),
        "not a key".to_owned(),
    ] {
        let (_, metrics) = get(admin, "/metrics");
        let failed = sample(&metrics, RELOAD_FAILED);
        std::fs::write(&server.pki.key, broken).expect("write");
        server.signal(Signal::SIGHUP);
        until_scraped(admin, RELOAD_FAILED, |n| n > failed).await;
        assert_eq!(presented(server.addr, &server.pki).await, old);
        let mut client = server.connect().await;
        assert_eq!(client.round_trip("served").await, "devres");
    }
    let mut server = server;
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(PATIENCE).expect("exits").success());
    // An operator sees each failure as an error.
    let log = server.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("certificate reload failed"))
        .collect();
    assert!(errors.len() >= 2, "{log}");
    assert!(
        errors.iter().all(|line| line.contains(" ERROR ")),
        "{errors:?}"
    );
}

/// Swaps the identity of `server` between its own and a new one (by
/// rename, key first) and sends SIGHUP, over and over, for 10 s, on a
/// thread; the task ends with the number of reloads asked for.
fn reload_over_and_over(server: &Server) -> tokio::task::JoinHandle<u32> {
    let (cert_path, key_path) = (server.pki.cert.clone(), server.pki.key.clone());
    let (new_cert, new_key) = new_identity(&server.pki);
    let read = |path: &std::path::Path| std::fs::read(path).expect("identity");
    let identities = [
        (read(&cert_path), read(&key_path)),
        (read(&new_cert), read(&new_key)),
    ];
    let (pid, dir) = (server.pid(), server.pki.dir.path().to_owned());
    tokio::task::spawn_blocking(move || {
        let until = Instant::now() + Duration::from_secs(10);
        let mut reloads = 0u32;
        while Instant::now() < until {
            let (cert, key) = &identities[(reloads % 2) as usize];
            std::fs::write(dir.join("k.tmp"), key).expect("write");
            std::fs::rename(dir.join("k.tmp"), &key_path).expect("rename");
            std::fs::write(dir.join("c.tmp"), cert).expect("write");
            std::fs::rename(dir.join("c.tmp"), &cert_path).expect("rename");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGHUP);
            reloads += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        reloads
    })
}

#[tokio::test]
async fn reloading_in_a_loop_loses_no_client_and_fails_no_handshake() {
    let server = Server::start(&["--max-clients", "300"]);
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(server.connect().await);
    }
    let reloading = reload_over_and_over(&server);
    // Meanwhile: every connected client is answered, and new handshakes
    // keep succeeding, whichever identity they meet.
    let mut round = 0u64;
    let mut handshakes = 0u64;
    while !reloading.is_finished() {
        for (i, client) in clients
            .iter_mut()
            .enumerate()
            .skip((round % 10) as usize)
            .step_by(10)
        {
            let line = format!("client {i} round {round}");
            assert_eq!(client.round_trip(&line).await, nea::reverse::reverse(&line));
        }
        let mut fresh = Client::connect(server.addr, server.pki.client_config())
            .await
            .expect("a handshake during reloads");
        assert_eq!(fresh.round_trip("fresh").await, "hserf");
        fresh.close().await;
        handshakes += 1;
        round += 1;
    }
    let reloads = reloading.await.expect("reloading");
    eprintln!("{reloads} reloads; {handshakes} handshakes and {round} rounds meanwhile");
    for client in &mut clients {
        assert_eq!(client.round_trip("end").await, "dne");
    }
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_kubernetes_style_symlink_swap_is_seen() {
    // dir/tls.crt -> ..data/tls.crt, and ..data -> ..v1: a new version is
    // a new directory, and ..data is swapped to it by a rename.
    let mut pki = Pki::new();
    let dir = pki.dir.path().join("secret");
    let version = |name: &str, cert: &std::path::Path, key: &std::path::Path| {
        let at = dir.join(name);
        std::fs::create_dir_all(&at).expect("version dir");
        std::fs::copy(cert, at.join("tls.crt")).expect("cert");
        std::fs::copy(key, at.join("tls.key")).expect("key");
    };
    version("..v1", &pki.cert, &pki.key);
    std::os::unix::fs::symlink("..v1", dir.join("..data")).expect("..data");
    std::os::unix::fs::symlink("..data/tls.crt", dir.join("tls.crt")).expect("tls.crt");
    std::os::unix::fs::symlink("..data/tls.key", dir.join("tls.key")).expect("tls.key");
    let (cert, key) = new_identity(&pki);
    let new = fingerprint_of(&cert);
    pki.cert = dir.join("tls.crt");
    pki.key = dir.join("tls.key");
    let server = InProcess::start_with(pki, |builder| builder);
    let mut connected = server.connect().await;

    version("..v2", &cert, &key);
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap");
    wait_for_presented(server.addr, server.pki.client_config(), &new).await;
    assert!(server.sample(RELOADED) >= 1.0, "{}", server.metrics());
    assert_eq!(connected.round_trip("same").await, "emas");
    server.stop();
}

#[tokio::test]
async fn with_the_development_ca_sighup_reloads_its_files_too() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("nea");
    let admin = crate::common::free_addr();
    let mut command = std::process::Command::new(crate::common::servercli_exe());
    command
        .args(["--bind", "127.0.0.1", "--port", "0", "--admin-addr"])
        .arg(admin.to_string())
        .env("NEA_DEV_DIR", &dir);
    let server = Server::spawn(command, Pki::new());
    // The development CA is used: a client that trusts it alone verifies
    // the server, which presents the development certificate.
    let shown = shown_to(server.addr, trusting(&dir.join("ca.pem")))
        .await
        .expect("the development CA verifies the server");
    assert_eq!(shown, fingerprint_of(&dir.join("server.pem")));
    // A new server certificate from another CA, in the development files.
    let other = Pki::new();
    std::fs::copy(&other.key, dir.join("server-key.pem")).expect("key");
    std::fs::copy(&other.cert, dir.join("server.pem")).expect("cert");
    server.signal(Signal::SIGHUP);
    until_scraped(admin, RELOADED, |n| n >= 1.0).await;
    // New handshakes present it (trusting the other CA to see it).
    let new = fingerprint_of(&other.cert);
    wait_for_presented(server.addr, other.client_config(), &new).await;
    assert!(server.stop().success());
}
