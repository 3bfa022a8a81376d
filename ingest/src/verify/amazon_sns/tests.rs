//! Tests of the SNS verifier: known answers signed by openssl, and every way a message
//! must be refused.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::verify::testing::headers;
use axum::http::Method;
use bytes::Bytes;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};

const CERT: &str = include_str!("../../../../tests/support/keys/sns-signing.pem");
const KEY: &str = include_str!("../../../../tests/support/keys/sns-signing.key");
const CERT_URL: &str = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem";
const TOPIC: &str = "arn:aws:sns:us-west-2:123456789012:orders";
const INNER: &str = r#"{"NotificationType":"ORDER_CHANGE","Payload":{"OrderChangeNotification":{"SellerId":"A3TH9S8BH6GOGM","AmazonOrderId":"903-8868176-2219830"}}}"#;
/// 2027-01-15, inside the test certificate's validity.
const NOW: i64 = 1_800_000_000;

// `openssl dgst -sha1 -sign sns-signing.key` (and -sha256) over the string to sign of
// `notification("1"/"2", …)`, written out by hand in that test.
const V1: &str = "on5jXurvCIWCEutkVBgEJ/4Nu4fzX/udTW1qpfaOm4NCuG+uM4Ni0BtUEQ6lqOx61DuXuGJa9+1BuMrKA5pSwJtxFUQWv3rdpM6tV1zgxr+XL1pmu+JScOE7qvZcdjYDfBcuK55DGWA+MMiaD2kW6sTmHVxrgTQew8oU7ZV2Bt0UzEJFjs4N8kbyxomwS/az5ZMjYNWbWy49JdgFMIdrXPX3UCFkBtB2A6WpQDeL/TT8J9KbcgnFEJKhjKkELTSxE+s8Nqg1U4kPbnSgtba0Tev7g5ahYHZu14gI2jbsVDoxzQecC93y/09B5BT8sbNoWi/E7xfMwlrdT4Iv1LnDhA==";
const V2: &str = "ex7qEflTCgrqmphowLTXLFVYThwVikDtgS8jCQCz76LLREj2otiMODxXmwLUlXwDb3fynORKoFYKRsNiU9SkwMc77Op+FgEU5NsYB9jJkXyS0fRGk2kLWhKEOSswbryEk7iG+/xBgDJ5Prs+h1n6FuWK3e0B6WUA3j8jCraRuRgsaEhj4DG7M0hmeVSGYZI+Dfp6T/UnFFN4TqqQmGs9wMG0NZlr265Z99He5xtr7o0jHQzkcn2GowMucsZKGm9Qj+Fuop6QX7Jb1kYbBv3Muk8yX+0aEJv7byvK2MkthuP/f3D+rMx2prHCpxWT24g2Vkx5io1H1YRowWY6As0Mmg==";

fn notification(version: &str, signature: &str) -> String {
    serde_json::json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Subject": "order",
        "Message": INNER,
        "Timestamp": "2025-05-02T00:54:06.655Z",
        "SignatureVersion": version,
        "Signature": signature,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x"
    })
    .to_string()
}

fn sns(topics: &[&str]) -> SnsVerifier {
    let config = SnsConfig {
        topic_arns: topics.iter().map(|t| (*t).to_owned()).collect(),
        regions: Vec::new(),
        confirm_subscriptions: true,
        tolerance_secs: 0,
    };
    let verifier = SnsVerifier {
        topic_arns: config.topic_arns.iter().cloned().collect(),
        regions: Vec::new(),
        confirm: true,
        // The known answers below were signed in 2025, before the test certificate's
        // validity: their Timestamp is not checked here (see the window's own test).
        tolerance_secs: config.tolerance_secs,
        // No server answers here: a fetch would fail the test with Unavailable.
        http: reqwest::Client::builder().build().unwrap(),
        fetch_timeout: Duration::from_millis(200),
        certs: crate::verify::key_cache::KeyCache::default(),
    };
    verifier.preload(CERT_URL, CERT.as_bytes()).unwrap();
    verifier
}

fn run(verifier: &SnsVerifier, body: &str, now: i64) -> Result<Accepted, VerifyError> {
    let h = headers(&[("x-amz-sns-message-type", "Notification")]);
    let body = Bytes::from(body.to_owned());
    let request = WebhookRequest {
        method: &Method::POST,
        path_and_query: "/webhooks/amazon-sns",
        headers: &h,
        body: &body,
        account: None,
        now,
    };
    futures::executor::block_on(verifier.verify(&request))
}

#[test]
fn the_string_to_sign_is_the_documented_one() {
    let message: Message = serde_json::from_str(&notification("1", V1)).unwrap();
    assert_eq!(
        message.string_to_sign(Kind::Notification).unwrap(),
        format!(
            "Message\n{INNER}\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\norder\n\
             Timestamp\n2025-05-02T00:54:06.655Z\nTopicArn\n{TOPIC}\nType\nNotification\n"
        )
    );
}

#[test]
fn known_answers_for_both_signature_versions() {
    for (version, signature) in [("1", V1), ("2", V2)] {
        match run(&sns(&[TOPIC]), &notification(version, signature), NOW).unwrap() {
            Accepted::Publish(verified) => {
                assert_eq!(
                    verified.record_key(),
                    "amazon-sns:A3TH9S8BH6GOGM:903-8868176-2219830"
                );
                assert_eq!(verified.event_id(), "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324");
                assert_eq!(verified.event_type(), "ORDER_CHANGE");
            }
            Accepted::Reply(reply) => panic!("unexpected {reply:?}"),
        }
    }
    // A v1 signature claimed as v2 does not verify.
    assert_eq!(
        run(&sns(&[TOPIC]), &notification("2", V1), NOW).unwrap_err(),
        VerifyError::Mismatch
    );
}

#[test]
fn tampering_topics_hosts_and_raw_delivery_are_refused() {
    let tampered = notification("1", V1).replace("903-8868176", "903-0000000");
    assert_eq!(
        run(&sns(&[TOPIC]), &tampered, NOW).unwrap_err(),
        VerifyError::Mismatch
    );
    assert_eq!(
        run(
            &sns(&["arn:aws:sns:us-west-2:123456789012:other"]),
            &notification("1", V1),
            NOW
        )
        .unwrap_err(),
        VerifyError::NotAllowed
    );
    let elsewhere = notification("1", V1).replace(
        "https://sns.us-west-2.amazonaws.com/",
        "https://sns.us-west-2.amazonaws.com.evil.example/",
    );
    assert_eq!(
        run(&sns(&[TOPIC]), &elsewhere, NOW).unwrap_err(),
        VerifyError::Untrusted
    );
    let unsigned = notification("1", "");
    assert!(run(&sns(&[TOPIC]), &unsigned, NOW).is_err());
    assert_eq!(
        run(&sns(&[TOPIC]), "not json", NOW).unwrap_err(),
        VerifyError::Malformed
    );
    let v = sns(&[TOPIC]);
    let h = headers(&[(RAW_DELIVERY_HEADER, "true")]);
    let body = Bytes::from(notification("1", V1));
    let request = WebhookRequest {
        method: &Method::POST,
        path_and_query: "/",
        headers: &h,
        body: &body,
        account: None,
        now: NOW,
    };
    assert_eq!(
        futures::executor::block_on(v.verify(&request)).unwrap_err(),
        VerifyError::Missing
    );
}

#[test]
fn a_certificate_outside_its_validity_is_not_trusted() {
    // Before the test certificate's notBefore. (After notAfter, the cached copy is not
    // used and the certificate is fetched again: see the integration tests.)
    assert_eq!(
        run(&sns(&[TOPIC]), &notification("1", V1), 1_000_000_000).unwrap_err(),
        VerifyError::Untrusted
    );
}

#[test]
fn certificate_urls_follow_awss_rule() {
    let none: &[String] = &[];
    for good in [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
        "https://sns.us-gov-west-1.amazonaws.com/x.pem",
    ] {
        assert!(is_certificate_url(good, none), "{good}");
    }
    for bad in [
        "http://sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com/x.crt",
        "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.a.amazonaws.com/x.pem",
        "https://user@sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/x.pem",
        "https://sqs.us-east-1.amazonaws.com/x.pem",
        "https://sns.us_east.amazonaws.com/x.pem",
        "not a url",
    ] {
        assert!(!is_certificate_url(bad, none), "{bad}");
    }
    let only = ["eu-west-1".to_owned()];
    assert!(!is_certificate_url(
        "https://sns.us-east-1.amazonaws.com/x.pem",
        &only
    ));
    assert!(is_certificate_url(
        "https://sns.eu-west-1.amazonaws.com/x.pem",
        &only
    ));
}

#[test]
fn a_signature_by_another_key_or_a_rotated_certificate() {
    // Signed with another RSA key (the test TLS key) under the same certificate URL.
    let other = include_str!("../../../../tests/support/keys/tls-sim.key");
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(other).unwrap();
    let message: Message = serde_json::from_str(&notification("1", V1)).unwrap();
    let signed = message.string_to_sign(Kind::Notification).unwrap();
    let forged = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key).sign(signed.as_bytes());
    let body = notification("1", &BASE64.encode(forged.to_bytes()));
    assert_eq!(
        run(&sns(&[TOPIC]), &body, NOW).unwrap_err(),
        VerifyError::Mismatch
    );
    // AWS rotates signing certificates by URL: a message naming another certificate is
    // verified with that one.
    let rotated_url = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-new.pem";
    let verifier = sns(&[TOPIC]);
    verifier.preload(rotated_url, CERT.as_bytes()).unwrap();
    let body = notification("1", V1).replace(CERT_URL, rotated_url);
    match run(&verifier, &body, NOW).unwrap() {
        Accepted::Publish(verified) => {
            assert_eq!(verified.secret_id(), "SimpleNotificationService-new.pem")
        }
        Accepted::Reply(reply) => panic!("unexpected {reply:?}"),
    }
}

#[test]
fn our_signer_agrees_with_openssl() {
    // The integration tests sign with the rsa crate; check it matches openssl's output.
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(KEY).unwrap();
    let message: Message = serde_json::from_str(&notification("1", V1)).unwrap();
    let signed = message.string_to_sign(Kind::Notification).unwrap();
    let ours = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key).sign(signed.as_bytes());
    assert_eq!(BASE64.encode(ours.to_bytes()), V1);
}

#[test]
fn a_message_from_outside_the_window_is_a_replay() {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(include_str!(
        "../../../../tests/support/keys/sns-signing.key"
    ))
    .unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    // Within the test certificate's validity.
    let at = 1_800_000_000;
    let timestamp = chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let message = serde_json::json!({
        "Type": "Notification",
        "MessageId": "4f7c3a53-0000-4000-8000-00000000beef",
        "TopicArn": TOPIC,
        "Message": "{}",
        "Timestamp": timestamp,
        "SignatureVersion": "2",
        "SigningCertURL": CERT_URL,
    });
    let signed = format!(
        "Message\n{{}}\nMessageId\n4f7c3a53-0000-4000-8000-00000000beef\nTimestamp\n{timestamp}\nTopicArn\n{TOPIC}\nType\nNotification\n"
    );
    let mut message = message;
    message["Signature"] = BASE64
        .encode(signer.sign(signed.as_bytes()).to_bytes())
        .into();
    let body = message.to_string();
    let mut verifier = sns(&[TOPIC]);
    verifier.tolerance_secs = 3600;
    assert!(
        run(&verifier, &body, at + 600).is_ok(),
        "ten minutes late: a retry"
    );
    assert_eq!(
        run(&verifier, &body, at + 7200).unwrap_err(),
        VerifyError::Expired { skew_secs: 7200 }
    );
    assert_eq!(
        run(&verifier, &body, at - 7200).unwrap_err(),
        VerifyError::Expired { skew_secs: -7200 }
    );
}
