//! The canonical schema as a public contract: every released version stays readable.
//!
//! Other teams consume `orders.canonical.v1` with whatever version of the schema they
//! generated code from, so a new version must be *fully* compatible with every released one:
//! new readers read old events (backward, what Confluent checks by default) and old readers
//! read new events (forward). In practice: only add fields, each with a default; never
//! remove or rename one, never change a type. [`check_evolution`] is what the tests hold
//! [`ORDER_EVENT_VERSIONS`](crate::ORDER_EVENT_VERSIONS) to.

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

/// Checks that each version in `versions` (oldest first, as schema text) and every version
/// after it can read each other's data.
///
/// # Errors
/// The first pair that cannot, with apache-avro's reason.
pub fn check_evolution(versions: &[&str]) -> Result<(), String> {
    let parsed = versions
        .iter()
        .enumerate()
        .map(|(i, text)| Schema::parse_str(text).map_err(|err| format!("version {}: {err}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, older) in parsed.iter().enumerate() {
        for (j, newer) in parsed.iter().enumerate().skip(i + 1) {
            SchemaCompatibility::can_read(older, newer).map_err(|err| {
                format!(
                    "version {} cannot read data written by version {}: {err}",
                    j + 1,
                    i + 1
                )
            })?;
            SchemaCompatibility::can_read(newer, older).map_err(|err| {
                format!(
                    "version {} (a reader that has not upgraded) cannot read data written by version {}: {err}",
                    i + 1,
                    j + 1
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ORDER_EVENT_VERSIONS;
    use serde_json::Value;

    /// The newest released schema, changed by `edit`.
    fn edited(edit: impl FnOnce(&mut Vec<Value>)) -> String {
        let newest = ORDER_EVENT_VERSIONS[ORDER_EVENT_VERSIONS.len() - 1];
        let mut schema: Value = serde_json::from_str(newest).unwrap();
        edit(schema["fields"].as_array_mut().unwrap());
        schema.to_string()
    }

    fn with_newest_and(candidate: &str) -> Result<(), String> {
        let mut versions = ORDER_EVENT_VERSIONS.to_vec();
        versions.push(candidate);
        check_evolution(&versions)
    }

    #[test]
    fn every_released_version_reads_every_other() {
        assert!(ORDER_EVENT_VERSIONS.len() >= 2);
        check_evolution(ORDER_EVENT_VERSIONS).unwrap();
    }

    #[test]
    fn removing_a_field_without_a_default_is_refused() {
        let without_currency = edited(|fields| fields.retain(|f| f["name"] != "currency"));
        let err = with_newest_and(&without_currency).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
        assert!(err.contains("has not upgraded"), "old readers break: {err}");
    }

    #[test]
    fn adding_a_field_without_a_default_is_refused_and_with_one_accepted() {
        let required = edited(|fields| {
            fields.push(serde_json::json!({"name": "channel", "type": "string"}));
        });
        assert!(with_newest_and(&required).is_err());
        let optional = edited(|fields| {
            fields.push(
                serde_json::json!({"name": "channel", "type": ["null", "string"], "default": null}),
            );
        });
        with_newest_and(&optional).unwrap();
    }

    #[test]
    fn changing_a_type_is_refused() {
        let long_total = edited(|fields| {
            for field in fields.iter_mut().filter(|f| f["name"] == "version") {
                field["type"] = "string".into();
            }
        });
        assert!(with_newest_and(&long_total).is_err());
    }
}
