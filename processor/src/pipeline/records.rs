//! What one record becomes: a canonical record, a dead letter, an attribution update, or
//! an event held for its attribution.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use orderbridge_runtime::{dlq_headers, header_str, DeadLetter, Dependency};
use orderbridge_schemas::{headers as ob, EventType, OrderEvent, Source, Status, StatusRecord};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;

use super::{BatchError, Pipeline, CANONICAL_CONTENT_TYPE};
use crate::sources::{self, NormalizeError, RawRecord};
use crate::state::{self, Held, PartitionState};

/// One record's result: where it goes and what it carries.
pub(super) struct Output {
    pub(super) topic: String,
    /// The partition, when it is not the key's (state entries go to their raw partition's).
    pub(super) partition: Option<i32>,
    pub(super) key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub(super) payload: Option<Vec<u8>>,
    pub(super) headers: OwnedHeaders,
    pub(super) source: &'static str,
    /// What it counts as in `orderbridge_processor_records_total`; `None` counts nothing.
    pub(super) outcome: Option<&'static str>,
}

impl Output {
    pub(super) fn record(&self) -> FutureRecord<'_, Vec<u8>, Vec<u8>> {
        let mut record = FutureRecord::to(&self.topic).headers(self.headers.clone());
        if let Some(payload) = &self.payload {
            record = record.payload(payload);
        }
        if let Some(partition) = self.partition {
            record = record.partition(partition);
        }
        match &self.key {
            Some(key) => record.key(key),
            None => record,
        }
    }
}

impl Pipeline {
    /// The state topic record of `key`'s changed entry (`None`: a tombstone), in the raw
    /// partition's own partition of the state topic.
    pub(super) fn state_entry(
        &self,
        partition: i32,
        key: String,
        value: Option<Vec<u8>>,
    ) -> Output {
        Output {
            topic: self.topics.processor_state.clone(),
            partition: Some(partition),
            key: Some(key.into_bytes()),
            payload: value,
            headers: OwnedHeaders::new(),
            source: "state",
            outcome: None,
        }
    }

    /// Takes in one attribution record: an update of its order when the order was already
    /// emitted with other attribution, nothing when the order is still to come (it will be
    /// joined then), or a dead letter when the record is not an attribution event.
    pub(super) async fn attribution_record(
        &self,
        message: &OwnedMessage,
        state: &mut PartitionState,
    ) -> Result<(&'static str, Vec<Output>), BatchError> {
        let Some((order_key, attribution)) = state::attribution_of(message) else {
            let reason = "not an attribution event: a key (the order key) and a JSON \
                          AttributionEvent whose order_key, if given, equals the key";
            return Ok((
                "dead_lettered",
                vec![self.dead_letter(message, "unparseable", reason, "attribution")],
            ));
        };
        let at = message
            .timestamp()
            .to_millis()
            .unwrap_or_else(state::now_ms);
        let Some(version) = state.attribution_arrived(&order_key, &attribution.attribution, at)
        else {
            // The order may be waiting for exactly this: it goes out now, with it.
            let mut released = Vec::new();
            for held in state.release(&order_key) {
                released.push(self.emit_held(held, state).await?);
            }
            let outcome = if released.is_empty() {
                "stored"
            } else {
                "released"
            };
            return Ok((outcome, released));
        };
        let Some(mut update) = attribution_update(&order_key, message, version) else {
            // A key that is no order key joins nothing; kept in state, not an error.
            return Ok(("stored", Vec::new()));
        };
        update.attribution = Some(attribution.attribution);
        let payload = match self.codec.encode(&update).await {
            Ok(payload) => payload,
            Err(err) if err.is_retryable() => {
                return Err(BatchError::Retry(err.to_string(), Dependency::Registry))
            }
            Err(err) => {
                let reason = err.to_string();
                return Ok((
                    "dead_lettered",
                    vec![self.dead_letter(message, "invalid", &reason, "attribution")],
                ));
            }
        };
        let delivery =
            state::delivery_id(&update.source, &update.account, &update.lineage.event_id);
        state.record(Some(&delivery), &update, at);
        // Headers as a raw record's would be, so readers filter and trace it the same way.
        let carried = [
            (ob::SOURCE, Some(update.source.clone())),
            (ob::ACCOUNT, Some(update.account.clone())),
            (ob::EVENT_TYPE, Some("attribution".to_owned())),
            (ob::EVENT_ID, Some(update.lineage.event_id.clone())),
            (ob::RECEIVED_AT, Some(at.to_string())),
            (ob::ORIGIN, Some(update.lineage.origin.clone())),
        ];
        let output =
            self.canonical_with(&carried, update.order_key.clone(), payload, "attribution");
        Ok(("reemitted", vec![output]))
    }

    /// The canonical record of an event that waited for attribution.
    pub(super) async fn emit_held(
        &self,
        held: Held,
        state: &mut PartitionState,
    ) -> Result<Output, BatchError> {
        // It encoded when it was held, and attribution holds nothing the schema could refuse,
        // so only a registry outage fails here.
        let payload = self.codec.encode(&held.event).await.map_err(|err| {
            BatchError::Retry(
                format!("encoding a held event: {err}"),
                Dependency::Registry,
            )
        })?;
        let source = held
            .event
            .source
            .parse::<Source>()
            .map_or("unknown", Source::as_str);
        state.record(held.event_id.as_deref(), &held.event, state::now_ms());
        Ok(self.canonical_with(&held.carried, held.event.order_key, payload, source))
    }

    /// Normalizes and encodes one record. Only a registry outage is worth retrying; every
    /// other failure is a property of the record and becomes a dead letter.
    ///
    /// `None` when the event waits for its order's attribution (`attribution_wait_ms`).
    /// What the join did is added to `joined`, counted once the batch commits.
    pub(super) async fn process_record(
        &self,
        message: &OwnedMessage,
        state: &mut PartitionState,
        joined: &mut Vec<&'static str>,
    ) -> Result<Option<Output>, BatchError> {
        let (source, normalized) = normalize(message, &self.config.mappings);
        let source_label = source.map_or("unknown", Source::as_str);
        let (class, reason): (&'static str, String) = match normalized {
            Ok(mut event) => {
                if state.attach(&mut event) {
                    joined.push("attached");
                }
                match self.codec.encode(&event).await {
                    Ok(_) if self.should_hold(state, &event) => {
                        joined.push("held");
                        state.hold(Held {
                            carried: carried_headers(message),
                            event_id: state::delivery_id_of(message),
                            offset: message.offset(),
                            until: std::time::Instant::now()
                                + Duration::from_millis(self.config.attribution_wait_ms),
                            event,
                        });
                        return Ok(None);
                    }
                    Ok(payload) => {
                        let at = message
                            .timestamp()
                            .to_millis()
                            .unwrap_or_else(state::now_ms);
                        state.record(state::delivery_id_of(message).as_deref(), &event, at);
                        return Ok(Some(self.canonical(
                            message,
                            event.order_key,
                            payload,
                            source_label,
                        )));
                    }
                    Err(err) if err.is_retryable() => {
                        return Err(BatchError::Retry(err.to_string(), Dependency::Registry))
                    }
                    // The event does not fit the schema (an amount beyond decimal(18,4)).
                    Err(err) => ("invalid", err.to_string()),
                }
            }
            Err(err) => (err.class(), err.to_string()),
        };
        Ok(Some(self.dead_letter(
            message,
            class,
            &reason,
            source_label,
        )))
    }

    pub(super) fn should_hold(&self, state: &PartitionState, event: &OrderEvent) -> bool {
        self.config.attribution_wait_ms > 0 && state.should_hold(event)
    }

    /// The dead letter of `message`: its value and headers untouched, plus why.
    pub(super) fn dead_letter(
        &self,
        message: &OwnedMessage,
        class: &'static str,
        reason: &str,
        source_label: &'static str,
    ) -> Output {
        tracing::warn!(
            source = source_label,
            event_id = header_str(message, ob::EVENT_ID).unwrap_or("-"),
            partition = message.partition(),
            offset = message.offset(),
            class,
            reason = %reason,
            "dead-lettering record"
        );
        Output {
            topic: self.topics.dlq.clone(),
            partition: None,
            key: message.key().map(<[u8]>::to_vec),
            payload: Some(message.payload().map(<[u8]>::to_vec).unwrap_or_default()),
            headers: dlq_headers(
                message,
                &DeadLetter {
                    stage: "processor",
                    class,
                    reason,
                    attempts: 1,
                },
            ),
            source: source_label,
            outcome: Some("dead_lettered"),
        }
    }

    /// The canonical record for an encoded event, carrying the raw record's `ob-` headers.
    pub(super) fn canonical(
        &self,
        message: &OwnedMessage,
        order_key: String,
        payload: Vec<u8>,
        source: &'static str,
    ) -> Output {
        self.canonical_with(&carried_headers(message), order_key, payload, source)
    }

    /// A canonical record with the `ob-` headers `carried` (absent values left out).
    pub(super) fn canonical_with(
        &self,
        carried: &[(&str, Option<String>)],
        order_key: String,
        payload: Vec<u8>,
        source: &'static str,
    ) -> Output {
        let mut headers = OwnedHeaders::new();
        for (key, value) in carried {
            if let Some(value) = value {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_str()),
                });
            }
        }
        headers = headers.insert(Header {
            key: ob::CONTENT_TYPE,
            value: Some(CANONICAL_CONTENT_TYPE),
        });
        Output {
            topic: self.topics.canonical.clone(),
            partition: None,
            key: Some(order_key.into_bytes()),
            payload: Some(payload),
            headers,
            source,
            outcome: Some("canonical"),
        }
    }
}

impl Pipeline {
    /// The status an output records for its order: `normalized` for a canonical record,
    /// `dead-lettered` with the class and reason for a dead letter; nothing for the rest.
    pub(super) fn status_of(&self, output: &Output) -> Option<StatusRecord> {
        let status = match output.outcome? {
            "canonical" => Status::Normalized,
            "dead_lettered" => Status::DeadLettered,
            _ => return None,
        };
        let header = |key: &str| {
            output
                .headers
                .iter()
                .find(|h| h.key == key)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned)
        };
        let key = String::from_utf8_lossy(output.key.as_deref()?).into_owned();
        let mut record = self.status.record(&key, status);
        record.event_id = header(ob::EVENT_ID);
        record.event_type = header(ob::EVENT_TYPE);
        record.origin = header(ob::ORIGIN);
        if status == Status::DeadLettered {
            record.class = header(ob::DLQ_ERROR_CLASS);
            record.reason = header(ob::DLQ_REASON);
            record.record = match (
                header(ob::DLQ_ORIGINAL_TOPIC),
                header(ob::DLQ_ORIGINAL_PARTITION),
                header(ob::DLQ_ORIGINAL_OFFSET),
            ) {
                (Some(topic), Some(partition), Some(offset)) => {
                    Some(format!("{topic}:{partition}:{offset}"))
                }
                _ => None,
            };
        }
        Some(record)
    }

    /// The status of a raw record that emits nothing: a delivery emitted before
    /// (`Duplicate`), a thin notification enrich completes (`AwaitingEnrichment`).
    pub(super) fn raw_status(
        &self,
        message: &OwnedMessage,
        status: Status,
    ) -> Option<StatusRecord> {
        let key = String::from_utf8_lossy(message.key()?).into_owned();
        let mut record = self.status.record(&key, status);
        record.event_id = header_str(message, ob::EVENT_ID).map(str::to_owned);
        record.event_type = header_str(message, ob::EVENT_TYPE).map(str::to_owned);
        record.origin = header_str(message, ob::ORIGIN).map(str::to_owned);
        record.record = Some(orderbridge_runtime::coordinates(message));
        Some(record)
    }
}

/// The raw record's `ob-` headers a canonical record carries on: what it is, and whether it
/// is a replay or a revision (so that its dead letter counts the replays on, and `trace`
/// says what it was).
fn carried_headers(message: &OwnedMessage) -> Vec<(&'static str, Option<String>)> {
    [
        ob::SOURCE,
        ob::ACCOUNT,
        ob::EVENT_TYPE,
        ob::EVENT_ID,
        ob::RECEIVED_AT,
        ob::ORIGIN,
        ob::REPLAY_OF,
        ob::REPLAYS,
        ob::REVISION,
    ]
    .into_iter()
    .map(|key| (key, header_str(message, key).map(str::to_owned)))
    .collect()
}

/// Whether `message` is a thin notification the enrich stage completes (see
/// `orderbridge_providers::completion`).
pub(super) fn awaits_enrichment(
    message: &OwnedMessage,
    enrichment: &orderbridge_providers::completion::Enrichment,
) -> bool {
    let Some(source) = header_str(message, ob::SOURCE).and_then(|s| s.parse::<Source>().ok())
    else {
        return false;
    };
    enrichment.completes(
        source,
        header_str(message, ob::ACCOUNT).unwrap_or("-"),
        header_str(message, ob::EVENT_TYPE).unwrap_or(""),
        message
            .key()
            .and_then(orderbridge_providers::completion::key_order_id),
        message.payload().unwrap_or_default(),
    )
}

/// The source label of a raw record.
pub(super) fn source_of(message: &OwnedMessage) -> &'static str {
    header_str(message, ob::SOURCE)
        .and_then(|s| s.parse::<Source>().ok())
        .map_or("unknown", Source::as_str)
}

/// Reads the raw record's headers and runs its source's normalizer.
fn normalize(
    message: &OwnedMessage,
    mappings: &sources::mapped::Mappings,
) -> (Option<Source>, Result<OrderEvent, NormalizeError>) {
    let Some(source) = header_str(message, ob::SOURCE).and_then(|s| s.parse::<Source>().ok())
    else {
        return (
            None,
            Err(NormalizeError::Unsupported(
                header_str(message, ob::SOURCE)
                    .unwrap_or("no ob-source header")
                    .to_owned(),
            )),
        );
    };
    let received_at = header_str(message, ob::RECEIVED_AT)
        .and_then(|ms| ms.parse::<i64>().ok())
        .or_else(|| message.timestamp().to_millis())
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let raw = RawRecord {
        source,
        account: header_str(message, ob::ACCOUNT).unwrap_or("-"),
        event_type: header_str(message, ob::EVENT_TYPE).unwrap_or("unknown"),
        event_id: header_str(message, ob::EVENT_ID).unwrap_or("-"),
        received_at,
        origin: header_str(message, ob::ORIGIN).unwrap_or("webhook"),
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        body: message.payload().unwrap_or_default(),
    };
    // Normalizers are pure and checked (every amount and quantity, fuzzed), so this never
    // fires; if one still had a bug, the record would become a dead letter with the panic's
    // message, replayable once fixed, instead of a processor that crash-loops on it forever.
    let normalized = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sources::normalize(&raw, mappings).and_then(|event| revise(event, message))
    }))
    .unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Err(NormalizeError::Internal(message))
    });
    (Some(source), normalized)
}

/// `event` at the revision its record asks for (`ob-revision`, written by `orderbridge
/// revise`), or as it is when none.
fn revise(mut event: OrderEvent, message: &OwnedMessage) -> Result<OrderEvent, NormalizeError> {
    let Some(text) = header_str(message, ob::REVISION) else {
        return Ok(event);
    };
    let revision = text.trim().parse::<i64>().ok();
    event.version = revision
        .and_then(|revision| orderbridge_schemas::revised(event.version, revision))
        .ok_or_else(|| {
            NormalizeError::Invalid(format!(
                "ob-revision {text:?}: a revision is 1 to {} (and the version must not overflow)",
                orderbridge_schemas::MAX_REVISION
            ))
        })?;
    Ok(event)
}

/// The partial event that gives `order_key`'s order new attribution at `version`, traced to
/// the attribution record `message`; `None` when the key is not an order key.
fn attribution_update(order_key: &str, message: &OwnedMessage, version: i64) -> Option<OrderEvent> {
    let mut parts = order_key.splitn(3, ':');
    let (source, account, order_id) = (parts.next()?, parts.next()?, parts.next()?);
    let event_id = format!("attribution:{}:{}", message.partition(), message.offset());
    let raw = RawRecord {
        source: source.parse().ok()?,
        account,
        event_type: "attribution",
        event_id: &event_id,
        received_at: message
            .timestamp()
            .to_millis()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        origin: "attribution",
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        body: &[],
    };
    let mut update = sources::common::event(&raw, order_id);
    update.event_type = EventType::Updated;
    update.partial = true;
    update.version = version;
    Some(update)
}
