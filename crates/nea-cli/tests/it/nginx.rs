//! The nginx example (`contrib/nginx/nea.conf`) behind a real nginx: its
//! stream module passes TLS through to two servercli, each connection
//! beginning with a PROXY protocol header. Replies are correct and each
//! server sees the real client; and the caveat the example states holds:
//! with no health checks, nginx keeps sending new clients to a full server,
//! which turns them away, while another server has room.
//!
//! nginx runs in the foreground as the test's child, with a configuration
//! of the test's own in a temporary directory (its pid file and logs go
//! there too) that loads the stream module and includes the shipped file,
//! given the test's addresses instead of the example ones.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nea::protocol::{ErrorCode, Frame};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::balancer::{Backend, collect_output, free_port, serving};
use crate::common::{Client, PATIENCE, Pki, require_tool, tcp_from, tls_over};

/// Where Debian's libnginx-mod-stream puts the stream module.
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// The example's `server` lines in the upstream, which the test replaces
/// with its own servers, start so.
const EXAMPLE_SERVER: &str = "server 10.0.0.";

/// The example's `listen` line starts so; the test listens elsewhere, with
/// the rest of the line (its keepalive parameters) as shipped.
const EXAMPLE_LISTEN: &str = "listen 3443 ";

/// The keepalive parameters of the example's `listen` line.
const EXAMPLE_KEEPALIVE: &str = "so_keepalive=20s:10s:4";

/// The shipped example with `listen` on `addr`, `servers` as its upstream
/// servers, and `keepalive` (`IDLE:INTERVAL:COUNT`) for its keepalive
/// parameters if given. Panics if the file no longer has the lines the
/// test replaces, so that the test never runs on a file it did not adjust.
fn shipped_for(addr: SocketAddr, servers: &[SocketAddr], keepalive: Option<&str>) -> String {
    let path = crate::common::repository().join("contrib/nginx/nea.conf");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{} cannot be read: {err}", path.display()));
    let mut out = String::new();
    let (mut listens, mut examples) = (0, 0);
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if let Some(rest) = trimmed.strip_prefix(EXAMPLE_LISTEN) {
            listens += 1;
            let rest = match keepalive {
                Some(timings) => {
                    assert!(
                        rest.contains(EXAMPLE_KEEPALIVE),
                        "{EXAMPLE_KEEPALIVE} in {line:?}"
                    );
                    rest.replace(EXAMPLE_KEEPALIVE, &format!("so_keepalive={timings}"))
                }
                None => rest.to_owned(),
            };
            out.push_str(&format!("{indent}listen {addr} {rest}\n"));
        } else if trimmed.starts_with(EXAMPLE_SERVER) {
            examples += 1;
            if examples == 1 {
                for server in servers {
                    out.push_str(&format!("{indent}server {server};\n"));
                }
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(
        listens,
        1,
        "one {EXAMPLE_LISTEN:?} line in {}",
        path.display()
    );
    assert!(
        examples > 0,
        "no {EXAMPLE_SERVER:?} line in {}",
        path.display()
    );
    out
}

/// nginx with the shipped example, in front of some servers.
pub struct Nginx {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx on a free port of 127.0.0.1 in front of `backends`, once it
    /// listens.
    fn start(backends: &[Backend]) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let servers: Vec<SocketAddr> = backends
            .iter()
            .map(|backend| SocketAddr::from(([127, 0, 0, 1], backend.port)))
            .collect();
        Self::start_with(Command::new("nginx"), addr, &servers, None)
    }

    /// `nginx` (a command that runs it: in a network namespace, say) with
    /// the shipped example listening on `addr` in front of `servers`, with
    /// `keepalive` for its keepalive parameters if given; once it listens.
    pub fn start_with(
        mut nginx: Command,
        addr: SocketAddr,
        servers: &[SocketAddr],
        keepalive: Option<&str>,
    ) -> Self {
        require_tool("nginx", "nginx");
        assert!(
            Path::new(STREAM_MODULE).exists(),
            "nginx's stream module (Debian package libnginx-mod-stream) is needed: run scripts/setup.sh"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let stream = dir.path().join("nea.conf");
        std::fs::write(&stream, shipped_for(addr, servers, keepalive)).expect("write nea.conf");
        // One worker, so that what the test sees does not depend on which
        // worker took a connection; in the foreground, logging to standard
        // error, with everything else in the temporary directory.
        let main = format!(
            "load_module {STREAM_MODULE};\n\
             daemon off;\n\
             worker_processes 1;\n\
             pid {pid};\n\
             error_log stderr notice;\n\
             events {{ worker_connections 256; }}\n\
             include {stream};\n",
            pid = dir.path().join("nginx.pid").display(),
            stream = stream.display(),
        );
        let config = dir.path().join("nginx.conf");
        std::fs::write(&config, main).expect("write nginx.conf");
        let mut child = nginx
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config)
            .args(["-e", "stderr"])
            // A group of its own: if the master does not stop, its worker is
            // stopped with it (see Drop).
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let log = collect_output(&mut child);
        let mut nginx = Self {
            child,
            addr,
            log,
            _dir: dir,
        };
        nginx.wait_until_listening();
        nginx
    }

    /// Waits until nginx listens: it opens its listening sockets before
    /// it starts its worker, and says when it does. (A test connection
    /// would reach a server and count there.)
    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.log().contains("start worker process ") {
                return;
            }
            let exited = self.child.try_wait().expect("try_wait");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "nginx does not listen ({exited:?}):\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// A TLS client through nginx, from the loopback address `from`; the
    /// local address it connected from.
    async fn client(&self, pki: &Pki, from: Ipv4Addr) -> (Client, SocketAddr) {
        let tcp = tcp_from(from, self.addr).await;
        let local = tcp.local_addr().expect("local address");
        let stream = tls_over(tcp, pki.client_config())
            .await
            .unwrap_or_else(|err| panic!("a handshake through nginx: {err}\n{}", self.log()));
        (Client::from_stream(stream), local)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker, then itself.
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits"));
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The whole group: the master and its worker.
        let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Two backends, for nginx to balance: without nginx, the test says so
/// before starting them.
fn two(pki: &Pki, first: &[&str]) -> Vec<Backend> {
    require_tool("nginx", "nginx");
    vec![Backend::start(pki, first), Backend::start(pki, &[])]
}

#[tokio::test]
async fn replies_through_nginx_are_correct_and_each_server_sees_the_real_client() {
    let pki = Pki::new();
    let backends = two(&pki, &[]);
    let nginx = Nginx::start(&backends);
    let mut held = Vec::new();
    let mut chosen = Vec::new();
    for (i, from) in [5, 6].into_iter().enumerate() {
        let (mut client, local) = nginx.client(&pki, Ipv4Addr::new(127, 0, 0, from)).await;
        assert_eq!(
            client.round_trip(&format!("client {i}")).await,
            format!("{i} tneilc")
        );
        // The server logs the client's own address and port (from the
        // PROXY header), and nginx's as `via`.
        let joined = format!("client connected peer={local} via=127.0.0.1:");
        chosen.push(serving(&backends, &joined));
        held.push(client);
    }
    chosen.sort_unstable();
    assert_eq!(chosen, [0, 1], "least_conn spreads two held clients");
    // Dates come through too.
    let mut client = held.pop().expect("a client");
    assert!(matches!(client.frame().await, Frame::Date { .. }));
}

#[tokio::test]
async fn nginx_keeps_sending_new_clients_to_a_full_server() {
    let pki = Pki::new();
    let backends = two(&pki, &["--max-clients", "1"]);
    let nginx = Nginx::start(&backends);
    // Fill the first server directly, from an address it does not expect
    // PROXY headers from: nginx does not count that connection.
    let direct = backends[0].server().addr;
    let tcp = tcp_from(Ipv4Addr::new(127, 0, 0, 8), direct).await;
    let mut filler = Client::from_stream(
        tls_over(tcp, pki.client_config())
            .await
            .expect("a direct handshake"),
    );
    assert_eq!(filler.round_trip("fill").await, "llif");
    // Clients through nginx, one after the other; each served one stays.
    let mut served = Vec::new();
    let mut turned_away = 0;
    for i in 0..4 {
        let (mut client, _) = nginx.client(&pki, Ipv4Addr::new(127, 0, 0, 5)).await;
        client.send(format!("{i}\n").as_bytes()).await;
        match client.non_date_frame().await {
            Frame::String { payload } => {
                assert_eq!(payload, format!("{i}"));
                served.push(client);
            }
            Frame::Error { code, .. } => {
                assert_eq!(code, ErrorCode::ServerFull, "client {i}");
                turned_away += 1;
                // Its connection ends (nginx is done with it) before the
                // next client comes.
                let _ = client.clean_end().await;
            }
            other => panic!("client {i}: {other:?}"),
        }
    }
    // A server that turned one client away got the next ones too: nginx
    // neither checks its health nor counts a rejection as a failure
    // (max_fails is 1 within fail_timeout, 10 s: a counted failure would
    // have left it out), though the other server had room all along.
    eprintln!("{turned_away} of 4 clients sent to the full server");
    let rejections = backends[0].sample("nea_rejections_total{code=\"server_full\"}");
    assert!(
        turned_away >= 2,
        "{turned_away} of 4 clients turned away; nginx:\n{}",
        nginx.log()
    );
    assert_eq!(rejections, f64::from(turned_away));
    assert_eq!(backends[1].clients(), served.len());
    assert_eq!(backends[0].clients(), 1, "only the direct client");
}
