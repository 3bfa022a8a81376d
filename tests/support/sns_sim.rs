//! An Amazon SNS simulator, reached the way ingest reaches SNS: over HTTPS, at
//! `sns.<region>.amazonaws.com` (the test client resolves those names to this server and
//! trusts its certificate; nothing else about ingest changes).
//!
//! - `GET /SimpleNotificationService-<id>.pem`: the signing certificate for the names in
//!   [`CERTIFICATES`], S3's 404 `NoSuchKey` for any other (or 500 while `fail_certificates`
//!   is set).
//! - `GET /?Action=ConfirmSubscription&TopicArn=…&Token=…`: confirms, records the token and
//!   answers SNS's `ConfirmSubscriptionResponse`; an unknown token gets SNS's 400
//!   `InvalidParameter` error.
//! - Every request is recorded with the host it was addressed to, so a test can show that a
//!   refused URL was never fetched.
//!
//! [`sign`] signs messages as SNS does (canonical string, SHA1withRSA or SHA256withRSA) with
//! the test key in `tests/support/keys/`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::Value;

pub const SIGNING_CERT: &str = include_str!("keys/sns-signing.pem");
const SIGNING_KEY: &str = include_str!("keys/sns-signing.key");
const TLS_CERT: &str = include_str!("keys/tls-sim.pem");
const TLS_KEY: &str = include_str!("keys/tls-sim.key");
/// Hosts the test client resolves to the simulator (its TLS certificate names them all).
pub const HOSTS: [&str; 4] = [
    "sns.us-east-1.amazonaws.com",
    "sns.eu-west-1.amazonaws.com",
    "sns.cn-north-1.amazonaws.com.cn",
    "evil.example.com",
];
pub const CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-orderbridge-test.pem";
/// The certificate files the simulator serves: the current one and the one AWS rotated to.
pub const CERTIFICATES: [&str; 2] = [
    "SimpleNotificationService-orderbridge-test.pem",
    "SimpleNotificationService-rotated.pem",
];
pub const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:sp-api-orders";

#[derive(Default)]
struct Inner {
    requests: Vec<(String, String)>,
    tokens: Vec<String>,
    confirmed: Vec<String>,
    fail_certificates: bool,
}

#[derive(Clone)]
pub struct SnsSim {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl SnsSim {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/", get(action))
            .route("/{file}", get(certificate))
            .with_state(Arc::clone(&inner));
        let identity = tokio_native_tls::native_tls::Identity::from_pkcs8(
            TLS_CERT.as_bytes(),
            TLS_KEY.as_bytes(),
        )
        .unwrap();
        let acceptor = tokio_native_tls::TlsAcceptor::from(
            tokio_native_tls::native_tls::TlsAcceptor::new(identity).unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self { addr, inner }
    }

    /// An HTTP client for ingest that reaches this simulator for every SNS host, trusts its
    /// certificate, and, like ingest's own, follows no redirects.
    pub fn client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(reqwest::Certificate::from_pem(TLS_CERT.as_bytes()).unwrap());
        for host in HOSTS {
            builder = builder.resolve(host, self.addr);
        }
        builder.build().unwrap()
    }

    /// Every request so far: (host it was addressed to, path and query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Tokens of the subscriptions confirmed so far.
    pub fn confirmed(&self) -> Vec<String> {
        self.inner.lock().unwrap().confirmed.clone()
    }

    /// Makes certificate downloads fail with 500 (or work again).
    pub fn fail_certificates(&self, fail: bool) {
        self.inner.lock().unwrap().fail_certificates = fail;
    }

    /// A signed `SubscriptionConfirmation` for `topic` whose token the simulator will accept.
    pub fn subscription_confirmation(&self, topic: &str, token: &str) -> Value {
        self.inner.lock().unwrap().tokens.push(token.to_owned());
        let mut message = serde_json::json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": token,
            "TopicArn": topic,
            "Message": format!("You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
            "SubscribeURL": format!("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}"),
            "Timestamp": "2025-05-02T00:54:06.655Z",
            "SignatureVersion": "1",
            "SigningCertURL": CERT_URL,
        });
        sign(&mut message);
        message
    }
}

fn record(inner: &Mutex<Inner>, headers: &HeaderMap, uri: &Uri) {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let path = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    inner.lock().unwrap().requests.push((host, path));
}

async fn certificate(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    record(&inner, &headers, &uri);
    if inner.lock().unwrap().fail_certificates {
        return (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure").into_response();
    }
    // Only the certificates SNS has signed with exist; any other name is S3's 404.
    if !CERTIFICATES
        .iter()
        .any(|name| uri.path() == format!("/{name}"))
    {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/xml")],
            "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        SIGNING_CERT,
    )
        .into_response()
}

async fn action(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    record(&inner, &headers, &uri);
    if query.get("Action").map(String::as_str) != Some("ConfirmSubscription") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let token = query.get("Token").cloned().unwrap_or_default();
    let mut inner = inner.lock().unwrap();
    if !inner.tokens.contains(&token) {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/xml")],
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type>\
             <Code>InvalidParameter</Code><Message>Invalid token</Message></Error></ErrorResponse>",
        )
            .into_response();
    }
    inner.confirmed.push(token);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml")],
        "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
         <ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:us-east-1:123456789012:sp-api-orders:1</SubscriptionArn>\
         </ConfirmSubscriptionResult></ConfirmSubscriptionResponse>",
    )
        .into_response()
}

/// Fills in `Signature` as SNS would: the documented fields, in order, `Name\nValue\n`,
/// signed with the test key (SHA1withRSA for version 1, SHA256withRSA for 2).
pub fn sign(message: &mut Value) {
    // Sent now, as SNS stamps a message when it sends it (ingest checks the window).
    message["Timestamp"] = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    let fields: &[&str] = if message["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut text = String::new();
    for field in fields {
        if let Some(value) = message.get(*field).and_then(Value::as_str) {
            text.push_str(&format!("{field}\n{value}\n"));
        }
    }
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(SIGNING_KEY).unwrap();
    let signature = if message["SignatureVersion"] == "1" {
        rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key)
            .sign(text.as_bytes())
            .to_vec()
    } else {
        rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key)
            .sign(text.as_bytes())
            .to_vec()
    };
    message["Signature"] =
        Value::String(base64::engine::general_purpose::STANDARD.encode(signature));
}
