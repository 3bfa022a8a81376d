//! A hook for the fuzzers only (`cargo fuzz` builds with `cfg(fuzzing)`; no other build has
//! it, so nothing else has a way past verification).

use super::{
    amazon_sns, etsy, extract, ordermentum, shopify, verified, Extraction, Source, Verified,
    VerifiedParts, WebhookRequest,
};

/// Every source's extraction run on `request` as if its signature held, so that the fuzzers
/// reach the code behind the signature check. Only in builds made by `cargo fuzz`
/// (`cfg(fuzzing)`); no other build has a way to skip verification.
pub fn extract_unverified(request: &WebhookRequest<'_>) -> Vec<Verified> {
    let generic = Extraction {
        event_id: vec![
            extract::Field::header("webhook-id"),
            extract::Field::json("/id"),
            extract::Field::json("/notification/notificationId"),
        ],
        event_type: vec![
            extract::Field::json("/type"),
            extract::Field::json("/event"),
        ],
        order_id: vec![
            extract::Field::json("/data/id"),
            extract::Field::json("/attributes/orderItems/0/orderId"),
        ],
        account: vec![extract::Field::json("/shop_id")],
    };
    let mut parts = generic.extract(request);
    let topic = parts.event_type.clone().unwrap_or_default();
    let mut out = vec![verified(
        Source::Custom,
        request,
        std::mem::take(&mut parts),
    )];
    let specific = [
        (Source::Shopify, shopify::order_id(&topic, request.body)),
        (Source::Etsy, etsy::receipt_id(request.body)),
        (
            Source::Ordermentum,
            ordermentum::order_id(Some(&topic), request.body),
        ),
    ];
    for (source, order_id) in specific {
        let parts = VerifiedParts {
            order_id,
            ..VerifiedParts::default()
        };
        out.push(verified(source, request, parts));
    }
    out.push(verified(
        Source::AmazonSns,
        request,
        amazon_sns::fuzz_notification_parts(request.body, request.account),
    ));
    out
}
