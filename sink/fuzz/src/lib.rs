//! What the sink fuzz target checks: a canonical record is data from outside the sink (any
//! producer with write access to the topic can put bytes there), so neither the decoder nor
//! what the adapters do with a decoded event may panic on it.
//!
//! The fuzzer's bytes are the record's value. The seeds in `seeds/decode_canonical/` are the
//! golden fixtures' events in wire format (magic byte, schema id 1, the Avro datum), so
//! mutation starts from records that decode. Properties, for every input:
//! - decoding never panics, and refuses with a reason that is not retryable (the registry here
//!   always answers: a retry would refuse the same bytes forever);
//! - a decoded event never panics the request building of any ERP adapter (Business Central,
//!   SAP Business One, NetSuite, Odoo, the HTTP receiver), with a field mapping that runs a jq
//!   program, nor the external reference; each either builds a request or rejects the event.
//!
//! Nothing is sent: previews build requests without a connection.

use std::sync::{Arc, LazyLock};

use orderbridge_schemas::{EmbeddedRegistry, OrderEventCodec, ORDER_EVENT_VERSIONS};
use orderbridge_sink::erp::{build_remote, external_reference, ErpConfig};
use orderbridge_sink::mapping::{Mapping, MappingConfig};
use orderbridge_sink::ErpClient;

struct World {
    runtime: tokio::runtime::Runtime,
    codec: OrderEventCodec,
    adapters: Vec<Arc<dyn ErpClient>>,
}

const ADAPTERS: &[&str] = &[
    r#"kind = "business-central"
tenant_id = "t"
environment = "production"
company_id = "c"
client_id = "id"
client_secret = { env = "ORDERBRIDGE_FUZZ_SECRET" }
default_customer_number = "10000""#,
    r#"kind = "sap-business-one"
service_layer_url = "https://sap.invalid:50000/b1s/v1"
company_db = "SBODEMO"
username = "manager"
password = { env = "ORDERBRIDGE_FUZZ_SECRET" }
default_card_code = "C20000""#,
    r#"kind = "netsuite"
account_id = "1234567"
client_id = "id"
certificate_id = "cert"
private_key = { env = "ORDERBRIDGE_FUZZ_KEY" }
default_customer_id = "42""#,
    r#"kind = "odoo"
url = "https://odoo.invalid"
database = "db"
login = "bot"
api_key = { env = "ORDERBRIDGE_FUZZ_SECRET" }
default_partner_id = 7"#,
    r#"kind = "http"
url = "https://erp.invalid/orders/{reference}""#,
];

const MAPPING: &str = r#"
items = { "IPOD2008GREEN" = "1896-S" }
customers = { "bob@example.com" = "C-0042" }
channels = { "shopify" = "WEB" }
program = '''
  .comment = ("order " + ($order.order_number // "-"))
'''
"#;

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let key = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).expect("a scalar");
    let pem = p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, p256::pkcs8::LineEnding::LF)
        .expect("PEM");
    // Set once, before any thread of this process reads the environment.
    std::env::set_var("ORDERBRIDGE_FUZZ_SECRET", "fuzz");
    std::env::set_var("ORDERBRIDGE_FUZZ_KEY", pem.as_str());
    let mapping: MappingConfig = toml::from_str(MAPPING).expect("mapping");
    let mapping = Arc::new(Mapping::new(mapping).expect("mapping compiles"));
    let adapters = ADAPTERS
        .iter()
        .map(|text| {
            let config: ErpConfig = toml::from_str(text).expect("adapter configuration");
            build_remote(&config, Arc::clone(&mapping)).expect("adapter builds")
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let registry = Arc::new(EmbeddedRegistry::new());
    // Every released schema version is a writer the decoder may meet: id 1 is the newest,
    // the older ones get ids of their own.
    for (version, schema) in ORDER_EVENT_VERSIONS.iter().enumerate() {
        runtime
            .block_on(orderbridge_schemas::SchemaRegistry::register(
                registry.as_ref(),
                &format!("fuzz-v{version}"),
                schema,
            ))
            .expect("a released schema registers");
    }
    World {
        codec: OrderEventCodec::new(registry, "orders.canonical.v1").expect("codec"),
        runtime,
        adapters,
    }
});

/// The sink's properties, on the fuzzer's bytes as a canonical record's value.
pub fn decode(data: &[u8]) {
    let world = &*WORLD;
    let event = match world.runtime.block_on(world.codec.decode(data)) {
        Ok(event) => event,
        Err(err) => {
            assert!(!err.is_retryable(), "a retryable decode failure: {err}");
            return;
        }
    };
    let reference = external_reference(&event.order_key);
    assert!(
        !reference.is_empty() && reference.len() <= 35,
        "{reference}"
    );
    for adapter in &world.adapters {
        // A preview is the create request: built, or the event rejected with a reason.
        let _ = adapter.preview(&event);
    }
}
