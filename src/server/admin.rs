//! The admin endpoint (SPEC §11): plain HTTP on `--admin-addr`, never on
//! the TLS port. `GET /metrics` is the Prometheus text exposition;
//! `GET /healthz` is 200 while the server accepts and has a free slot, and
//! 503 with the reason when it is full or shutting down.
//!
//! Its own bounds keep a slow or hostile scraper away from the clients: at
//! most [`MAX_CONNECTIONS`] connections at once (more are closed at once),
//! request headers within [`HEADER_TIMEOUT`], and each connection within
//! [`CONNECTION_DEADLINE`]. It runs on the server's runtime but shares
//! nothing with a session except the metrics' atomics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::metrics::{Health, Metrics};

/// Admin connections served at once.
const MAX_CONNECTIONS: usize = 16;

/// Longest a client of the endpoint may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest one admin connection may stay open.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);

/// Serves the endpoint on `listener` until `stop` is cancelled.
pub(super) async fn accept_loop(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
        // Over the cap: closed at once, costing nothing more.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let metrics = metrics.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
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
                () = stop.cancelled() => {}
            }
            drop(slot);
        });
    }
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
    if request.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "only GET is served\n".into(),
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
