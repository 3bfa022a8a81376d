//! The HTTP server in front of the router, with the limits a public endpoint needs.
//!
//! - **Header read timeout**: a client that does not send its request headers in time, or a
//!   kept-alive connection idle that long, is closed (hyper's HTTP/1 timer).
//! - **Body read timeout**: a body that has not fully arrived in time is answered 408 (the
//!   router's body layer, `router.rs`), so a trickling body cannot hold a socket and up to
//!   `body_limit_bytes` of memory.
//! - **Connection cap**: at most `max_connections` are served at once; further connections
//!   wait in the kernel's listen backlog until one closes, so a flood of slow clients costs a
//!   bounded amount of memory and file descriptors.
//! - **Bounded graceful shutdown**: on shutdown no connection is accepted any more, requests
//!   in progress get `shutdown_grace` to be answered (their webhooks published), and what is
//!   left is closed. A provider whose request was cut retries; nothing it was told 2xx for
//!   is lost.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The server's limits; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Time to send the request headers (and the longest idle keep-alive).
    pub header_read_timeout: Duration,
    /// Most connections at once.
    pub max_connections: usize,
    /// Time requests in progress get at shutdown.
    pub shutdown_grace: Duration,
}

impl ServeLimits {
    /// The limits of `config`.
    pub fn of(config: &crate::IngestConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            max_connections: config.max_connections.max(1),
            shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown`, then shuts down gracefully
/// within `limits.shutdown_grace`.
///
/// # Errors
/// Never for a single connection's trouble (it is logged); only when the listener itself
/// fails for good.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // An idle HTTP/2 connection is pinged and closed when the ping goes unanswered.
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, a connection reset before accept: the listener
                    // itself is fine. Pause a moment so a persistent condition does not spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let watched = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(err) = watched.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let open = connections.len();
    tokio::select! {
        () = graceful.shutdown() => {
            tracing::info!(connections = open, "ingest stopped; every request in progress was answered");
        }
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(
                connections = connections.len(),
                grace_ms = limits.shutdown_grace.as_millis() as u64,
                "connections still open at the end of the shutdown grace; closing them"
            );
        }
    }
    connections.abort_all();
    Ok(())
}
