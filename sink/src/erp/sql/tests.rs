#![allow(clippy::unwrap_used)]

use super::stage::Staging;
use super::*;
use chrono::{TimeZone, Utc};
use orderbridge_schemas::*;
use rust_decimal::Decimal;
use sqlx::SqlitePool;

pub(crate) fn event(version: i64, total: &str, lines: usize) -> OrderEvent {
    let money = |s: &str| Decimal::from_str(s).unwrap();
    OrderEvent {
        order_key: "shopify:shop.myshopify.com:1001".into(),
        source: "shopify".into(),
        account: "shop.myshopify.com".into(),
        source_order_id: "1001".into(),
        order_number: Some("#1001".into()),
        event_type: EventType::Created,
        status: OrderStatus::Open,
        payment_status: PaymentStatus::Paid,
        version,
        currency: "USD".into(),
        totals: Totals {
            total: money(total),
            subtotal: money(total),
            tax: money("0"),
            shipping: money("0"),
            discount: money("0"),
        },
        line_items: (0..lines)
            .map(|i| LineItem {
                line_id: Some(i.to_string()),
                sku: Some(format!("SKU-{i}")),
                title: "Thing".into(),
                quantity: 1,
                unit_price: money("1.50"),
                discount: money("0"),
                tax: money("0"),
            })
            .collect(),
        customer: None,
        shipping_address: None,
        billing_address: None,
        source_created_at: None,
        source_updated_at: None,
        attribution: None,
        lineage: Lineage {
            raw_topic: "orders.raw.v1".into(),
            raw_partition: 0,
            raw_offset: version,
            event_id: format!("e{version}"),
            received_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
            origin: "webhook".into(),
        },
        partial: false,
        source_created_at_original: None,
        source_updated_at_original: None,
        shipment: None,
        refund: None,
    }
}

async fn erp() -> (SqlErp, SqlitePool, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("staging.db").display());
    let erp = SqlErp::connect(&SqlConfig { url: url.clone() })
        .await
        .unwrap();
    // A reader of the staging tables, as an ERP import would be.
    let pool = SqlitePool::connect(&url).await.unwrap();
    (erp, pool, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_upserts_of_different_orders_all_succeed() {
    // The sink runs up to 16 upserts at once. Each reads what the database holds, then
    // writes; on SQLite, two transactions that both read before either writes cannot both
    // go on, and one of them failed at once ("database is locked") without waiting.
    let (erp, pool, _dir) = erp().await;
    let erp = std::sync::Arc::new(erp);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16 {
        let erp = std::sync::Arc::clone(&erp);
        tasks.spawn(async move {
            let mut failures = Vec::new();
            for n in 0..25 {
                let mut order = event(1, "10.00", 2);
                order.order_key = format!("shopify:shop.myshopify.com:{task}-{n}");
                if let Err(err) = erp.upsert(&order).await {
                    failures.push(err.to_string());
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        failures.extend(done.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} of 400 upserts failed: {:?}",
        failures.len(),
        failures.first()
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 400);
}

#[tokio::test]
async fn creates_once_and_treats_a_redelivery_as_present() {
    let (erp, pool, _dir) = erp().await;
    assert_eq!(
        erp.upsert(&event(1, "10.00", 2)).await.unwrap(),
        Upserted::Created
    );
    assert_eq!(
        erp.upsert(&event(1, "10.00", 2)).await.unwrap(),
        Upserted::AlreadyPresent
    );
    let (orders, lines): (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM order_lines)")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((orders, lines), (1, 2));
    let total: String = sqlx::query_scalar("SELECT total FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, "10.00", "money is stored exactly, as text");
}

#[tokio::test]
async fn a_newer_version_replaces_lines_and_an_older_one_is_refused() {
    let (erp, pool, _dir) = erp().await;
    erp.upsert(&event(5, "10.00", 3)).await.unwrap();
    assert_eq!(
        erp.upsert(&event(7, "12.00", 1)).await.unwrap(),
        Upserted::Updated
    );
    assert_eq!(
        erp.upsert(&event(6, "11.00", 2)).await.unwrap(),
        Upserted::Stale
    );
    let (version, total): (i64, String) = sqlx::query_as("SELECT version, total FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((version, total.as_str()), (7, "12.00"));
    let lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_lines")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(lines, 1);
}

#[tokio::test]
async fn a_partial_event_updates_statuses_only_and_waits_for_the_order() {
    let (erp, pool, _dir) = erp().await;
    let mut status = event(3, "0", 0);
    status.partial = true;
    status.currency = "XXX".into();
    status.event_type = orderbridge_schemas::EventType::Cancelled;
    status.status = orderbridge_schemas::OrderStatus::Cancelled;
    status.payment_status = orderbridge_schemas::PaymentStatus::Unknown;
    assert_eq!(erp.upsert(&status).await.unwrap(), Upserted::NotHeld);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "no row of zero totals");

    erp.upsert(&event(2, "10.00", 2)).await.unwrap();
    assert_eq!(erp.upsert(&status).await.unwrap(), Upserted::Updated);
    let row: (String, String, String, i64, String) =
        sqlx::query_as("SELECT status, payment_status, currency, version, total FROM orders")
            .fetch_one(&pool)
            .await
            .unwrap();
    let before = event(2, "10.00", 2);
    assert_eq!(
        row,
        (
            "CANCELLED".to_owned(),
            before.payment_status.as_str().to_owned(),
            before.currency.clone(),
            3,
            "10.00".to_owned()
        ),
        "status applied; UNKNOWN payment kept; currency and totals untouched"
    );
    let lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_lines")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(lines, 2);
    assert_eq!(erp.upsert(&status).await.unwrap(), Upserted::AlreadyPresent);
    let mut older = status.clone();
    older.version = 1;
    assert_eq!(erp.upsert(&older).await.unwrap(), Upserted::Stale);
}

#[tokio::test]
async fn refuses_an_unknown_url_scheme() {
    let err = SqlErp::connect(&SqlConfig {
        url: "mysql://x".into(),
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("sqlite:"), "{err}");
}

#[tokio::test]
async fn refuses_an_in_memory_database_with_a_clear_error() {
    // The writer has a connection of its own; an in-memory database is one per connection,
    // so it would write where the tables are not, and every upsert would fail for ever.
    for url in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://staging?mode=memory",
    ] {
        let err = SqlErp::connect(&SqlConfig { url: url.into() })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("in-memory"), "{url}: {err}");
    }
}

fn touch(channel: &str, campaign: Option<&str>, share: Option<f64>) -> Touchpoint {
    Touchpoint {
        channel: channel.into(),
        campaign: campaign.map(str::to_owned),
        source: Some("google".into()),
        medium: Some("cpc".into()),
        occurred_at: Some(Utc.timestamp_millis_opt(1_745_139_600_000).unwrap()),
        credit_share: share,
    }
}

fn attribution(first: &str, last: &str, shares: &[f64]) -> Attribution {
    Attribution {
        first_touch: Some(touch(first, Some("spring"), None)),
        last_touch: Some(touch(last, None, None)),
        touchpoints: shares
            .iter()
            .enumerate()
            .map(|(i, share)| touch(&format!("channel-{i}"), None, Some(*share)))
            .collect(),
    }
}

/// The partial event the processor emits when attribution arrives for an order it already
/// emitted: keys, version, lineage and the attribution; nothing else means anything.
fn late_attribution(version: i64, attribution: Attribution) -> OrderEvent {
    let mut late = event(version, "0", 0);
    late.partial = true;
    late.event_type = EventType::Updated;
    late.status = OrderStatus::Unknown;
    late.payment_status = PaymentStatus::Unknown;
    late.currency = "XXX".into();
    late.order_number = None;
    late.lineage.raw_topic = "orders.attribution.v1".into();
    late.lineage.origin = "attribution".into();
    late.attribution = Some(attribution);
    late
}

/// (first channel, first campaign, first source, last channel, last campaign)
type Touches = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const SELECT_TOUCHES: &str = "SELECT first_touch_channel, first_touch_campaign,
    first_touch_source, last_touch_channel, last_touch_campaign FROM orders";
const SELECT_TOUCHPOINTS: &str = "SELECT CAST(position AS BIGINT), channel, occurred_at,
    credit_share FROM order_touchpoints ORDER BY position";

async fn touches(pool: &SqlitePool) -> Touches {
    sqlx::query_as(SELECT_TOUCHES)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn touchpoints(pool: &SqlitePool) -> Vec<(i64, String, Option<String>, Option<f64>)> {
    sqlx::query_as(SELECT_TOUCHPOINTS)
        .fetch_all(pool)
        .await
        .unwrap()
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

#[tokio::test]
async fn attribution_is_staged_and_a_late_one_replaces_it_in_place() {
    let (erp, pool, _dir) = erp().await;
    let mut order = event(2, "10.00", 2);
    order.attribution = Some(attribution("paid_search", "email", &[0.6, 0.4]));
    assert_eq!(erp.upsert(&order).await.unwrap(), Upserted::Created);
    assert_eq!(
        touches(&pool).await,
        (
            some("paid_search"),
            some("spring"),
            some("google"),
            some("email"),
            None
        )
    );
    let at = some("2025-04-20T09:00:00+00:00");
    assert_eq!(
        touchpoints(&pool).await,
        vec![
            (1, "channel-0".to_owned(), at.clone(), Some(0.6)),
            (2, "channel-1".to_owned(), at.clone(), Some(0.4)),
        ],
        "each touchpoint with its share, exactly as the event's double"
    );

    // Attribution arrives later: the processor emits a partial event at a higher version.
    let mut replaced = attribution("referral", "paid_search", &[0.25, 0.25, 0.5]);
    replaced.first_touch = None;
    replaced.touchpoints[2].credit_share = Some(f64::NAN);
    let late = late_attribution(3, replaced);
    assert_eq!(erp.upsert(&late).await.unwrap(), Upserted::Updated);
    assert_eq!(
        touches(&pool).await,
        (None, None, None, some("paid_search"), None),
        "the touch the platform no longer names is cleared"
    );
    let staged = touchpoints(&pool).await;
    assert_eq!(staged.len(), 3, "the list replaced, not appended to");
    assert_eq!(staged[2].3, None, "a share that is not a number is unknown");
    let row: (String, String, String, String, i64, String, String) = sqlx::query_as(
        "SELECT status, payment_status, currency, total, version, raw_topic, order_number
         FROM orders",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "OPEN".to_owned(),
            "PAID".to_owned(),
            "USD".to_owned(),
            "10.00".to_owned(),
            3,
            "orders.attribution.v1".to_owned(),
            "#1001".to_owned()
        ),
        "statuses, currency, totals and number untouched; version and lineage are the event's"
    );
    let lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_lines")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(lines, 2);

    // The version guard holds for attribution too.
    assert_eq!(erp.upsert(&late).await.unwrap(), Upserted::AlreadyPresent);
    let older = late_attribution(1, attribution("display", "display", &[1.0]));
    assert_eq!(erp.upsert(&older).await.unwrap(), Upserted::Stale);
    assert_eq!(touches(&pool).await.3, some("paid_search"));
    assert_eq!(touchpoints(&pool).await.len(), 3);
}

#[tokio::test]
async fn an_event_without_attribution_keeps_what_is_staged() {
    let (erp, pool, _dir) = erp().await;
    let mut order = event(2, "10.00", 1);
    order.attribution = Some(attribution("paid_search", "email", &[0.5, 0.5]));
    erp.upsert(&order).await.unwrap();
    // A later change of the order, from a replay past the processor's attribution window.
    assert_eq!(
        erp.upsert(&event(4, "12.00", 1)).await.unwrap(),
        Upserted::Updated
    );
    let mut status = event(5, "0", 0);
    status.partial = true;
    status.status = OrderStatus::Fulfilled;
    assert_eq!(erp.upsert(&status).await.unwrap(), Upserted::Updated);
    assert_eq!(touches(&pool).await.0, some("paid_search"));
    assert_eq!(touchpoints(&pool).await.len(), 2);
    let (total, status): (String, String) = sqlx::query_as("SELECT total, status FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((total.as_str(), status.as_str()), ("12.00", "FULFILLED"));
}

/// `orders` as the release before attribution created it.
const PREVIOUS_ORDERS: &str = "CREATE TABLE orders (
    order_key TEXT PRIMARY KEY, source TEXT NOT NULL, account TEXT NOT NULL,
    source_order_id TEXT NOT NULL, order_number TEXT, event_type TEXT NOT NULL,
    status TEXT NOT NULL, payment_status TEXT NOT NULL, version BIGINT NOT NULL,
    currency TEXT NOT NULL, total TEXT NOT NULL, subtotal TEXT NOT NULL, tax TEXT NOT NULL,
    shipping TEXT NOT NULL, discount TEXT NOT NULL, customer_id TEXT, customer_email TEXT,
    customer_name TEXT, ship_to_name TEXT, ship_to_line1 TEXT, ship_to_city TEXT,
    ship_to_postal_code TEXT, ship_to_country_code TEXT, source_created_at TEXT,
    source_updated_at TEXT, raw_topic TEXT NOT NULL, raw_partition INTEGER NOT NULL,
    raw_offset BIGINT NOT NULL, event_id TEXT NOT NULL, received_at TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

#[tokio::test]
async fn a_database_of_the_previous_release_is_upgraded_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("staging.db").display());
    {
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let old = SqlitePool::connect_with(options).await.unwrap();
        sqlx::query(PREVIOUS_ORDERS).execute(&old).await.unwrap();
        sqlx::query(schema::CREATE_LINES)
            .execute(&old)
            .await
            .unwrap();
        old.close().await;
        let connection = rusqlite::Connection::open(dir.path().join("staging.db")).unwrap();
        let row = stage::order_params(&event(2, "10.00", 1), "then".into());
        stage::Lite(&connection)
            .execute(UPSERT_ORDER, row)
            .await
            .unwrap();
    }
    let erp = SqlErp::connect(&SqlConfig { url: url.clone() })
        .await
        .unwrap();
    let pool = SqlitePool::connect(&url).await.unwrap();
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('orders')")
        .fetch_all(&pool)
        .await
        .unwrap();
    for (added, _) in schema::ORDERS_ADDED {
        assert!(columns.iter().any(|c| c == added), "{added}: {columns:?}");
    }
    assert_eq!(
        touches(&pool).await,
        (None, None, None, None, None),
        "the old row is kept, with no attribution known"
    );
    let (total, applied_at): (String, String) =
        sqlx::query_as("SELECT total, applied_at FROM orders")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((total.as_str(), applied_at.as_str()), ("10.00", "then"));
    // The upgraded table takes a late attribution for the order it already held.
    let late = late_attribution(3, attribution("paid_search", "email", &[1.0]));
    assert_eq!(erp.upsert(&late).await.unwrap(), Upserted::Updated);
    assert_eq!(touches(&pool).await.0, some("paid_search"));
    assert_eq!(touchpoints(&pool).await.len(), 1);
    // Connecting again (a restart) finds nothing to add.
    drop(erp);
    SqlErp::connect(&SqlConfig { url }).await.unwrap();
}

/// The same upgrade and attribution against PostgreSQL, when `ORDERBRIDGE_TEST_POSTGRES`
/// names a server (`postgres://user@host/db` of a user that may create databases); the test
/// makes a database of its own and drops it. Without the variable it checks nothing.
#[tokio::test]
async fn postgres_staging_is_upgraded_and_takes_attribution() {
    let Ok(admin_url) = std::env::var("ORDERBRIDGE_TEST_POSTGRES") else {
        return;
    };
    let admin = PgPool::connect(&admin_url).await.unwrap();
    let name = format!(
        "ob_staging_{}_{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let mut url = reqwest::Url::parse(&admin_url).unwrap();
    url.set_path(&name);
    let url = url.to_string();
    {
        let old = PgPool::connect(&url).await.unwrap();
        sqlx::query(PREVIOUS_ORDERS).execute(&old).await.unwrap();
        sqlx::query(schema::CREATE_LINES)
            .execute(&old)
            .await
            .unwrap();
        let mut connection = old.acquire().await.unwrap();
        let row = stage::order_params(&event(2, "10.00", 1), "then".into());
        stage::Pg(&mut connection)
            .execute(UPSERT_ORDER, row)
            .await
            .unwrap();
        drop(connection);
        old.close().await;
    }
    let erp = SqlErp::connect(&SqlConfig { url: url.clone() })
        .await
        .unwrap();
    let pool = PgPool::connect(&url).await.unwrap();
    let mut order = event(2, "10.00", 1);
    order.order_key = "shopify:shop.myshopify.com:1002".into();
    order.attribution = Some(attribution("paid_search", "email", &[0.6, 0.4]));
    assert_eq!(erp.upsert(&order).await.unwrap(), Upserted::Created);
    let late = late_attribution(3, attribution("referral", "email", &[1.0 / 3.0]));
    assert_eq!(erp.upsert(&late).await.unwrap(), Upserted::Updated);
    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT order_key, first_touch_channel, total FROM orders ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            (late.order_key.clone(), some("referral"), "10.00".to_owned()),
            (
                order.order_key.clone(),
                some("paid_search"),
                "10.00".to_owned()
            ),
        ]
    );
    let shares: Vec<(String, i64, Option<f64>)> = sqlx::query_as(
        "SELECT order_key, CAST(position AS BIGINT), credit_share FROM order_touchpoints
         ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        shares,
        vec![
            (late.order_key.clone(), 1, Some(1.0 / 3.0)),
            (order.order_key.clone(), 1, Some(0.6)),
            (order.order_key.clone(), 2, Some(0.4)),
        ],
        "shares come back as the very doubles written"
    );
    drop(erp);
    SqlErp::connect(&SqlConfig { url }).await.unwrap();
    pool.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
