//! The admin endpoint (SPEC §11): plain HTTP on `--admin-addr`, never on
//! the TLS port. `GET /metrics` is the Prometheus text exposition;
//! `GET /healthz` is 200 while the server accepts and has a free slot, and
//! 503 with the reason when it is full or shutting down.
//!
//! Its own bounds keep a slow or hostile scraper away from the clients: at
//! most [`MAX_CONNECTIONS`] connections at once, request headers within
//! [`HEADER_TIMEOUT`], and each connection within [`CONNECTION_DEADLINE`].
//! It runs on the server's runtime but shares nothing with a session except
//! the metrics' atomics.
//!
//! At the cap, a new connection evicts the oldest one that has not sent a
//! whole request yet, rather than being refused: connections that send
//! nothing (or drip a header a byte at a time) and reconnect as soon as
//! they are closed could otherwise hold every place, and a load balancer's
//! health checks would find a healthy server unanswering (SPEC §11). Only
//! when every connection is busy answering is a new one closed at once.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::metrics::{Health, Metrics};

/// Admin connections served at once.
const MAX_CONNECTIONS: usize = 16;

/// Longest a client of the endpoint may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest one admin connection may stay open.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);

/// One admin connection, as the cap sees it.
struct Open {
    /// Set once its request is whole and being answered: it is then no
    /// longer evicted.
    answering: Arc<AtomicBool>,
    /// Cancelled to evict it.
    evict: CancellationToken,
}

/// The admin connections open now, oldest first. Invariant: at most
/// [`MAX_CONNECTIONS`], plus connections evicted and not yet gone (their
/// `evict` is cancelled).
#[derive(Default)]
struct OpenConnections {
    open: Mutex<VecDeque<Open>>,
}

impl OpenConnections {
    /// A place for a new connection: free, or taken from the oldest one
    /// that has not sent a whole request; `None` when every place is busy
    /// answering.
    fn admit(&self) -> Option<Open> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|conn| !conn.evict.is_cancelled());
        if open.len() >= MAX_CONNECTIONS {
            let idle = open
                .iter()
                .position(|conn| !conn.answering.load(Ordering::Acquire))?;
            if let Some(evicted) = open.remove(idle) {
                evicted.evict.cancel();
            }
        }
        let conn = Open {
            answering: Arc::new(AtomicBool::new(false)),
            evict: CancellationToken::new(),
        };
        open.push_back(Open {
            answering: conn.answering.clone(),
            evict: conn.evict.clone(),
        });
        Some(conn)
    }
}

/// Serves the endpoint on `listener` until `stop` is cancelled.
pub(super) async fn accept_loop(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let connections = OpenConnections::default();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _)) = accepted else {
            // Out of descriptors, say: the TLS side matters more.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        // Every place busy answering: closed at once, costing nothing more.
        let Some(place) = connections.admit() else {
            continue;
        };
        tokio::spawn(serve_connection(tcp, place, metrics.clone(), stop.clone()));
    }
}

/// One admin connection: one request, answered, within the deadlines;
/// ended early if it is evicted or the server stops.
async fn serve_connection(
    tcp: TcpStream,
    place: Open,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let answering = place.answering.clone();
    let service = hyper::service::service_fn(move |request| {
        answering.store(true, Ordering::Release);
        let metrics = metrics.clone();
        async move { Ok::<_, Infallible>(respond(&request, &metrics)) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false);
    let connection = http.serve_connection(TokioIo::new(tcp), service);
    tokio::select! {
        _ = tokio::time::timeout(CONNECTION_DEADLINE, connection) => {}
        () = place.evict.cancelled() => {}
        () = stop.cancelled() => {}
    }
    // Gone: its place is free (an evicted one's already is).
    place.evict.cancel();
}

/// The answer to one request.
fn respond(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    };
    const PLAIN: &str = "text/plain; charset=utf-8";
    // HEAD as GET: hyper sends the headers and no body.
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "only GET and HEAD are served\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" => match metrics.health() {
            Health::Serving => text(StatusCode::OK, PLAIN, "ok\n".into()),
            Health::Full => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                "full: every client slot is taken\n".into(),
            ),
            Health::ShuttingDown => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                "shutting down\n".into(),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: try /metrics or /healthz\n".into(),
        ),
    }
}
