//! `erp-simulator`: the Business Central simulator of the integration tests
//! (`tests/support/bc_sim.rs`) as a program, for the compose stack and for trying the sink by
//! hand. It speaks BC's contract (OAuth client credentials, the v2.0 API, `$batch`,
//! maintenance as 503) with the credentials it prints on start, and serves a small operator
//! side on `--inspect`:
//!
//! - `GET /orders`: the sales orders, posted invoices and credit memos it holds, as JSON;
//! - `POST /maintenance?on=true|false`: start or end a maintenance window (every API call
//!   answers 503 meanwhile), to watch the sink's breaker hold and resume.
//!
//! Built with `cargo build --example erp-simulator`; the Dockerfile's `erp-simulator` target.

// The simulator is test code shared with the integration tests: a poisoned lock or a failed
// bind panics there, as it should in a test.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // the tests' handles (faults, counters) are not all used here
#[path = "bc_sim.rs"]
mod bc_sim;
#[path = "latency.rs"]
mod latency;

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde_json::{json, Value};

use bc_sim::{BcSim, SalesOrder};
use latency::answer_after; // bc_sim's `super::answer_after`

#[derive(Debug, Parser)]
#[command(
    name = "erp-simulator",
    about = "A Business Central simulator for the OrderBridge sink"
)]
struct Args {
    /// Where BC's API and token endpoint answer.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Where `/orders` and `/maintenance` answer.
    #[arg(long, default_value = "127.0.0.1:8091")]
    inspect: SocketAddr,
    /// The item numbers BC knows (a line with any other is refused with BC's 400).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "IPOD2008GREEN,IPOD2008BLACK,SKU-1,SKU-2,SKU-3"
    )]
    items: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let api = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let items: Vec<&str> = args.items.iter().map(String::as_str).collect();
    let sim = BcSim::serve(api, &items);
    let inspect = tokio::net::TcpListener::bind(args.inspect)
        .await
        .with_context(|| format!("binding {}", args.inspect))?;

    println!("Business Central simulator on http://{}", sim.addr);
    println!("  [sink.erp] kind = \"business-central\"");
    println!(
        "  api_url = \"http://<this host>:{}/v2.0\"",
        sim.addr.port()
    );
    println!(
        "  token_url = \"http://<this host>:{}/{{tenant}}/oauth2/v2.0/token\"",
        sim.addr.port()
    );
    println!(
        "  tenant_id = \"{}\", environment = \"{}\", company_id = \"{}\"",
        bc_sim::TENANT,
        bc_sim::ENVIRONMENT,
        bc_sim::COMPANY
    );
    println!(
        "  client_id = \"{}\", client secret \"{}\", default_customer_number = \"{}\"",
        bc_sim::CLIENT_ID,
        bc_sim::CLIENT_SECRET,
        bc_sim::CUSTOMER
    );
    println!("  items: {}", args.items.join(", "));
    println!(
        "inspect on http://{}: GET /orders, POST /maintenance?on=true|false",
        args.inspect
    );

    let app = Router::new()
        .route("/orders", get(orders))
        .route("/maintenance", post(maintenance))
        .with_state(sim);
    axum::serve(inspect, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn document(order: &SalesOrder) -> Value {
    json!({
        "number": order.number,
        "externalDocumentNumber": order.external_document_number,
        "customerNumber": order.customer_number,
        "currencyCode": order.currency_code,
        "lines": order.lines,
    })
}

async fn orders(State(sim): State<BcSim>) -> Json<Value> {
    Json(json!({
        "salesOrders": sim.orders().iter().map(document).collect::<Vec<_>>(),
        "salesInvoices": sim.invoices().iter().map(document).collect::<Vec<_>>(),
        "salesCreditMemos": sim.credit_memos().iter().map(document).collect::<Vec<_>>(),
    }))
}

async fn maintenance(
    State(sim): State<BcSim>,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    match query.get("on").map(String::as_str) {
        Some("true") => {
            sim.set_maintenance(true);
            (StatusCode::OK, "maintenance started\n".into())
        }
        Some("false") => {
            sim.set_maintenance(false);
            (StatusCode::OK, "maintenance ended\n".into())
        }
        _ => (StatusCode::BAD_REQUEST, "?on=true or ?on=false\n".into()),
    }
}
