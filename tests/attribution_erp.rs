//! Marketing attribution reaching each ERP, against the simulators: where each adapter puts
//! the first touch, the last touch and every touchpoint's credit (Odoo's UTM fields and a
//! Text field, SAP user-defined fields, NetSuite custom body fields, a Business Central
//! comment line, the HTTP receiver's JSON), how a late attribution (the processor's partial
//! event) is applied in place under the version guard, that an event without attribution
//! keeps what the ERP holds, and that a field the ERP does not have is refused with the
//! ERP's message instead of dropped. (The SQL staging tables are tested in
//! `sink/src/erp/sql/tests.rs`.)
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use orderbridge_schemas::{
    Attribution, EventType, OrderEvent, OrderStatus, PaymentStatus, Touchpoint,
};
use orderbridge_sink::erp::attribution::{AttributionFields, Touch};
use orderbridge_sink::erp::business_central::BusinessCentral;
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::erp::http::HttpErp;
use orderbridge_sink::erp::netsuite::NetSuite;
use orderbridge_sink::erp::odoo::Odoo;
use orderbridge_sink::erp::sap_business_one::SapBusinessOne;
use orderbridge_sink::{ErpClient, ErpError, Upserted};
use rust_decimal::Decimal;
use serde_json::json;
use support::bc_sim::BcSim;
use support::http_sim::HttpSim;
use support::netsuite_sim::{NetSuiteSim, ATTRIBUTION_FIELDS};
use support::odoo_sim::OdooSim;
use support::sap_sim::SapSim;
use support::{later_event, shopify_event};

const SKUS: &[&str] = &["IPOD2008GREEN"];

fn touch(
    channel: &str,
    campaign: Option<&str>,
    source: Option<&str>,
    medium: Option<&str>,
    share: Option<f64>,
) -> Touchpoint {
    Touchpoint {
        channel: channel.into(),
        campaign: campaign.map(str::to_owned),
        source: source.map(str::to_owned),
        medium: medium.map(str::to_owned),
        occurred_at: None,
        credit_share: share,
    }
}

/// Found by search: first paid search, last the spring newsletter.
fn spring() -> Attribution {
    Attribution {
        first_touch: Some(touch(
            "paid_search",
            Some("spring"),
            Some("google"),
            Some("cpc"),
            None,
        )),
        last_touch: Some(touch(
            "email",
            Some("spring launch"),
            Some("newsletter"),
            Some("email"),
            None,
        )),
        touchpoints: vec![
            touch("paid_search", None, None, None, Some(0.6)),
            touch("email", None, None, None, Some(0.4)),
        ],
    }
}

/// What the platform said later: a referral closed it.
fn referral() -> Attribution {
    Attribution {
        first_touch: Some(touch("paid_search", None, None, None, None)),
        last_touch: Some(touch(
            "referral",
            Some("partners"),
            Some("blog.example"),
            None,
            None,
        )),
        touchpoints: vec![
            touch("paid_search", None, None, None, Some(0.5)),
            touch("referral", None, None, None, Some(0.5)),
        ],
    }
}

/// The basic Shopify order, with `attribution` known when it was emitted.
fn attributed(attribution: Attribution) -> OrderEvent {
    let mut order = shopify_event("orders-create-basic");
    order.attribution = Some(attribution);
    order
}

/// The partial event the processor emits when attribution arrives for an order it already
/// emitted, `step` versions after the order: keys, version, lineage and the attribution;
/// zero totals, no lines, unknown statuses.
fn late(step: i64, attribution: Attribution) -> OrderEvent {
    let mut late = later_event(EventType::Updated, step);
    late.partial = true;
    late.status = OrderStatus::Unknown;
    late.payment_status = PaymentStatus::Unknown;
    late.currency = "XXX".into();
    late.line_items.clear();
    for amount in [
        &mut late.totals.total,
        &mut late.totals.subtotal,
        &mut late.totals.tax,
        &mut late.totals.shipping,
        &mut late.totals.discount,
    ] {
        *amount = Decimal::ZERO;
    }
    late.lineage.raw_topic = "orders.attribution.v1".into();
    late.lineage.origin = "attribution".into();
    late.attribution = Some(attribution);
    late
}

/// The names of an Odoo order's campaign, source and medium, as [`OdooSim::utm_of`] gives.
fn utm(names: [Option<&str>; 3]) -> [Option<String>; 3] {
    names.map(|name| name.map(str::to_owned))
}

// Odoo -------------------------------------------------------------------------------------

async fn odoo(
    configure: impl FnOnce(&mut orderbridge_sink::erp::odoo::OdooConfig),
) -> (OdooSim, Odoo) {
    let sim = OdooSim::start(SKUS).await;
    let mut config = sim.config();
    configure(&mut config);
    let odoo = Odoo::new(config).unwrap();
    (sim, odoo)
}

#[tokio::test]
async fn odoo_utm_fields_take_the_last_touch_found_by_name_or_created_once() {
    let (sim, odoo) = odoo(|c| c.attribution_note_field = "x_orderbridge_attribution".into()).await;
    assert_eq!(
        odoo.upsert(&attributed(spring())).await.unwrap(),
        Upserted::Created
    );
    let order = &sim.orders()[0];
    assert_eq!(
        sim.utm_of(order),
        utm([Some("spring launch"), Some("Newsletter"), Some("Email")]),
        "the last touch; Odoo's own Newsletter and Email found whatever their case"
    );
    assert_eq!(
        sim.utm_records("utm.campaign").len(),
        1,
        "the campaign created"
    );
    assert_eq!(
        sim.utm_records("utm.source").len(),
        1,
        "no second newsletter"
    );
    assert_eq!(sim.utm_records("utm.medium").len(), 3, "no second email");
    let note = order.attribution.clone().unwrap();
    assert!(
        note.contains("First touch: paid_search (campaign spring, source google, medium cpc)")
            && note.contains("Touchpoints: paid_search 60%; email 40%"),
        "{note}"
    );

    // Another order of the same campaign: the records are known, no call finds them again.
    let calls = sim.utm_calls();
    let mut other = attributed(spring());
    other.order_key = format!("{}0", other.order_key);
    assert_eq!(odoo.upsert(&other).await.unwrap(), Upserted::Created);
    assert_eq!(sim.utm_calls(), calls);
    assert_eq!(sim.orders()[1].campaign_id, sim.orders()[0].campaign_id);
}

#[tokio::test]
async fn odoo_applies_a_late_attribution_in_place_under_the_version_guard() {
    let (sim, odoo) = odoo(|_| {}).await;
    odoo.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    let before = sim.orders()[0].clone();
    assert_eq!(sim.utm_of(&before), utm([None, None, None]));

    let late = late(1_000, spring());
    assert_eq!(odoo.upsert(&late).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(
        sim.utm_of(order),
        utm([Some("spring launch"), Some("Newsletter"), Some("Email")])
    );
    assert_eq!(order.lines, before.lines, "the lines stay");
    assert_eq!(order.version, Some(late.version.to_string()));
    assert_eq!(
        order.writes, 1,
        "one write: the fields and the version together"
    );
    assert_eq!(
        order.attribution, None,
        "no note field configured: none written"
    );

    assert_eq!(odoo.upsert(&late).await.unwrap(), Upserted::AlreadyPresent);
    assert_eq!(
        odoo.upsert(&self::late(500, referral())).await.unwrap(),
        Upserted::Stale
    );
    // The order changes at the source later; that event carries no attribution.
    let mut update = later_event(EventType::Updated, 2_000);
    update.line_items[0].quantity = 3;
    assert_eq!(odoo.upsert(&update).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(order.lines[0][2]["product_uom_qty"], 3);
    assert_eq!(
        sim.utm_of(order),
        utm([Some("spring launch"), Some("Newsletter"), Some("Email")]),
        "an event without attribution keeps what Odoo holds"
    );
    // A newer attribution replaces it, clearing the medium the touch no longer has: its
    // channel stands in.
    assert_eq!(
        odoo.upsert(&self::late(3_000, referral())).await.unwrap(),
        Upserted::Updated
    );
    assert_eq!(
        sim.utm_of(&sim.orders()[0]),
        utm([Some("partners"), Some("blog.example"), Some("referral")])
    );
}

#[tokio::test]
async fn odoo_first_touch_when_configured_and_names_match_only_themselves() {
    let (sim, odoo) = odoo(|c| c.attribution_touch = Touch::First).await;
    // A medium whose name `paid_search` would match if `_` were left a wildcard.
    sim.add_utm("utm.medium", "paid-search");
    let mut attribution = spring();
    attribution.first_touch = Some(touch("paid_search", Some("spring"), None, None, None));
    odoo.upsert(&attributed(attribution)).await.unwrap();
    assert_eq!(
        sim.utm_of(&sim.orders()[0]),
        utm([Some("spring"), None, Some("paid_search")]),
        "the first touch; no source; its channel as the medium"
    );
    assert!(sim
        .utm_records("utm.medium")
        .iter()
        .any(|(_, name)| name == "paid-search"));
}

#[tokio::test]
async fn odoo_refuses_a_note_field_it_does_not_have() {
    let (sim, odoo) = odoo(|c| c.attribution_note_field = "x_attribution".into()).await;
    let err = odoo.upsert(&attributed(spring())).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Rejected { reason } if reason.contains("Invalid field 'x_attribution'")),
        "{err:?}"
    );
    assert!(sim.orders().is_empty());
}

// SAP Business One -------------------------------------------------------------------------

fn sap_fields() -> AttributionFields {
    AttributionFields {
        first_touch: "U_OBFirstTouch".into(),
        last_touch: "U_OBLastTouch".into(),
        touchpoints: "U_OBTouchpoints".into(),
    }
}

async fn sap(fields: AttributionFields) -> (SapSim, SapBusinessOne) {
    let sim = SapSim::start(SKUS).await;
    let mut config = sim.config(5_000);
    config.attribution_fields = fields;
    let sap = SapBusinessOne::new(config).unwrap();
    (sim, sap)
}

#[tokio::test]
async fn sap_udfs_take_the_touches_and_credits_and_a_late_attribution_patches_them() {
    let (sim, sap) = sap(sap_fields()).await;
    assert_eq!(
        sap.upsert(&attributed(spring())).await.unwrap(),
        Upserted::Created
    );
    let udfs = sim.orders()[0].udfs.clone();
    assert_eq!(udfs["U_OBFirstTouch"], "paid_search");
    assert_eq!(udfs["U_OBLastTouch"], "email");
    assert_eq!(udfs["U_OBTouchpoints"], "paid_search:60%;email:40%");

    let late = late(1_000, referral());
    assert_eq!(sap.upsert(&late).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(order.udfs["U_OBLastTouch"], "referral");
    assert_eq!(
        order.udfs["U_OBTouchpoints"],
        "paid_search:50%;referral:50%"
    );
    assert_eq!(order.version(), Some(late.version));
    assert_eq!(order.lines.len(), 1, "the lines stay");
    assert_eq!(order.lines[0]["Quantity"], 2);
    assert_eq!(
        order.patches, 1,
        "one PATCH: the fields and the version together"
    );
    assert_eq!(
        sap.upsert(&self::late(500, spring())).await.unwrap(),
        Upserted::Stale
    );
    assert_eq!(sim.orders()[0].udfs["U_OBLastTouch"], "referral");

    // More touchpoints than 254 characters hold: cut by whole entries, and SAP takes it.
    let mut many = referral();
    many.touchpoints = (0..40)
        .map(|i| touch(&format!("affiliate-{i:02}"), None, None, None, Some(0.025)))
        .collect();
    assert_eq!(
        sap.upsert(&self::late(2_000, many)).await.unwrap(),
        Upserted::Updated
    );
    let list = sim.orders()[0].udfs["U_OBTouchpoints"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(list.len() <= 254, "{}", list.len());
    assert!(
        list.starts_with("affiliate-00:2.5%;affiliate-01:2.5%;") && list.contains(";+"),
        "{list}"
    );
}

#[tokio::test]
async fn sap_refuses_an_attribution_udf_it_does_not_have() {
    let mut fields = sap_fields();
    fields.touchpoints = "U_OBTouchpoint".into();
    let (sim, sap) = sap(fields).await;
    let err = sap.upsert(&attributed(spring())).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Rejected { reason } if reason.contains("'U_OBTouchpoint'")),
        "{err:?}"
    );
    assert!(sim.orders().is_empty());
    // Without attribution fields an order goes as it always did, and a late attribution
    // records its version only.
    let (sim, sap) = self::sap(AttributionFields::default()).await;
    sap.upsert(&attributed(spring())).await.unwrap();
    assert_eq!(
        sap.upsert(&late(1_000, referral())).await.unwrap(),
        Upserted::Updated
    );
    assert_eq!(sim.orders()[0].udfs.len(), 1, "{:?}", sim.orders()[0].udfs);
}

// NetSuite ---------------------------------------------------------------------------------

fn netsuite_fields() -> AttributionFields {
    let [first, last, touchpoints] = ATTRIBUTION_FIELDS.map(str::to_owned);
    AttributionFields {
        first_touch: first,
        last_touch: last,
        touchpoints,
    }
}

async fn netsuite(fields: AttributionFields) -> (NetSuiteSim, NetSuite) {
    let sim = NetSuiteSim::start(SKUS).await;
    let mut config = sim.config();
    config.attribution_fields = fields;
    let netsuite = NetSuite::new(config).unwrap();
    (sim, netsuite)
}

#[tokio::test]
async fn netsuite_body_fields_take_the_attribution_and_a_late_one_is_patched() {
    let (sim, netsuite) = netsuite(netsuite_fields()).await;
    assert_eq!(
        netsuite.upsert(&attributed(spring())).await.unwrap(),
        Upserted::Created
    );
    let fields = sim.orders()[0].fields.clone();
    assert_eq!(fields["custbody_ob_first_touch"], "paid_search");
    assert_eq!(fields["custbody_ob_last_touch"], "email");
    assert_eq!(
        fields["custbody_ob_touchpoints"],
        "paid_search:60%;email:40%"
    );

    let late = late(1_000, referral());
    assert_eq!(netsuite.upsert(&late).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(order.fields["custbody_ob_last_touch"], "referral");
    assert_eq!(order.version(), Some(late.version));
    assert_eq!(order.lines.len(), 1, "the lines stay");
    assert_eq!(order.fields["currency"], json!({ "refName": "USD" }));
    assert_eq!(
        netsuite.upsert(&self::late(500, spring())).await.unwrap(),
        Upserted::Stale
    );

    // Non-English channel names: the limit is 300 bytes, not characters.
    let mut many = referral();
    many.touchpoints = (0..40)
        .map(|i| {
            touch(
                &format!("Empfehlung-für-Bücher-{i}"),
                None,
                None,
                None,
                None,
            )
        })
        .collect();
    assert_eq!(
        netsuite.upsert(&self::late(2_000, many)).await.unwrap(),
        Upserted::Updated
    );
    let list = sim.orders()[0].fields["custbody_ob_touchpoints"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(list.len() <= 300 && list.contains(";+"), "{list}");
}

#[tokio::test]
async fn netsuite_refuses_a_body_field_the_account_does_not_have() {
    let mut fields = netsuite_fields();
    fields.first_touch = "custbody_first_touch".into();
    let (sim, netsuite) = netsuite(fields).await;
    let err = netsuite.upsert(&attributed(spring())).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Rejected { reason } if reason.contains("custbody_first_touch")),
        "{err:?}"
    );
    assert!(sim.orders().is_empty());
}

// Business Central -------------------------------------------------------------------------

async fn bc(comment: bool) -> (BcSim, BusinessCentral) {
    let sim = BcSim::start(SKUS).await;
    let mut config = sim.config(5_000);
    config.attribution_comment = comment;
    let bc = BusinessCentral::new(config).unwrap();
    (sim, bc)
}

#[tokio::test]
async fn bc_a_comment_line_carries_the_attribution_and_a_late_one_rewrites_it_atomically() {
    let (sim, bc) = bc(true).await;
    let order = attributed(spring());
    assert_eq!(bc.upsert(&order).await.unwrap(), Upserted::Created);
    assert_eq!(
        sim.orders()[0].comments(),
        vec![
            "Attribution: first paid_search, last email; paid_search:60%;email:40%".to_owned(),
            format!("OrderBridge version {}", order.version),
        ],
        "with the lines, in the create's deep insert"
    );

    let late = late(1_000, referral());
    assert_eq!(bc.upsert(&late).await.unwrap(), Upserted::Updated);
    assert_eq!(
        sim.batches(),
        1,
        "the attribution and the version in one transaction"
    );
    let held = &sim.orders()[0];
    assert_eq!(
        held.comments(),
        vec![
            "Attribution: first paid_search, last referral; paid_search:50%;referral:50%"
                .to_owned(),
            format!("OrderBridge version {}", late.version),
        ]
    );
    assert_eq!(held.item_lines().len(), 1, "the item lines stay");
    assert_eq!(held.item_lines()[0]["quantity"], 2);
    assert_eq!(
        bc.upsert(&self::late(500, spring())).await.unwrap(),
        Upserted::Stale
    );

    // A change at the source without attribution keeps the line.
    let update = later_event(EventType::Updated, 2_000);
    assert_eq!(bc.upsert(&update).await.unwrap(), Upserted::Updated);
    let comments = sim.orders()[0].comments();
    assert!(
        comments.contains(&format!("OrderBridge version {}", update.version))
            && comments.iter().any(|c| c.contains("last referral")),
        "{comments:?}"
    );

    // Long channel names: BC's 100 characters hold the touches, the credits left out.
    let mut long = referral();
    long.first_touch = Some(touch(&"display_".repeat(8), None, None, None, None));
    assert_eq!(
        bc.upsert(&self::late(3_000, long)).await.unwrap(),
        Upserted::Updated
    );
    let comments = sim.orders()[0].comments();
    let line = comments
        .iter()
        .find(|c| c.starts_with("Attribution: "))
        .unwrap();
    assert!(line.chars().count() <= 100, "{line}");
    assert_eq!(
        comments.len(),
        2,
        "one attribution line, one version line: {comments:?}"
    );
}

#[tokio::test]
async fn bc_without_the_comment_line_records_the_version_only() {
    let (sim, bc) = bc(false).await;
    let order = attributed(spring());
    bc.upsert(&order).await.unwrap();
    let late = late(1_000, referral());
    assert_eq!(bc.upsert(&late).await.unwrap(), Upserted::Updated);
    assert_eq!(
        sim.orders()[0].comments(),
        vec![format!("OrderBridge version {}", late.version)]
    );
}

// HTTP receiver ----------------------------------------------------------------------------

#[tokio::test]
async fn the_http_receiver_gets_the_attribution_and_applies_a_late_one_in_place() {
    let sim = HttpSim::start().await;
    let erp = HttpErp::new(sim.config()).unwrap();
    let order = attributed(spring());
    let reference = external_reference(&order.order_key);
    assert_eq!(erp.upsert(&order).await.unwrap(), Upserted::Created);
    assert_eq!(sim.held(&reference).unwrap().attribution, Some(spring()));

    let late = late(1_000, referral());
    assert_eq!(erp.upsert(&late).await.unwrap(), Upserted::Updated);
    let held = sim.held(&reference).unwrap();
    assert_eq!(held.attribution, Some(referral()));
    assert_eq!(held.version, late.version);
    assert_eq!(
        (held.line_items, held.totals, held.status),
        (order.line_items.clone(), order.totals.clone(), order.status),
        "lines, totals and status stay"
    );
    assert_eq!(
        erp.upsert(&self::late(500, spring())).await.unwrap(),
        Upserted::Stale
    );
    let update = later_event(EventType::Updated, 2_000);
    erp.upsert(&update).await.unwrap();
    assert_eq!(
        sim.held(&reference).unwrap().attribution,
        Some(referral()),
        "an event without attribution keeps the receiver's"
    );
}
