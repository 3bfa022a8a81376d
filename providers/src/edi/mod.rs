//! EDI: purchase orders that partners send as ANSI X12 850 files, and the 997
//! acknowledgments they expect back. Pure functions over bytes: no I/O, no clock, no Kafka.
//!
//! # Why not a crate
//!
//! No X12 crate fits a reader of partners' 850s (as of 2026-12): `x12-types` (0.12, MIT or
//! Apache-2.0, actively released) has an 850 only for 005010 while most partners still send
//! 004010, assumes the `*` and `~` delimiters, refuses segments it does not expect and
//! reports no segment positions, which a 997 must quote; `edi` (0.4) reads generic segments
//! but is GPL-3.0; the rest are tokenizers or stale. The envelope rules and the few
//! segments an order needs are small and fixed by the standard, so they are written here,
//! lenient where partners vary (delimiters, line breaks, unknown segments) and strict where
//! the standard checks (control numbers and counts).
//!
//! # X12 in one page
//!
//! An X12 file is an *interchange*: a flat list of *segments*, each an id and its
//! *elements*, separated by delimiters the file itself declares in its first segment:
//!
//! ```text
//! ISA*00*          *00*          *ZZ*ACMEBUYER      *ZZ*WIDGETSELLER   *261202*1430*U*00401*000000905*1*P*>~
//! GS*PO*ACMEBUYER*WIDGETSELLER*20261202*1430*905*X*004010~
//! ST*850*0001~
//! BEG*00*SA*PO-45001**20261202~
//! …
//! SE*14*0001~
//! GE*1*905~
//! IEA*1*000000905~
//! ```
//!
//! Here `*` separates elements (the byte after `ISA`), `>` components (ISA16) and `~` ends
//! segments (the byte after ISA16); partners may choose others, and a line break after `~` is
//! only layout. Elements are numbered from 01 after the id: `BEG03` is `PO-45001`.
//!
//! Three envelopes nest, each header carrying a control number its trailer repeats, each
//! trailer counting what it closes:
//!
//! | envelope | header | trailer | the trailer's count |
//! |---|---|---|---|
//! | interchange | ISA (fixed width; sender ISA06, receiver ISA08, control ISA13, `T`est or `P`roduction ISA15) | IEA | IEA01 = functional groups |
//! | functional group | GS (kind GS01: `PO` for 850s, `FA` for 997s; control GS06; version GS08) | GE | GE01 = transaction sets |
//! | transaction set | ST (type ST01: `850`; control ST02) | SE | SE01 = segments, ST and SE included |
//!
//! The counts are the only integrity check X12 has: a file cut short or edited by hand
//! shows up there. A set that fails its checks is rejected alone; a group that fails its
//! GE is rejected whole; an interchange whose ISA or IEA is wrong cannot be read
//! ([`read_850`] returns the error; answering it would take a TA1, which is not written
//! here).
//!
//! # The 850 purchase order
//!
//! [`read_850`] maps each 850 to a [`PurchaseOrder`], what an ERP needs to book it:
//! - `BEG` — purpose (`00` original, `01` cancel, `05` replace), type, PO number, PO date;
//! - `CUR` — the currency (absent: the partner's default, which the partner agreement names);
//! - `REF`, `DTM` — references (department, vendor number, …) and dates (delivery
//!   requested, …);
//! - `N1` loops with `N3`/`N4` — ship-to, bill-to, buyer: name, id, address;
//! - `PO1` loops — line number, quantity, unit, unit price, price basis, and the product ids
//!   in qualifier/id pairs (`VP` vendor part, `BP` buyer part, `SK` SKU, `UP` UPC, `IN`
//!   buyer item); each following `PID` adds a description, and `REF`, `DTM` and `N1` loops
//!   after a `PO1` belong to that line;
//! - `CTT` — the number of lines, checked against the `PO1`s read.
//!
//! Quantities and prices stay decimal text, checked but never turned into floats. Dates
//! are CCYYMMDD, read as dates.
//!
//! Ignored on purpose, and skipped wherever they appear: contacts (`PER`), terms (`ITD`),
//! carrier and routing (`TD5`, `FOB`), allowances and charges (`SAC`), taxes (`TXI`),
//! messages (`MSG`, `N9`), schedules (`SCH`), sublines (`SLN`), amounts (`AMT`), a line's
//! own `CUR`, a `PID` before the first line, `DTM03`/`DTM04` times, `N2` names. The CTT02
//! hash total is kept as sent but not checked: X12 sums it without regard to decimal
//! points and truncates it, and partners differ in how. Only `REF`s and `DTM`s after the
//! first `PO1` are attached to lines, so a heading `REF` inside an `N1` loop is the order's.
//!
//! # The 997 acknowledgment
//!
//! [`write_997`] answers every functional group read: per transaction set an `AK2` and an
//! `AK5` (accepted, or rejected with why, plus `AK3`/`AK4` naming the segment and element at
//! fault), per group an `AK9` (accepted, partially accepted or rejected, with counts). The
//! caller passes fresh control numbers ([`AckControls`]) and the time; the answer uses the
//! partner's own delimiters and line breaks.
//!
//! # Using it
//!
//! ```text
//! let hash = content_hash(&bytes);                      // claim the file once
//! let read = read_850(&bytes)?;                         // Err: dead-letter the file
//! for order in read.orders() { publish(order) }         // serde JSON
//! for set in read.rejected() { dead_letter(set) }       // with set.error
//! let ack = write_997(&read, controls, now)             // send back
//! ```
//!
//! Layout: `segments.rs` (bytes to segments, the delimiters), `envelope.rs` (segments to
//! groups and sets, the counts), `order.rs` (the purchase order published), `po850.rs`
//! (the 850 read into it), `ack997.rs` (the 997), `error.rs`.
//! Fixtures: `tests/fixtures/x12/<case>/` with `interchange.x12` and the expected
//! `expected.json` (or `expected-error.json`) and `ack-997.x12`; a folder added is a case
//! tested.

mod ack997;
mod envelope;
mod error;
mod order;
mod po850;
mod segments;
mod sets;

use sha2::{Digest, Sha256};

pub use ack997::{write_997, AckControls, ControlNumber};
pub use envelope::PartnerId;
pub use error::{ElementFault, Envelope, X12Error};
pub use order::{DateReference, Line, Party, ProductId, PurchaseOrder, Reference, Totals};
pub use po850::{read_850, Group850, Interchange850, RejectedSet};
pub use segments::{Delimiters, LineBreak};
pub use sets::{single_sets, SetBytes};

/// The hex SHA-256 of `bytes`: the key under which a file is claimed, so a file delivered
/// twice is read once.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::{Path, PathBuf};

    use chrono::{NaiveDate, NaiveDateTime};

    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/x12")
    }

    fn controls() -> AckControls {
        AckControls {
            interchange: ControlNumber::new(1001).unwrap(),
            group: ControlNumber::new(1001).unwrap(),
        }
    }

    fn at() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 2)
            .unwrap()
            .and_hms_opt(14, 31, 0)
            .unwrap()
    }

    /// Each case's read (or error) and 997 against its golden files; `UPDATE_GOLDEN=1`
    /// writes them instead.
    #[test]
    fn every_fixture_reads_and_acknowledges_as_expected() {
        let update = std::env::var_os("UPDATE_GOLDEN").is_some();
        let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_dir())
            .collect();
        cases.sort();
        assert!(cases.len() >= 6, "{cases:?}");
        let mut failures = Vec::new();
        let mut golden = |path: PathBuf, actual: String| {
            if update && !path.exists() {
                std::fs::write(&path, &actual).unwrap();
            }
            match std::fs::read_to_string(&path) {
                Ok(expected) if expected == actual => {}
                Ok(_) => failures.push(format!("{}: differs; got\n{actual}", path.display())),
                Err(err) => failures.push(format!("{}: {err}", path.display())),
            }
        };
        for case in cases {
            let bytes = std::fs::read(case.join("interchange.x12")).unwrap();
            match read_850(&bytes) {
                Ok(read) => {
                    let json = serde_json::to_string_pretty(&read).unwrap() + "\n";
                    golden(case.join("expected.json"), json);
                    let ack = write_997(&read, controls(), at()).unwrap();
                    golden(case.join("ack-997.x12"), ack);
                }
                Err(err) => {
                    let json = serde_json::to_string_pretty(&err).unwrap() + "\n";
                    golden(case.join("expected-error.json"), json);
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    fn fixture(case: &str) -> Vec<u8> {
        std::fs::read(fixtures().join(case).join("interchange.x12")).unwrap()
    }

    #[test]
    fn reads_the_sample_purchase_order() {
        let read = read_850(&fixture("po-sample")).unwrap();
        assert_eq!(read.control_number, "000000905");
        assert_eq!(read.sender.id, "ACMEBUYER");
        assert_eq!(read.receiver.id, "WIDGETSELLER");
        let orders: Vec<_> = read.orders().collect();
        assert_eq!(orders.len(), 1);
        let order = orders[0];
        assert_eq!(order.number, "PO-45001");
        assert_eq!(order.date, NaiveDate::from_ymd_opt(2026, 12, 2).unwrap());
        assert_eq!(order.currency, None);
        assert_eq!(order.references.len(), 2);
        assert_eq!(order.dates[0].qualifier, "002");
        assert_eq!(order.parties[0].entity, "ST");
        assert_eq!(order.parties[0].address, ["100 WAREHOUSE WAY"]);
        assert_eq!(order.parties[0].country.as_deref(), Some("US"));
        let line = &order.lines[1];
        assert_eq!(line.quantity.as_deref(), Some("10"));
        assert_eq!(line.unit.as_deref(), Some("CA"));
        assert_eq!(line.unit_price.as_deref(), Some("48.00"));
        assert_eq!(line.product_ids[1].qualifier, "BP");
        assert_eq!(line.descriptions, ["GADGET CASE OF 12"]);
        assert_eq!(
            order.totals,
            Some(Totals {
                line_count: 2,
                hash_total: Some("34".into())
            })
        );
        let json = serde_json::to_value(order).unwrap();
        assert_eq!(json["date"], "2026-12-02");
        assert_eq!(json["lines"][0]["unit_price"], "12.50");
    }

    #[test]
    fn reads_every_order_of_every_group() {
        let read = read_850(&fixture("po-two-orders")).unwrap();
        let numbers: Vec<_> = read.orders().map(|o| o.number.as_str()).collect();
        assert_eq!(numbers, ["PO-45002", "PO-45003"]);
        let read = read_850(&fixture("po-two-groups")).unwrap();
        assert!(read.test);
        let groups: Vec<_> = read
            .orders()
            .map(|o| o.group_control_number.as_str())
            .collect();
        assert_eq!(groups, ["17", "18"]);
        assert_eq!(read.rejected().count(), 0);
    }

    #[test]
    fn rejects_a_bad_se_count_and_a_ctt_mismatch() {
        let read = read_850(&fixture("po-bad-se-count")).unwrap();
        assert_eq!(read.orders().count(), 0);
        let rejected: Vec<_> = read.rejected().collect();
        assert_eq!(
            rejected[0].error,
            X12Error::CountMismatch {
                position: 16,
                envelope: Envelope::Transaction,
                declared: "13".into(),
                actual: 14
            }
        );
        let read = read_850(&fixture("po-ctt-mismatch")).unwrap();
        let rejected: Vec<_> = read.rejected().collect();
        assert_eq!(
            rejected[0].error,
            X12Error::LineCount {
                position: 15,
                declared: 3,
                actual: 2
            }
        );
    }

    #[test]
    fn hashes_the_content() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// A small deterministic generator (xorshift), so a failure can be replayed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
        }
    }

    /// Reads `bytes` and, when it reads, answers it; the answer must itself be a sound
    /// interchange. Returns whether `bytes` read.
    fn survives(bytes: &[u8]) -> bool {
        let Ok(read) = read_850(bytes) else {
            return false;
        };
        let _ = serde_json::to_string(&read).unwrap();
        if let Some(ack) = write_997(&read, controls(), at()) {
            let reread = read_850(ack.as_bytes())
                .unwrap_or_else(|err| panic!("{err}: {ack}\nanswering {bytes:?}"));
            // A 997 is no purchase order, but its envelopes must be sound.
            for group in &reread.groups {
                assert!(
                    matches!(
                        group.error,
                        Some(X12Error::Unsupported {
                            envelope: Envelope::Group,
                            ..
                        })
                    ),
                    "{:?}: {ack}",
                    group.error
                );
            }
        }
        true
    }

    #[test]
    fn mangled_input_never_panics() {
        let cases = [
            "po-sample",
            "po-two-orders",
            "po-two-groups",
            "po-ctt-mismatch",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut read = 0;
        for case in cases {
            let original = fixture(case);
            assert!(survives(&original));
            // Cut short at every byte.
            for end in 0..original.len() {
                survives(&original[..end]);
            }
            // Bytes replaced, inserted or removed; often a delimiter, to bend the structure.
            let specials = b"*|>:^~\r\n ISAGSTE0123456789\xff";
            for _ in 0..3000 {
                let mut bytes = original.clone();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(bytes.len());
                    let byte = if rng.below(2) == 0 {
                        specials[rng.below(specials.len())]
                    } else {
                        u8::try_from(rng.next() & 0xff).unwrap()
                    };
                    match if bytes.is_empty() { 1 } else { rng.below(3) } {
                        0 => bytes[at] = byte,
                        1 => bytes.insert(at, byte),
                        _ => {
                            bytes.remove(at);
                        }
                    }
                }
                if survives(&bytes) {
                    read += 1;
                }
            }
        }
        // Many mangled inputs still read (a change inside a name is harmless), so the 997
        // path was exercised too.
        assert!(read > 100, "{read}");
    }
}
