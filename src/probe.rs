//! `orderbridge probe <url>`: one plain-HTTP GET that succeeds on a 2xx answer. It is the
//! health check for container images without curl (a compose `healthcheck`, a Docker
//! `HEALTHCHECK`); Kubernetes probes the same `/healthz` and `/readyz` endpoints itself.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GETs `url` (`http://host:port/path`) and returns its status code when it is 2xx.
///
/// # Errors
/// When the URL is not plain HTTP, nothing answers within `timeout`, the answer is not
/// HTTP, or its status is not 2xx; the message says which.
pub async fn probe(url: &str, timeout: Duration) -> anyhow::Result<u16> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs can be probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        bail!("{url}: no host");
    }
    let exchange = async {
        let mut stream = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("{url}: no answer within {timeout:?}"))??;
    let status_line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let status = std::str::from_utf8(status_line)
        .ok()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("{url}: the answer is not HTTP"))?;
    if !(200..300).contains(&status) {
        bail!("{url}: {status}");
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;

    async fn serve() -> String {
        let app = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "held back") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_2xx_passes_and_anything_else_fails_with_its_status() {
        let base = serve().await;
        assert_eq!(
            probe(&format!("{base}/healthz"), Duration::from_secs(5))
                .await
                .unwrap(),
            200
        );
        let err = probe(&format!("{base}/readyz"), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().ends_with(": 503"), "{err}");
        let err = probe(&format!("{base}/missing"), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().ends_with(": 404"), "{err}");
    }

    #[tokio::test]
    async fn refuses_what_it_cannot_probe() {
        let err = probe("https://example.com/healthz", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
        // A port nothing listens on: bound, then released.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(
            probe(&format!("http://{addr}/healthz"), Duration::from_secs(5))
                .await
                .is_err()
        );
    }
}
