//! SPEC §11, certificate reload: SIGHUP (on the real binary) and a change
//! of the files on disk (a rename over them, no signal; on a server run in
//! process) make new handshakes use the new certificate, connected clients
//! are not disturbed, and a reload that fails keeps the certificate in use.
//! Reloads are seen in `nea_reloads_total`, and the certificate in use is
//! the one a new client is shown.
//!
//! *(v3)* Files that would stall or swamp the server (a FIFO, a device, a
//! chain of thousands of certificates) are refused and the server serves
//! on; a directory that never stops changing does not postpone a reload
//! past its bound; an expired certificate is refused, and one that expires
//! within 14 days is warned about.

use std::net::SocketAddr;
use std::path::Path;
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

/// `servercli` with the certificates of `pki` and an admin endpoint; the
/// endpoint's address.
fn servercli_with_admin(pki: Pki) -> (Server, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let admin = SocketAddr::from(([127, 0, 0, 1], port));
    let server = Server::start_with(pki, &["--admin-addr", &admin.to_string()]);
    (server, admin)
}

/// Reloads that failed so far, as the admin endpoint counts them.
fn failed_reloads(admin: SocketAddr) -> f64 {
    sample(
        &get(admin, "/metrics").1,
        "nea_reloads_total{result=\"failed\"}",
    )
}

/// Puts something in place of the server's certificate file (`install`
/// is given its path), signals SIGHUP, and checks that the server refuses
/// it and goes on as before: one ERROR line, the failure counted, a new
/// client shown the old certificate, a connected client answered, and a
/// clean exit on SIGTERM. Returns the ERROR line.
async fn refused_and_served_on(install: impl FnOnce(&Path)) -> String {
    let (server, admin) = servercli_with_admin(Pki::new());
    let old = fingerprint_of(&server.pki.cert);
    let mut connected = server.connect().await;
    assert_eq!(connected.round_trip("before").await, "erofeb");

    install(&server.pki.cert);
    server.signal(Signal::SIGHUP);
    let line = server
        .wait_for_log("certificate reload failed", PATIENCE)
        .unwrap_or_else(|| panic!("no ERROR line within {PATIENCE:?}:\n{}", server.log()));
    assert!(line.contains(" ERROR "), "{line}");
    assert!(failed_reloads(admin) >= 1.0);
    assert_eq!(presented(server.addr, &server.pki).await, old);
    assert_eq!(connected.round_trip("after").await, "retfa");
    let mut fresh = server.connect().await;
    assert_eq!(fresh.round_trip("fresh").await, "hserf");
    fresh.close().await;
    drop(connected);
    assert!(server.stop().success());
    line
}

/// Renames a new file over `target` (as secret managers do), made by
/// `make` at a temporary path beside it.
fn rename_over(target: &Path, make: impl FnOnce(&Path)) {
    let staged = target.with_extension("staged");
    make(&staged);
    std::fs::rename(&staged, target).expect("renamed over the certificate");
}

#[tokio::test]
async fn a_fifo_renamed_over_the_certificate_is_refused_and_serving_goes_on() {
    let line = refused_and_served_on(|cert| {
        rename_over(cert, |fifo| {
            let made = std::process::Command::new("mkfifo")
                .arg(fifo)
                .status()
                .expect("mkfifo runs");
            assert!(made.success());
        });
    })
    .await;
    assert!(line.contains("it is a FIFO, not a regular file"), "{line}");
}

#[tokio::test]
async fn a_symlink_to_dev_zero_is_refused_and_serving_goes_on() {
    let line = refused_and_served_on(|cert| {
        rename_over(cert, |link| {
            std::os::unix::fs::symlink("/dev/zero", link).expect("symlink");
        });
    })
    .await;
    assert!(line.contains("it is a character device"), "{line}");
}

#[tokio::test]
async fn a_symlink_to_dev_urandom_is_refused_and_serving_goes_on() {
    let line = refused_and_served_on(|cert| {
        rename_over(cert, |link| {
            std::os::unix::fs::symlink("/dev/urandom", link).expect("symlink");
        });
    })
    .await;
    assert!(line.contains("it is a character device"), "{line}");
}

#[tokio::test]
async fn a_chain_of_10000_certificates_is_refused_and_serving_goes_on() {
    let line = refused_and_served_on(|cert| {
        // The certificate in use, then its CA 9,999 times: a key that
        // matches, and a chain no client should be sent.
        let leaf = std::fs::read_to_string(cert).expect("cert");
        let ca = std::fs::read_to_string(cert.with_file_name("ca.pem")).expect("ca");
        rename_over(cert, |chain| {
            std::fs::write(chain, leaf + &ca.repeat(9_999)).expect("written");
        });
    })
    .await;
    // About 6 MB: refused by size before its certificates are counted.
    assert!(line.contains("it is larger than 1 MiB"), "{line}");
}

#[tokio::test]
async fn a_directory_touched_every_150_ms_does_not_postpone_a_reload_past_the_bound() {
    let server = InProcess::start_with(Pki::new(), |builder| builder);
    let (cert, key) = new_identity(&server.pki);
    let new = fingerprint_of(&cert);
    let dir = server.pki.dir.path().to_owned();
    // A writer that touches the directory every 150 ms for 8 s: each
    // change comes before the directory has been quiet for 200 ms.
    let touching = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until {
            std::fs::write(dir.join("touched"), b"x").expect("touched");
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    std::fs::rename(&key, &server.pki.key).expect("rename key");
    std::fs::rename(&cert, &server.pki.cert).expect("rename cert");
    let started = Instant::now();
    server
        .until_at_least("nea_reloads_total{result=\"ok\"}", 1.0)
        .await;
    let took = started.elapsed();
    eprintln!("reloaded {took:?} after the rename");
    assert!(
        took < Duration::from_secs(4),
        "the reload waited {took:?}, for the writer to stop"
    );
    assert!(server.events().contains(&nea::server::Event::Reloaded));
    assert_eq!(presented(server.addr, &server.pki).await, new);
    assert!(!touching.is_finished(), "the writer stopped first");
    touching.join().expect("the writer");
    server.stop();
}

/// A certificate and key for `localhost`/`127.0.0.1` from `pki`'s CA,
/// valid from `from` until `until` (seconds from now), written over the
/// files of `pki` (key first, by rename).
fn replace_with_validity(pki: &Pki, from: i64, until: i64) {
    let now = jiff::Timestamp::now();
    let at = |secs: i64| now + jiff::SignedDuration::from_secs(secs);
    let issued = pki
        .authority
        .issue_server_valid(&["localhost", "127.0.0.1"], at(from), at(until))
        .expect("issued");
    rename_over(&pki.key, |key| {
        std::fs::write(key, &issued.key_pem).expect("key");
    });
    rename_over(&pki.cert, |cert| {
        std::fs::write(cert, &issued.cert_pem).expect("cert");
    });
}

const DAY: i64 = 24 * 60 * 60;

#[tokio::test]
async fn a_certificate_expiring_within_14_days_is_warned_about_at_start_and_at_reload() {
    let pki = Pki::new();
    // Three days and an hour left: three whole days.
    replace_with_validity(&pki, -DAY, 3 * DAY + 3600);
    let server = Server::start_with(pki, &[]);
    let start = server
        .wait_for_log("server certificate", PATIENCE)
        .expect("the certificate is logged at start");
    for field in [" WARN ", "days_left=3", "expires="] {
        assert!(start.contains(field), "{field} missing: {start}");
    }
    server.signal(Signal::SIGHUP);
    let reload = server
        .wait_for_log("certificate reloaded", PATIENCE)
        .expect("the reload is logged");
    for field in [" WARN ", "days_left=3", "expires="] {
        assert!(reload.contains(field), "{field} missing: {reload}");
    }
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("soon").await, "noos");
    drop(client);
    assert!(server.stop().success());
}

#[tokio::test]
async fn an_expired_certificate_is_refused_on_reload_and_the_old_one_kept() {
    let (server, admin) = servercli_with_admin(Pki::new());
    let old = fingerprint_of(&server.pki.cert);
    let mut connected = server.connect().await;
    replace_with_validity(&server.pki, -30 * DAY, -DAY);
    server.signal(Signal::SIGHUP);
    let line = server
        .wait_for_log("certificate reload failed", PATIENCE)
        .unwrap_or_else(|| panic!("no ERROR line:\n{}", server.log()));
    assert!(line.contains(" ERROR "), "{line}");
    assert!(line.contains("expired on"), "{line}");
    assert!(failed_reloads(admin) >= 1.0);
    assert_eq!(presented(server.addr, &server.pki).await, old);
    assert_eq!(connected.round_trip("kept").await, "tpek");
    drop(connected);
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_reload_that_heals_a_failed_one_says_so() {
    let server = Server::start(&[]);
    let good = std::fs::read(&server.pki.cert).expect("cert");
    rename_over(&server.pki.cert, |bad| {
        std::fs::write(bad, "not a certificate").expect("written");
    });
    server.signal(Signal::SIGHUP);
    server
        .wait_for_log("certificate reload failed", PATIENCE)
        .expect("the failure is logged");
    rename_over(&server.pki.cert, |back| {
        std::fs::write(back, &good).expect("written");
    });
    server.signal(Signal::SIGHUP);
    let healed = server
        .wait_for_log("certificate reloaded after a failed reload", PATIENCE)
        .unwrap_or_else(|| panic!("no healing line:\n{}", server.log()));
    assert!(healed.contains(" INFO "), "{healed}");
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_development_certificate_put_in_place_near_its_end_is_renewed_at_once() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("nea");
    let mut command = std::process::Command::new(crate::common::servercli_exe());
    command
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .env("NEA_DEV_DIR", &dir);
    let server = Server::spawn(command, Pki::new());
    server
        .wait_for_log("development certificates", PATIENCE)
        .expect("the development CA is used");
    // Five days left on a certificate from the development CA, renamed
    // over the one in use (a key of its own, renamed first).
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("readable");
    let ca = nea::devca::CertificateAuthority::from_pem(&read("ca.pem"), &read("ca-key.pem"))
        .expect("the development CA");
    let now = jiff::Timestamp::now();
    let ending = ca
        .issue_server_valid(
            &["localhost", "127.0.0.1", "::1"],
            now - jiff::SignedDuration::from_secs(DAY),
            now + jiff::SignedDuration::from_secs(5 * DAY),
        )
        .expect("issued");
    rename_over(&dir.join("server-key.pem"), |key| {
        std::fs::write(key, &ending.key_pem).expect("key");
    });
    rename_over(&dir.join("server.pem"), |cert| {
        std::fs::write(cert, &ending.cert_pem).expect("cert");
    });
    server
        .wait_for_log("renewed the development server certificate", PATIENCE)
        .unwrap_or_else(|| panic!("no renewal:\n{}", server.log()));
    let roots = nea::tls::root_store(nea::tls::load_certs(&dir.join("ca.pem")).expect("ca"))
        .expect("roots");
    let config = nea::tls::client_config(roots, None).expect("config");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stream = tls_connect(server.addr, config.clone())
            .await
            .expect("verified");
        let (_, session) = stream.get_ref();
        let expires = nea::tls::expiry(&session.peer_certificates().expect("a certificate")[0])
            .expect("an expiry");
        if expires > now + jiff::SignedDuration::from_secs(360 * DAY) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate is not in use"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.stop().success());
}

/// The files are watched from the moment `bind` returns, not from some
/// moment after `run` starts: a change made in between (or while a loaded
/// machine has not yet scheduled the server's tasks) is not lost.
#[tokio::test]
async fn a_change_made_between_bind_and_run_is_seen() {
    let pki = Pki::new();
    let server = nea::server::Server::builder(nea::server::Identity::Files {
        cert: pki.cert.clone(),
        key: pki.key.clone(),
    })
    .listen_on("127.0.0.1:0".parse().expect("addr"))
    .bind()
    .await
    .expect("bind");
    let addr = server.local_addr();

    let (cert, key) = new_identity(&pki);
    let new = fingerprint_of(&cert);
    std::fs::rename(&key, &pki.key).expect("key over key");
    std::fs::rename(&cert, &pki.cert).expect("cert over cert");

    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone().cancelled_owned()));
    wait_for_presented(addr, pki.client_config(), &new).await;
    shutdown.cancel();
    running.await.expect("the server stops");
}

/// Only a change of the files themselves is a reload: another file
/// written in their directory (a port file, an editor's swap file, a
/// backup) makes none, counts no reload and tells the service manager
/// nothing, and a real change afterwards is still seen.
#[tokio::test]
async fn another_file_written_beside_the_certificates_is_not_a_reload() {
    let server = InProcess::start_with(Pki::new(), |builder| builder);
    let dir = server.pki.dir.path().to_owned();
    for name in ["port", ".cert.pem.swp", "cert.pem.bak"] {
        std::fs::write(dir.join(name), b"not a certificate").expect("written");
    }
    std::fs::remove_file(dir.join(".cert.pem.swp")).expect("removed");
    // The watch settles within 200 ms of quiet; 1.5 s is ample for a
    // reload that should not come.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.sample(RELOADED), 0.0, "{}", server.metrics());
    assert!(
        !server.events().contains(&Event::Reloading),
        "{:?}",
        server.events()
    );

    let (cert, key) = new_identity(&server.pki);
    let new = fingerprint_of(&cert);
    std::fs::rename(&key, &server.pki.key).expect("rename key");
    std::fs::rename(&cert, &server.pki.cert).expect("rename cert");
    wait_for_presented(server.addr, server.pki.client_config(), &new).await;
    assert_eq!(server.sample(RELOADED), 1.0, "{}", server.metrics());
    server.stop();
}

/// Copying new files into place and then sending SIGHUP, as an operator
/// (or a certificate tool's hook) does, is one reload: one line, one
/// count. The directory watch sees the same copies, and finds the files
/// as the signal's reload read them.
#[tokio::test]
async fn copy_then_sighup_is_one_reload_and_one_line() {
    let (server, admin) = start_with_admin(&["--log-format", "json"]);
    let (cert, key) = new_identity(&server.pki);
    let new = fingerprint_of(&cert);
    std::fs::copy(&cert, &server.pki.cert).expect("copy cert");
    std::fs::copy(&key, &server.pki.key).expect("copy key");
    server.signal(Signal::SIGHUP);
    wait_for_presented(server.addr, server.pki.client_config(), &new).await;
    // Well past the watch's settle time (200 ms of quiet, 2 s at most).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, metrics) = get(admin, "/metrics");
    assert_eq!(sample(&metrics, RELOADED), 1.0, "{metrics}");
    let log = server.stop_and_read_log();
    let reloaded = log
        .lines()
        .filter(|line| line.contains("\"certificate reloaded\""))
        .count();
    assert_eq!(reloaded, 1, "{log}");
}
