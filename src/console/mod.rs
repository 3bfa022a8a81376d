//! `orderbridge console`: a web page for operators, served by the binary.
//!
//! - **Failures** (`/`): dead letters by class, by source and by day, webhooks refused for
//!   their signature by source, the parked orders, and every dead letter of the window with
//!   its reason; selected ones are replayed after a
//!   confirmation page (`/replay/confirm`, then `/replay`).
//! - **Orders** (`/orders?q=`): an order's trace, by order key, source order id or ERP
//!   reference, as `orderbridge trace` prints it.
//! - **Audit log** (`/audit`): every operator action, sign-ins and replays in the console
//!   included.
//!
//! It reads Kafka and keeps nothing: no database, no session store (sessions are signed
//! cookies, see `auth.rs`), so replicas need no coordination. Every page but `/login`,
//! `/console.css`, `/healthz` and `/readyz` needs a signed-in operator; a POST from another origin is
//! refused.

pub mod auth;
pub mod page;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use orderbridge_runtime::{now_ms, KafkaSettings};
use orderbridge_schemas::{OrderEventCodec, Topics};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::operate::dlq::{self, DeadLetter, Filter, ReplayOptions, Selection};
use crate::operate::{audit, format_ms, trace};
use auth::Operators;
use page::{esc, layout, Here};

/// `[console]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Where to listen. Keep it inside the cluster: the chart does not expose it.
    pub listen: SocketAddr,
    /// The operators who may sign in, each `{ name = "…", password = { env = "…" } }`.
    pub users: Vec<auth::User>,
    /// How long a sign-in lasts, in minutes.
    pub session_minutes: u64,
    /// The server's key for session cookies (`{ env = "…" }`): with it, a cookie reveals
    /// nothing about a password, and every replica honours the others' sessions. Without
    /// it a random key is made at start: sessions end when the console restarts and hold on
    /// one replica only.
    pub session_key: Option<orderbridge_runtime::Secret>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 9095)),
            users: Vec::new(),
            session_minutes: 8 * 60,
            session_key: None,
        }
    }
}

/// What every request shares.
pub struct Console {
    kafka: KafkaSettings,
    topics: Topics,
    codec: Option<Arc<OrderEventCodec>>,
    operators: Operators,
    auditor: audit::Auditor,
    /// Failed sign-ins per operator name, to slow down guessing (see [`Throttle`]).
    throttle: std::sync::Mutex<Throttle>,
    /// The dead-letter topic's retention: how far back earlier replays matter.
    dlq_retention_ms: i64,
}

/// After [`Throttle::LIMIT`] failed sign-ins for one name within [`Throttle::WINDOW`], that
/// name is refused without a check until the window has passed: an online guesser gets a
/// handful of tries per quarter hour, and the audit log a handful of records. Kept in memory
/// (each replica counts its own), which is enough to bound guessing; it is not state any
/// page depends on.
#[derive(Debug, Default)]
struct Throttle {
    failures: std::collections::HashMap<String, (u32, std::time::Instant)>,
}

impl Throttle {
    const LIMIT: u32 = 5;
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

    /// Seconds until `name` may try again, if it may not now.
    fn locked(&mut self, name: &str) -> Option<u64> {
        let now = std::time::Instant::now();
        self.failures
            .retain(|_, (_, since)| now.duration_since(*since) < Self::WINDOW);
        let (count, since) = self.failures.get(name)?;
        (*count >= Self::LIMIT)
            .then(|| (Self::WINDOW - now.duration_since(*since)).as_secs().max(1))
    }

    fn failed(&mut self, name: &str) {
        // Bounded: names typed by strangers are not kept beyond a few thousand.
        if self.failures.len() >= 10_000 && !self.failures.contains_key(name) {
            return;
        }
        let entry = self
            .failures
            .entry(name.to_owned())
            .or_insert((0, std::time::Instant::now()));
        entry.0 += 1;
    }

    fn succeeded(&mut self, name: &str) {
        self.failures.remove(name);
    }
}

/// Serves the console on `config.listen` until `shutdown`.
///
/// # Errors
/// When the operators are not configured well or the address cannot be bound.
pub async fn run(
    config: &ConsoleConfig,
    kafka: &KafkaSettings,
    topics: &Topics,
    dlq_retention_ms: i64,
    codec: Option<Arc<OrderEventCodec>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let key = match &config.session_key {
        Some(key) => key.expose().as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "no console.session_key: sessions end when this console restarts and hold on \
                 this replica only"
            );
            rand::random::<[u8; 32]>().to_vec()
        }
    };
    let operators = Operators::new(config.users.clone(), config.session_minutes, &key)
        .map_err(anyhow::Error::msg)?;
    let console = Arc::new(Console {
        kafka: kafka.clone(),
        topics: topics.clone(),
        codec,
        operators,
        auditor: audit::Auditor::new(kafka, &topics.audit)?,
        throttle: std::sync::Mutex::new(Throttle::default()),
        dlq_retention_ms,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "console listening");
    axum::serve(listener, router(console))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// The console's routes.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(failures))
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout))
        .route("/orders", get(orders))
        .route("/audit", get(audit_log))
        .route("/replay/confirm", post(confirm_replay))
        .route("/replay", post(replay))
        .route("/console.css", get(css))
        .route("/healthz", get(|| async { "ok" }))
        // Nothing to wait for: each page reads Kafka when it is asked for.
        .route("/readyz", get(|| async { "ready" }))
        .with_state(console)
}

/// An HTML answer with the headers every page carries.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn redirect(to: &'static str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    response
}

fn error_page(user: &str, error: &anyhow::Error) -> Response {
    html(
        StatusCode::BAD_GATEWAY,
        layout(
            "Error",
            Here::None,
            Some(user),
            &format!(
                "<h1>Kafka could not answer</h1><p class=\"error\">{}</p>",
                esc(&format!("{error:#}"))
            ),
        ),
    )
}

/// The signed-in operator, if the request carries a valid session.
fn operator(console: &Console, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let session = auth::cookie(cookies, auth::COOKIE)?;
    console.operators.verify(session, now_ms() / 1000)
}

/// Whether a POST comes from a page of this console (its `Origin`, when sent, is this host).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// The fields of a form body, repeated ones in order.
fn form(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

async fn css() -> Response {
    let mut response = page::CSS.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    response
}

async fn login_page() -> Response {
    html(StatusCode::OK, page::login(None))
}

async fn login(State(console): State<Arc<Console>>, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            page::login(Some("refused: another origin")),
        );
    }
    let fields = form(&body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let (name, password) = (field("username"), field("password"));
    // Names in the audit log stay short and plain, whatever was typed.
    let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    let locked = console
        .throttle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .locked(&shown);
    if let Some(wait) = locked {
        return html(
            StatusCode::TOO_MANY_REQUESTS,
            page::login(Some(&format!(
                "Too many failed sign-ins for this operator; try again in {} minute(s).",
                wait.div_ceil(60)
            ))),
        );
    }
    let accepted = console.operators.check(name, password);
    {
        let mut throttle = console
            .throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if accepted {
            throttle.succeeded(&shown);
        } else {
            throttle.failed(&shown);
        }
    }
    let result = if accepted { "ok" } else { "refused" };
    if let Err(err) = console
        .auditor
        .append(
            &shown,
            "console-sign-in",
            serde_json::json!({}),
            result,
            serde_json::json!({}),
        )
        .await
    {
        tracing::warn!(error = %err, "console sign-in not audited");
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            page::login(Some("the audit log cannot be written; try again")),
        );
    }
    if !accepted {
        tracing::warn!(user = %shown, "console sign-in refused");
        return html(
            StatusCode::UNAUTHORIZED,
            page::login(Some("Wrong operator name or password.")),
        );
    }
    let Some(session) = console.operators.session(name, now_ms() / 1000) else {
        return html(
            StatusCode::UNAUTHORIZED,
            page::login(Some("Unknown operator.")),
        );
    };
    let mut response = redirect("/");
    let cookie = format!(
        "{}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        auth::COOKIE,
        console.operators.session_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout() -> Response {
    let mut response = redirect("/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("ob_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

#[derive(Debug, Deserialize)]
struct Window {
    since: Option<String>,
}

async fn failures(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(window): Query<Window>,
) -> Response {
    let Some(user) = operator(&console, &headers) else {
        return redirect("/login");
    };
    let since = window.since.unwrap_or_else(|| "7d".to_owned());
    match failures_page(&console, &since).await {
        Ok(body) => html(
            StatusCode::OK,
            layout("Failures", Here::Failures, Some(&user), &body),
        ),
        Err(err) => error_page(&user, &err),
    }
}

fn counts_table(title: &str, unit: &str, counts: &BTreeMap<String, usize>, id: &str) -> String {
    let max = counts.values().copied().max().unwrap_or(1).max(1);
    let rows: String = counts
        .iter()
        .map(|(name, n)| {
            format!(
                "<tr><td>{}</td><td class=\"num\">{n}</td><td><meter min=\"0\" max=\"{max}\" value=\"{n}\"></meter></td></tr>",
                esc(name)
            )
        })
        .collect();
    format!(
        "<div class=\"card\"><h2>{title}</h2><table id=\"{id}\"><tr><th>{title}</th><th class=\"num\">{unit}</th><th></th></tr>{rows}</table></div>"
    )
}

async fn failures_page(console: &Console, since: &str) -> anyhow::Result<String> {
    let filter = Filter {
        since: Some(since.to_owned()),
        ..Filter::default()
    };
    let found = dlq::select(
        &console.kafka,
        &console.topics.dlq,
        &Selection::new(&filter, &[])?,
    )
    .await?;
    let replayed = {
        let (k, t) = (console.kafka.clone(), console.topics.clone());
        let since = dlq::lookback(console.dlq_retention_ms);
        tokio::task::spawn_blocking(move || dlq::replayed_before(&k, &t, since)).await??
    };
    let (mut by_class, mut by_source, mut by_day) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for dead in &found {
        *by_class.entry(dead.class.clone()).or_insert(0) += 1;
        *by_source.entry(dead.source.clone()).or_insert(0) += 1;
        let day = format_ms(dead.dead_lettered_at)
            .get(..10)
            .unwrap_or_default()
            .to_owned();
        *by_day.entry(day).or_insert(0) += 1;
    }
    let signatures = {
        let (k, t) = (console.kafka.clone(), console.topics.status.clone());
        let since_ms = crate::operate::when::parse_time(since, now_ms())?;
        tokio::task::spawn_blocking(move || signature_failures(&k, &t, since_ms)).await??
    };
    let waiting = found.iter().filter(|d| !replayed.contains(&d.at)).count();
    let parked: Vec<&DeadLetter> = found
        .iter()
        .filter(|d| d.class == "parked" && !replayed.contains(&d.at))
        .collect();
    let mut body = format!(
        "<h1>Failures</h1><form method=\"get\" action=\"/\">Window: <input type=\"text\" class=\"short\" name=\"since\" value=\"{}\"> <button>Show</button> <span class=\"muted\">(7d, 24h, or a time such as 2026-12-01T00:00:00Z)</span></form>\
         <div class=\"cards\"><div class=\"card\"><div class=\"muted\">dead letters</div><div class=\"big\" id=\"dead-letter-count\">{}</div></div>\
         <div class=\"card\"><div class=\"muted\">not replayed yet</div><div class=\"big\" id=\"waiting-count\">{waiting}</div></div>\
         <div class=\"card\"><div class=\"muted\">parked orders</div><div class=\"big\" id=\"parked-count\">{}</div></div></div>\
         <div class=\"cards\">{}{}{}{}</div>",
        esc(since),
        found.len(),
        parked.len(),
        counts_table("class", "dead letters", &by_class, "by-class"),
        counts_table("source", "dead letters", &by_source, "by-source"),
        counts_table("day", "dead letters", &by_day, "by-day"),
        signatures_table(&signatures),
    );
    if !parked.is_empty() {
        body.push_str("<h2>Parked orders</h2><p class=\"muted\">Records that kept failing while the ERP was otherwise healthy; replay them once the cause is gone.</p><ul id=\"parked\">");
        for dead in &parked {
            body.push_str(&format!(
                "<li><a class=\"mono\" href=\"/orders?q={}\">{}</a> <span class=\"muted\">{}</span></li>",
                esc(&url::form_urlencoded::byte_serialize(dead.key.as_bytes()).collect::<String>()),
                esc(&dead.key),
                esc(&dead.reason)
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Dead letters</h2>");
    if found.is_empty() {
        body.push_str(
            "<p class=\"muted\" id=\"no-dead-letters\">No dead letters in this window.</p>",
        );
        return Ok(body);
    }
    body.push_str(
        "<form method=\"post\" action=\"/replay/confirm\"><table id=\"dead-letters\"><tr><th></th><th>at</th><th>dead-lettered</th><th>stage</th><th>class</th><th>source</th><th>order</th><th>reason</th></tr>",
    );
    for dead in found.iter().rev() {
        let done = replayed.contains(&dead.at);
        let pick = if done {
            "<span class=\"muted\">replayed</span>".to_owned()
        } else {
            format!(
                "<input type=\"checkbox\" name=\"record\" value=\"{0}\" id=\"pick-{0}\">",
                esc(&dead.at)
            )
        };
        body.push_str(&format!(
            "<tr data-at=\"{at}\"><td>{pick}</td><td class=\"mono\">{at}</td><td>{when}</td><td>{stage}</td><td>{class}</td><td>{source}</td><td class=\"mono\"><a href=\"/orders?q={key_q}\">{key}</a></td><td class=\"reason\">{reason}</td></tr>",
            at = esc(&dead.at),
            when = esc(&format_ms(dead.dead_lettered_at)),
            stage = esc(&dead.stage),
            class = esc(&dead.class),
            source = esc(&dead.source),
            key_q = esc(&url::form_urlencoded::byte_serialize(dead.key.as_bytes()).collect::<String>()),
            key = esc(&dead.key),
            reason = esc(&dead.reason),
        ));
    }
    body.push_str("</table><p><button type=\"submit\" id=\"replay-selected\">Replay selected…</button></p></form>");
    Ok(body)
}

/// Webhooks ingest refused for their signature since `since_ms`, by source and reason, from
/// the status topic (each source's refusals are in the partition of its key). Compaction
/// keeps only each source's newest in closed segments, so an old window can count short:
/// `orderbridge_ingest_signature_failures_total` in Prometheus is the exact count.
fn signature_failures(
    kafka: &KafkaSettings,
    topic: &str,
    since_ms: i64,
) -> anyhow::Result<BTreeMap<String, usize>> {
    use orderbridge_schemas::status::{StatusRecord, SIGNATURE_KEY_PREFIX};
    use rdkafka::Message;
    let count = crate::operate::read::partition_count(kafka, topic)?;
    let partitions: std::collections::BTreeSet<i32> = orderbridge_schemas::Source::ALL
        .iter()
        .map(|source| {
            let key = format!("{SIGNATURE_KEY_PREFIX}{source}");
            orderbridge_runtime::partition_for(key.as_bytes(), count)
        })
        .collect();
    let mut counts = BTreeMap::new();
    crate::operate::read::read(
        kafka,
        topic,
        &crate::operate::read::Partitions::These(partitions.into_iter().collect()),
        Some(since_ms),
        |message| {
            let Some(source) = message
                .key()
                .and_then(|k| std::str::from_utf8(k).ok())
                .and_then(|k| k.strip_prefix(SIGNATURE_KEY_PREFIX))
            else {
                return true;
            };
            if let Ok(record) =
                serde_json::from_slice::<StatusRecord>(message.payload().unwrap_or_default())
            {
                if record.at >= since_ms {
                    let reason = record.reason.unwrap_or_default();
                    let n = usize::try_from(record.count.unwrap_or(1)).unwrap_or(usize::MAX);
                    let total = counts
                        .entry(format!("{source} ({reason})"))
                        .or_insert(0usize);
                    *total = total.saturating_add(n);
                }
            }
            true
        },
    )?;
    Ok(counts)
}

fn signatures_table(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "<div class=\"card\"><h2>signature failures</h2><p class=\"muted\" id=\"signature-failures\">none</p></div>".to_owned();
    }
    counts_table(
        "signature failures",
        "refused",
        counts,
        "signature-failures",
    )
}

/// The dead letters named in a form's `record` fields.
async fn chosen(console: &Console, records: &[String]) -> anyhow::Result<Vec<DeadLetter>> {
    dlq::select(
        &console.kafka,
        &console.topics.dlq,
        &Selection::new(&Filter::default(), records)?,
    )
    .await
}

async fn confirm_replay(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(user) = operator(&console, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if !same_origin(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let records: Vec<String> = form(&body)
        .into_iter()
        .filter(|(k, _)| k == "record")
        .map(|(_, v)| v)
        .collect();
    if records.is_empty() {
        return html(
            StatusCode::OK,
            layout(
                "Replay",
                Here::Failures,
                Some(&user),
                "<h1>Replay</h1><p>Nothing was selected. <a href=\"/\">Back</a></p>",
            ),
        );
    }
    let found = match chosen(&console, &records).await {
        Ok(found) => found,
        Err(err) => return error_page(&user, &err),
    };
    let mut page = format!(
        "<h1>Replay {} dead letter(s)?</h1><p>Each goes back to the topic it came from, marked <code>ob-origin: replay</code>. An order the ERP already holds stays as it is; one whose cause is not fixed is dead-lettered again.</p>\
         <table id=\"to-replay\"><tr><th>at</th><th>class</th><th>order</th><th>back to</th><th>reason</th></tr>",
        found.len()
    );
    let mut hidden = String::new();
    for dead in &found {
        page.push_str(&format!(
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"reason\">{}</td></tr>",
            esc(&dead.at),
            esc(&dead.class),
            esc(&dead.key),
            esc(&dead.original_topic),
            esc(&dead.reason)
        ));
        hidden.push_str(&format!(
            "<input type=\"hidden\" name=\"record\" value=\"{}\">",
            esc(&dead.at)
        ));
    }
    page.push_str(&format!(
        "</table><form method=\"post\" action=\"/replay\">{hidden}<p><button type=\"submit\" class=\"danger\" id=\"confirm-replay\">Replay {} dead letter(s)</button> <a href=\"/\">Cancel</a></p></form>",
        found.len()
    ));
    html(
        StatusCode::OK,
        layout("Replay", Here::Failures, Some(&user), &page),
    )
}

/// Progress of a replay started from the console: nobody watches a terminal.
struct Unreported;

impl orderbridge_providers::progress::Report for Unreported {
    fn begin(&mut self, _: Option<u64>, _: u64) {}
    fn advance(&mut self, _: u64, _: Option<u64>) {}
    fn waiting(&mut self, _: &str) {}
    fn end(&mut self, _: &str) {}
}

async fn replay(State(console): State<Arc<Console>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(user) = operator(&console, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if !same_origin(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let records: Vec<String> = form(&body)
        .into_iter()
        .filter(|(k, _)| k == "record")
        .map(|(_, v)| v)
        .collect();
    let unique: HashSet<&String> = records.iter().collect();
    if records.is_empty() || unique.len() != records.len() {
        return redirect("/");
    }
    let selection = match Selection::new(&Filter::default(), &records) {
        Ok(selection) => selection,
        Err(err) => return error_page(&user, &err),
    };
    let options = ReplayOptions {
        dry_run: false,
        again: false,
        actor: user.clone(),
        arguments: serde_json::json!({ "records": records, "from": "console" }),
        lookback_since: dlq::lookback(console.dlq_retention_ms),
    };
    let outcome = match dlq::replay(
        &console.kafka,
        &console.topics,
        &selection,
        &options,
        &console.auditor,
        &mut Unreported,
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(err) => return error_page(&user, &err),
    };
    let mut page = format!(
        "<h1>Replay</h1><p class=\"ok\" id=\"replay-result\">Replayed {} dead letter(s).</p>",
        outcome.replayed.len()
    );
    if !outcome.skipped.is_empty() {
        page.push_str(&format!(
            "<p class=\"muted\">Replayed before, so not again: {}</p>",
            esc(&outcome.skipped.join(", "))
        ));
    }
    if let Some(error) = &outcome.error {
        page.push_str(&format!(
            "<p class=\"error\">The replay stopped: {}</p>",
            esc(error)
        ));
    }
    page.push_str("<p><a href=\"/\">Back to the failures</a></p>");
    html(
        StatusCode::OK,
        layout("Replay", Here::Failures, Some(&user), &page),
    )
}

#[derive(Debug, Deserialize)]
struct Search {
    q: Option<String>,
}

async fn orders(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Response {
    let Some(user) = operator(&console, &headers) else {
        return redirect("/login");
    };
    let q = search.q.unwrap_or_default();
    let mut body = format!(
        "<h1>Orders</h1><form method=\"get\" action=\"/orders\"><input type=\"search\" name=\"q\" id=\"order-query\" value=\"{}\" placeholder=\"order key, order id or ERP reference\"> <button id=\"find-order\">Find</button></form>",
        esc(&q)
    );
    if !q.trim().is_empty() {
        match orders_page(&console, q.trim()).await {
            Ok(found) => body.push_str(&found),
            Err(err) => return error_page(&user, &err),
        }
    }
    html(
        StatusCode::OK,
        layout("Orders", Here::Orders, Some(&user), &body),
    )
}

async fn orders_page(console: &Console, q: &str) -> anyhow::Result<String> {
    let keys = {
        let (k, t, q) = (console.kafka.clone(), console.topics.clone(), q.to_owned());
        tokio::task::spawn_blocking(move || trace::resolve(&k, &t, &q, None)).await??
    };
    if keys.is_empty() {
        return Ok(format!(
            "<p class=\"muted\" id=\"no-order\">No order {} in the status or raw topics.</p>",
            esc(q)
        ));
    }
    let mut body = String::new();
    for key in keys {
        let found = trace::trace(
            &console.kafka,
            &console.topics,
            &key,
            None,
            console.codec.as_deref(),
        )
        .await?;
        body.push_str(&format!(
            "<h2 class=\"mono\">{}</h2><p>ERP reference <code>{}</code></p><p id=\"order-now\"><b>Now:</b> {}</p>\
             <table class=\"trace\"><tr><th>when</th><th>topic</th><th>record</th><th>what happened</th></tr>",
            esc(&found.order_key),
            esc(&found.erp_reference),
            esc(found.now.as_deref().unwrap_or("no status recorded"))
        ));
        for step in &found.steps {
            body.push_str(&format!(
                "<tr><td>{when}</td><td><span class=\"tag {topic}\">{topic}</span></td><td class=\"mono\">{record}</td><td>{what}</td></tr>",
                when = esc(&format_ms(step.at)),
                topic = esc(step.topic),
                record = esc(&step.record),
                what = esc(&step.what)
            ));
        }
        body.push_str("</table>");
    }
    Ok(body)
}

async fn audit_log(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let Some(user) = operator(&console, &headers) else {
        return redirect("/login");
    };
    let records = {
        let (k, t) = (console.kafka.clone(), console.topics.audit.clone());
        match tokio::task::spawn_blocking(move || audit::records(&k, &t, None)).await {
            Ok(Ok(records)) => records,
            Ok(Err(err)) => return error_page(&user, &err),
            Err(err) => return error_page(&user, &anyhow::Error::new(err)),
        }
    };
    let mut body = format!(
        "<h1>Audit log</h1><p class=\"muted\">{} action(s), newest first.</p><table id=\"audit\"><tr><th>when</th><th>who</th><th>action</th><th>result</th><th>arguments</th><th>detail</th></tr>",
        records.len()
    );
    for record in records.iter().rev().take(500) {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono reason\">{}</td></tr>",
            esc(&format_ms(record.at)),
            esc(&record.actor),
            esc(&record.action),
            esc(&record.result),
            esc(&record.arguments.to_string()),
            esc(&record.detail.to_string())
        ));
    }
    body.push_str("</table>");
    html(
        StatusCode::OK,
        layout("Audit log", Here::Audit, Some(&user), &body),
    )
}
