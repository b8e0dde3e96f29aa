//! SPEC §11, certificate reload, on the real binary: SIGHUP and a change of
//! the files on disk (a rename over them, no signal) make new handshakes
//! use the new certificate, connected clients are not disturbed, and a
//! reload that fails keeps the certificate in use.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::{Client, PATIENCE, Pki, Server, tls_connect};

/// The SHA-256 fingerprint of the certificate the server presents to a new
/// connection now.
async fn presented(server: &Server) -> String {
    let stream = tls_connect(server.addr, server.pki.client_config())
        .await
        .expect("handshake");
    let (_, session) = stream.get_ref();
    let chain = session.peer_certificates().expect("a certificate");
    nea::tls::fingerprint(&chain[0])
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

/// Waits until a new connection is shown `expected`.
async fn wait_for_presented(server: &Server, expected: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if presented(server).await == expected {
            return;
        }
        assert!(Instant::now() < deadline, "the new certificate never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sighup_makes_new_handshakes_use_new_files_and_leaves_clients_alone() {
    let server = Server::start(&[]);
    let old = fingerprint_of(&server.pki.cert);
    assert_eq!(presented(&server).await, old);
    let mut connected = server.connect().await;
    assert_eq!(connected.round_trip("before").await, "erofeb");

    // SIGHUP alone reloads (the files are the same: no change to watch).
    server.signal(Signal::SIGHUP);
    let log = server
        .wait_for_log("certificate reloaded", PATIENCE)
        .expect("SIGHUP reloads");
    assert!(log.contains(&format!("sha256={old}")), "{log}");

    let (cert, key) = new_identity(&server.pki);
    let new = fingerprint_of(&cert);
    std::fs::copy(&cert, &server.pki.cert).expect("copy cert");
    std::fs::copy(&key, &server.pki.key).expect("copy key");
    server.signal(Signal::SIGHUP);
    wait_for_presented(&server, &new).await;
    let log = server
        .wait_for_log(&format!("sha256={new}"), PATIENCE)
        .expect("the reload logs the new fingerprint");
    assert!(log.contains("certificate reloaded"), "{log}");
    assert!(log.contains("expires="), "{log}");

    // The client connected before is served as if nothing happened.
    assert_eq!(connected.round_trip("after").await, "retfa");
    assert!(server.stop().success());
}

#[tokio::test]
async fn files_renamed_over_the_old_ones_are_used_without_a_signal() {
    let server = Server::start(&[]);
    let mut connected = server.connect().await;
    let (cert, key) = new_identity(&server.pki);
    let new = fingerprint_of(&cert);
    // As a secret manager does: new files renamed over the old ones.
    std::fs::rename(&key, &server.pki.key).expect("rename key");
    std::fs::rename(&cert, &server.pki.cert).expect("rename cert");
    let started = Instant::now();
    wait_for_presented(&server, &new).await;
    eprintln!(
        "new certificate in use {:?} after the rename",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(connected.round_trip("still").await, "llits");
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_reload_that_fails_keeps_the_certificate_in_use() {
    let server = Server::start(&[]);
    let old = fingerprint_of(&server.pki.cert);
    // A key that does not match the certificate, then one that is no key.
    let (_, other_key) = new_identity(&server.pki);
    for broken in [
        std::fs::read_to_string(&other_key).expect("key"),
        "not a key".to_owned(),
    ] {
        std::fs::write(&server.pki.key, broken).expect("write");
        server.signal(Signal::SIGHUP);
        let failures = server.count_logs("certificate reload failed") + 1;
        server
            .wait_for_logs("certificate reload failed", failures, PATIENCE)
            .unwrap_or_else(|| panic!("no error line:\n{}", server.log()));
        assert_eq!(presented(&server).await, old);
        let mut client = server.connect().await;
        assert_eq!(client.round_trip("served").await, "devres");
    }
    let log = server.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("certificate reload failed"))
        .collect();
    assert!(
        errors.iter().all(|line| line.contains(" ERROR ")),
        "{errors:?}"
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn reloading_in_a_loop_loses_no_client_and_fails_no_handshake() {
    let server = Server::start(&["--max-clients", "300"]);
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(server.connect().await);
    }
    let (a, b) = (
        (server.pki.cert.clone(), server.pki.key.clone()),
        new_identity(&server.pki),
    );
    let identities = [
        (
            std::fs::read(&a.0).expect("a"),
            std::fs::read(&a.1).expect("a"),
        ),
        (
            std::fs::read(&b.0).expect("b"),
            std::fs::read(&b.1).expect("b"),
        ),
    ];
    let pid = server.pid();
    let (cert_path, key_path, dir) = (a.0, a.1, server.pki.dir.path().to_owned());
    // Swap the identity (by rename, key first) and signal, over and over,
    // for 10 s.
    let reloading = tokio::task::spawn_blocking(move || {
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
    });
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
    let server = Server::start_with(pki, &[]);
    let mut connected = server.connect().await;

    version("..v2", &cert, &key);
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap");
    wait_for_presented(&server, &new).await;
    assert_eq!(connected.round_trip("same").await, "emas");
    assert!(server.stop().success());
}

#[tokio::test]
async fn with_the_development_ca_sighup_reloads_its_files_too() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("nea");
    let mut command = std::process::Command::new(crate::common::servercli_exe());
    command
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .env("NEA_DEV_DIR", &dir);
    let server = Server::spawn(command, Pki::new());
    server
        .wait_for_log("development certificates in", PATIENCE)
        .expect("the development CA is used");
    // A new server certificate from another CA, in the development files.
    let other = Pki::new();
    std::fs::copy(&other.key, dir.join("server-key.pem")).expect("key");
    std::fs::copy(&other.cert, dir.join("server.pem")).expect("cert");
    server.signal(Signal::SIGHUP);
    let new = fingerprint_of(&other.cert);
    server
        .wait_for_log(&format!("sha256={new}"), PATIENCE)
        .unwrap_or_else(|| panic!("the development files were not reloaded:\n{}", server.log()));
    // New handshakes present it (trusting the other CA to see it).
    let stream = crate::common::tls_connect(server.addr, other.client_config())
        .await
        .expect("the reloaded certificate is presented");
    let (_, session) = stream.get_ref();
    let chain = session.peer_certificates().expect("a certificate");
    assert_eq!(nea::tls::fingerprint(&chain[0]), new);
    assert!(server.stop().success());
}
