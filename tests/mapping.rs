//! Field mapping from configuration: `orderbridge mapping test` prints the mapped request,
//! and the mapping reaches the ERP (SAP Business One simulator) when the sink writes.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::process::Command;
use std::sync::Arc;

use orderbridge_sink::erp::external_reference;
use orderbridge_sink::erp::sap_business_one::SapBusinessOne;
use orderbridge_sink::mapping::{Mapping, MappingConfig};
use orderbridge_sink::{ErpClient, ErpError, Upserted};
use support::sap_sim::SapSim;
use support::shopify_event;

const BUSINESS_CENTRAL: &str = r#"
[sink.erp]
kind = "business-central"
tenant_id = "contoso-tenant"
environment = "production"
company_id = "f03f6225-081c-ec11-bb77-000d3abcd123"
client_id = "orderbridge-app"
client_secret = { env = "MAPPING_TEST_BC_SECRET" }
default_customer_number = "10000"

[sink.mapping]
items = { "IPOD2008GREEN" = "1896-S" }
customers = { "bob@example.com" = "C-0042" }
channels = { "shopify" = "WEB" }
program = '''
  .yourReference = ("Shopify " + $order.order_number)
  | .salesOrderLines |= map(select(.lineType != "Comment") // .)
'''
"#;

fn orderbridge(config: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orderbridge.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_orderbridge"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env("MAPPING_TEST_BC_SECRET", "not-used-by-a-preview")
        .output()
        .unwrap()
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/shopify/orders-create-basic/expected.json"
);

#[test]
fn mapping_test_prints_the_mapped_request() {
    let output = orderbridge(
        BUSINESS_CENTRAL,
        &["mapping", "test", "--erp", "business-central", FIXTURE],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let (request_line, body) = stdout.split_once('\n').unwrap();
    assert_eq!(
        request_line,
        "POST https://api.businesscentral.dynamics.com/v2.0/contoso-tenant/production/api/v2.0/companies(f03f6225-081c-ec11-bb77-000d3abcd123)/salesOrders"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["customerNumber"], "C-0042", "customer by email");
    assert_eq!(
        body["shortcutDimension1Code"], "WEB",
        "channel as dimension"
    );
    assert_eq!(body["salesOrderLines"][0]["lineObjectNumber"], "1896-S");
    assert_eq!(body["yourReference"], "Shopify #1001", "the program ran");
    assert_eq!(
        body["externalDocumentNumber"],
        external_reference(&shopify_event("orders-create-basic").order_key)
    );
}

#[test]
fn mapping_test_names_what_is_wrong() {
    let output = orderbridge(
        BUSINESS_CENTRAL,
        &["mapping", "test", "--erp", "netsuite", FIXTURE],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[sink.erp] is business-central"),
        "{stderr}"
    );

    let broken = BUSINESS_CENTRAL.replace(".yourReference =", ".yourReference = [");
    let output = orderbridge(
        &broken,
        &["mapping", "test", "--erp", "business-central", FIXTURE],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sink.mapping"), "{stderr}");
}

#[tokio::test]
async fn the_sink_sends_mapped_items_customers_and_warehouses() {
    let sim = SapSim::start(&["A00001"]).await;
    let mapping = MappingConfig {
        items: [("IPOD2008GREEN".to_owned(), "A00001".to_owned())].into(),
        customers: [("bob@example.com".to_owned(), "C20000".to_owned())].into(),
        channels: [("shopify".to_owned(), "01".to_owned())].into(),
        ..MappingConfig::default()
    };
    let mut config = sim.config(5_000);
    config.default_card_code = "C99999".into(); // unknown to SAP: the mapped customer must win
    let sap = SapBusinessOne::new(config)
        .unwrap()
        .with_mapping(Arc::new(Mapping::new(mapping).unwrap()));
    let event = shopify_event("orders-create-basic");
    assert_eq!(sap.upsert(&event).await.unwrap(), Upserted::Created);
    let order = &sim.orders()[0];
    assert_eq!(order.card_code, "C20000");
    assert_eq!(order.lines[0]["ItemCode"], "A00001");
    assert_eq!(order.lines[0]["WarehouseCode"], "01");

    let strict = MappingConfig {
        unmapped_items: orderbridge_sink::mapping::Unmapped::Reject,
        ..MappingConfig::default()
    };
    let sap = SapBusinessOne::new(sim.config(5_000))
        .unwrap()
        .with_mapping(Arc::new(Mapping::new(strict).unwrap()));
    let err = sap
        .upsert(&shopify_event("orders-create-jpy-zero-decimal"))
        .await;
    assert!(
        matches!(&err, Err(ErpError::Rejected { reason }) if reason.contains("sink.mapping.items")),
        "{err:?}"
    );
}
