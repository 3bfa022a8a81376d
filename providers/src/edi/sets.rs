//! One transaction set as an interchange of its own: what `orderbridge poll` publishes to
//! the raw topic for each purchase order of a partner's file, so a record holds one order
//! (keyed by its PO number) and reprocessing it never needs the file again.
//!
//! The set's segments, the interchange's ISA and the group's GS are the partner's bytes as
//! sent; only the trailers are new, `GE*1*<GS06>` and `IEA*1*<ISA13>`, since the extract
//! holds one group of one set. Delimiters and line breaks stay the partner's.

use super::error::X12Error;
use super::segments::{split, Segment};

/// One transaction set, enveloped alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetBytes {
    /// GS06 of its group.
    pub group_control_number: String,
    /// ST02.
    pub control_number: String,
    /// ST01 (`850`).
    pub set_id: String,
    /// ISA, GS, ST … SE, GE, IEA.
    pub bytes: Vec<u8>,
}

/// Every transaction set of the interchange `bytes`, each enveloped alone (see the module
/// docs). Sets are found by their ST and SE; whether they are sound is [`super::read_850`]'s
/// to say.
///
/// # Errors
/// When `bytes` cannot be split into segments or has no ISA.
pub fn single_sets(bytes: &[u8]) -> Result<Vec<SetBytes>, X12Error> {
    let (delimiters, segments) = split(bytes)?;
    let end = |out: &mut Vec<u8>| {
        out.push(delimiters.segment);
        out.extend_from_slice(delimiters.line_break.as_str().as_bytes());
    };
    let text = |segment: &Segment<'_>, n: usize| -> String {
        segment
            .text(n)
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned()
    };
    let Some(isa) = segments.first().filter(|s| s.id == "ISA") else {
        return Err(X12Error::NotAnInterchange {
            position: 1,
            found: String::new(),
        });
    };
    let isa13 = text(isa, 13);
    let separator = delimiters.element;
    let mut sets = Vec::new();
    let mut group: Option<&Segment<'_>> = None;
    let mut open: Option<(String, String, Vec<u8>)> = None;
    for segment in &segments[1..] {
        match segment.id {
            "GS" => group = Some(segment),
            "ST" => {
                let mut out = isa.raw(separator);
                end(&mut out);
                if let Some(gs) = group {
                    out.extend(gs.raw(separator));
                    end(&mut out);
                }
                out.extend(segment.raw(separator));
                end(&mut out);
                open = Some((text(segment, 1), text(segment, 2), out));
            }
            "SE" => {
                if let Some((set_id, control_number, mut out)) = open.take() {
                    out.extend(segment.raw(separator));
                    end(&mut out);
                    let gs06 = group.map(|gs| text(gs, 6)).unwrap_or_default();
                    let e = char::from(separator);
                    out.extend(format!("GE{e}1{e}{gs06}").as_bytes());
                    end(&mut out);
                    out.extend(format!("IEA{e}1{e}{isa13}").as_bytes());
                    end(&mut out);
                    sets.push(SetBytes {
                        group_control_number: gs06,
                        control_number,
                        set_id,
                        bytes: out,
                    });
                }
            }
            _ => {
                if let Some((_, _, out)) = open.as_mut() {
                    out.extend(segment.raw(separator));
                    end(out);
                }
            }
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::edi::read_850;

    fn fixture(case: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/x12")
                .join(case)
                .join("interchange.x12"),
        )
        .unwrap()
    }

    #[test]
    fn each_set_alone_reads_as_the_same_order() {
        for case in ["po-sample", "po-two-orders", "po-two-groups"] {
            let bytes = fixture(case);
            let whole = read_850(&bytes).unwrap();
            let sets = single_sets(&bytes).unwrap();
            let orders: Vec<_> = whole.orders().collect();
            assert_eq!(sets.len(), orders.len(), "{case}");
            for (set, order) in sets.iter().zip(orders) {
                let alone = read_850(&set.bytes).unwrap_or_else(|e| panic!("{case}: {e}"));
                let read: Vec<_> = alone.orders().collect();
                assert_eq!(read.len(), 1, "{case}");
                assert_eq!(read[0].number, order.number, "{case}");
                assert_eq!(read[0].lines, order.lines, "{case}");
                assert_eq!(set.control_number, order.control_number);
                assert_eq!(set.group_control_number, order.group_control_number);
            }
        }
    }

    #[test]
    fn the_partners_bytes_are_kept() {
        let bytes = fixture("po-two-groups");
        let text = String::from_utf8(bytes.clone()).unwrap();
        for set in single_sets(&bytes).unwrap() {
            let alone = String::from_utf8(set.bytes).unwrap();
            for line in alone
                .lines()
                .filter(|l| !l.starts_with("GE") && !l.starts_with("IEA"))
            {
                assert!(text.contains(line), "{line:?} is not the partner's");
            }
        }
    }
}
