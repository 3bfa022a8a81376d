//! The partition state's rules: duplicates, the attribution join, held orders.

#![allow(clippy::unwrap_used)]

use super::*;
use orderbridge_schemas::Touchpoint;

fn touch(channel: &str) -> Attribution {
    let touch = Touchpoint {
        channel: channel.into(),
        campaign: None,
        source: None,
        medium: None,
        occurred_at: None,
        credit_share: Some(1.0),
    };
    Attribution {
        first_touch: Some(touch.clone()),
        last_touch: Some(touch.clone()),
        touchpoints: vec![touch],
    }
}

fn order(version: i64, partial: bool) -> OrderEvent {
    let mut event: OrderEvent = serde_json::from_str(include_str!(
        "../../../tests/fixtures/shopify/orders-create-basic/expected.json"
    ))
    .unwrap();
    event.version = version;
    event.partial = partial;
    event
}

#[test]
fn attribution_before_the_order_is_attached_to_it() {
    let mut state = PartitionState::default();
    let event = order(1000, false);
    assert_eq!(
        state.attribution_arrived(&event.order_key, &touch("email"), 1),
        None
    );
    let mut event = event;
    assert!(state.attach(&mut event));
    assert_eq!(event.attribution, Some(touch("email")));
    state.record(Some("d1"), &event, 1);
    // The same attribution again changes nothing.
    assert_eq!(
        state.attribution_arrived(&event.order_key, &touch("email"), 1),
        None
    );
    assert!(state.is_duplicate("d1"));
}

#[test]
fn attribution_after_the_order_asks_for_an_update_above_every_version() {
    let mut state = PartitionState::default();
    let event = order(1000, false);
    state.record(Some("d1"), &event, 1);
    // A later status-only event raised the order's version.
    state.record(Some("d2"), &order(5000, true), 2);
    assert_eq!(
        state.attribution_arrived(&event.order_key, &touch("email"), 1),
        Some(5001)
    );
    // A different attribution later: another update.
    let mut update = order(5001, true);
    update.attribution = Some(touch("email"));
    state.record(None, &update, 3);
    assert_eq!(
        state.attribution_arrived(&event.order_key, &touch("social"), 4),
        Some(5002)
    );
}

fn held(event: OrderEvent, id: &str, offset: i64, until: Instant) -> Held {
    Held {
        event,
        event_id: Some(id.to_owned()),
        offset,
        carried: Vec::new(),
        until,
    }
}

#[test]
fn a_new_order_waits_and_its_later_events_queue_behind_it() {
    let mut state = PartitionState::default();
    let now = Instant::now();
    let create = order(1000, false);
    assert!(state.should_hold(&create));
    state.took(7);
    state.hold(held(create.clone(), "d1", 7, now + Duration::from_secs(5)));
    state.took(8);
    // A status update of the same order waits behind it, even though it is partial.
    let update = order(2000, true);
    assert!(state.should_hold(&update));
    state.hold(held(update, "d2", 8, now + Duration::from_secs(6)));
    state.took(9);
    assert!(
        state.is_duplicate("d1"),
        "a retried held delivery is a duplicate"
    );
    assert_eq!(state.commit_offset(), Some(7), "never past a held record");
    assert!(state.due(now).is_empty());
    assert_eq!(
        state.due(now + Duration::from_secs(5)),
        vec![create.order_key.clone()]
    );

    state.attribution_arrived(&create.order_key, &touch("email"), 3);
    let released = state.release(&create.order_key);
    assert_eq!(released.len(), 2);
    assert_eq!(released[0].event.attribution, Some(touch("email")));
    assert_eq!(
        released[1].event.attribution, None,
        "a partial event stays as it came"
    );
    assert_eq!(state.commit_offset(), Some(10));
    assert!(!state.is_duplicate("d1"));
}

#[test]
fn an_order_already_emitted_or_attributed_does_not_wait() {
    let mut state = PartitionState::default();
    let event = order(1000, false);
    state.record(Some("d0"), &event, 1);
    assert!(!state.should_hold(&order(2000, false)));
    let mut other = order(1000, false);
    other.order_key = "shopify:shop:2".into();
    state.attribution_arrived(&other.order_key, &touch("email"), 1);
    assert!(!state.should_hold(&other));
    assert!(!state.should_hold(&{
        let mut partial = order(1000, true);
        partial.order_key = "shopify:shop:3".into();
        partial
    }));
}

#[test]
fn a_partial_event_is_not_given_attribution() {
    let mut state = PartitionState::default();
    let mut event = order(1000, true);
    state.attribution_arrived(&event.order_key, &touch("email"), 1);
    assert!(!state.attach(&mut event));
    assert_eq!(event.attribution, None);
}
