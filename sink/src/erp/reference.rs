//! The ERP's external reference for an order, derived from the order key.
//!
//! It must be stable (the same order always maps to the same reference, or idempotency is
//! lost), unique across sources and accounts, and fit the strictest target: Business Central's
//! `externalDocumentNumber` is `Code[35]` (upper-cased), NetSuite's `externalId` allows only
//! letters, digits, `_` and `-`. So the reference is `^[A-Z0-9-]{1,35}$`:
//!
//! `<SRC>-<ACCOUNT HASH>-<ORDER ID>`, e.g. `SHOP-CAZHE1JD14-450789469`, where SRC is the first
//! four letters of the source and the account hash 50 bits of SHA-256 of the account in ten
//! Crockford base32 digits (a million accounts collide with a chance of about 1 in 2,000,
//! which a test of a million generated accounts holds to none; 24 bits, as before, collided
//! among ten thousand). If the sanitized order id does not fit in the 19 characters left, or
//! sanitizing changed it, `H` and 80 bits of SHA-256 of the whole order key (sixteen base32
//! digits) replace it.

use sha2::{Digest, Sha256};

/// The longest reference any adapter accepts (Business Central `Code[35]`).
pub const MAX_LEN: usize = 35;

/// Digits of the account hash (5 bits each).
const ACCOUNT_DIGITS: usize = 10;
/// Digits of the hash that replaces an order id that does not fit.
const KEY_DIGITS: usize = 16;

/// The external reference for `order_key` (`<source>:<account>:<order id>`).
pub fn external_reference(order_key: &str) -> String {
    let mut parts = order_key.splitn(3, ':');
    let source = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    let order_id = parts.next().unwrap_or_default();

    let prefix: String = sanitize(source)
        .chars()
        .filter(|c| *c != '-')
        .take(4)
        .collect();
    let account_hash = base32(&Sha256::digest(account.as_bytes()), ACCOUNT_DIGITS);
    let head = format!("{prefix}-{account_hash}-");
    let id = sanitize(order_id);
    if !id.is_empty() && head.len() + id.len() <= MAX_LEN && id == order_id.to_ascii_uppercase() {
        format!("{head}{id}")
    } else {
        // The id does not fit or had characters we would have to change (two ids could then
        // collide): use a hash of the whole key instead.
        let hash = base32(&Sha256::digest(order_key.as_bytes()), KEY_DIGITS);
        format!("{head}H{hash}")
    }
}

/// The first `digits` × 5 bits of `bytes` in Crockford's base32 (digits and upper-case
/// letters without I, L, O, U: nothing a reader can mistake, all inside `[A-Z0-9]`).
fn base32(bytes: &[u8], digits: usize) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut out = String::with_capacity(digits);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 && out.len() < digits {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
        if out.len() == digits {
            break;
        }
    }
    out
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fits(reference: &str) -> bool {
        !reference.is_empty()
            && reference.len() <= MAX_LEN
            && reference
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn shopify_ids_stay_readable() {
        let reference = external_reference("shopify:example-store.myshopify.com:450789469");
        assert!(
            reference.starts_with("SHOP-") && reference.ends_with("-450789469"),
            "{reference}"
        );
        assert!(fits(&reference));
    }

    #[test]
    fn is_stable_and_distinguishes_accounts() {
        let a = external_reference("shopify:a.myshopify.com:1");
        assert_eq!(a, external_reference("shopify:a.myshopify.com:1"));
        assert_ne!(a, external_reference("shopify:b.myshopify.com:1"));
    }

    #[test]
    fn accounts_do_not_collide() {
        // These two collided when the account hash kept 24 bits.
        assert_ne!(
            external_reference("standard-webhooks:4163:100"),
            external_reference("standard-webhooks:8864:100")
        );
        // A million tenants, one order id: a million references.
        let mut seen = std::collections::HashSet::with_capacity(1_000_000);
        for account in 0..1_000_000u32 {
            let reference = external_reference(&format!("standard-webhooks:{account}:100"));
            assert!(fits(&reference), "{reference}");
            assert!(seen.insert(reference), "account {account} collides");
        }
    }

    #[test]
    fn long_or_odd_ids_are_hashed_and_still_fit() {
        for key in [
            "shopify:shop:gid://shopify/Order/450789469",
            "shopify:shop:0123456789012345678901234567890123456789",
            "shopify:shop:abc",
            "shopify:shop:",
        ] {
            let reference = external_reference(key);
            assert!(fits(&reference), "{key} -> {reference}");
        }
        // Two ids that sanitize to the same text must not collide.
        assert_ne!(
            external_reference("shopify:s:a/b"),
            external_reference("shopify:s:a.b")
        );
    }
}
