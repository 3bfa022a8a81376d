//! Bytes to segments: the delimiters an ISA declares, and the split they give.
//!
//! X12 has no fixed syntax characters. The first segment, ISA, says which bytes separate
//! elements (the byte right after `ISA`), components (ISA16, its last element) and repeated
//! elements (ISA11 from version 00402 on; `U` before), and the byte right after ISA16 ends
//! every segment. Most partners send `*`, `>`, `^` and `~`; some send `|`, or a newline as
//! the terminator. Line breaks after terminators are common and carry no meaning.
//!
//! The ISA is meant to be 106 bytes of fixed-width fields, but the reader does not count on
//! the widths: it finds ISA16 after the sixteenth element separator, so a partner that does
//! not pad is still read.

use serde::Serialize;

use super::error::{quote, ElementFault, X12Error};

/// Elements in an ISA segment.
const ISA_ELEMENTS: usize = 16;

/// The syntax characters of one interchange, as its ISA declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delimiters {
    /// Between elements: the byte after `ISA`.
    pub element: u8,
    /// Between the components of a composite element: ISA16.
    pub component: u8,
    /// Between repeats of an element: ISA11 when it is not a letter (00402 and later).
    pub repetition: Option<u8>,
    /// After each segment: the byte after ISA16.
    pub segment: u8,
    /// What followed the ISA's terminator, so an answer can be laid out alike.
    pub line_break: LineBreak,
}

/// Line breaks after segment terminators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineBreak {
    /// None: the whole interchange on one line.
    None,
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
}

impl LineBreak {
    /// The bytes of this line break.
    pub fn as_str(self) -> &'static str {
        match self {
            LineBreak::None => "",
            LineBreak::Lf => "\n",
            LineBreak::CrLf => "\r\n",
        }
    }
}

/// One segment: its id and its elements, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Segment<'a> {
    /// Ordinal in the interchange, ISA = 1.
    pub(super) position: usize,
    /// `ISA`, `BEG`, `PO1`, …
    pub(super) id: &'a str,
    /// The elements after the id; `elements[0]` is element 01.
    elements: Vec<&'a [u8]>,
}

impl<'a> Segment<'a> {
    /// Element `n` (01 = first after the id) as trimmed text; `None` when absent or blank.
    ///
    /// # Errors
    /// When the element is not UTF-8.
    pub(super) fn text(&self, n: usize) -> Result<Option<&'a str>, X12Error> {
        let Some(raw) = n.checked_sub(1).and_then(|i| self.elements.get(i)) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(raw)
            .map_err(|_| self.fault(n, ElementFault::InvalidCharacter, raw))?
            .trim();
        Ok((!text.is_empty()).then_some(text))
    }

    /// Element `n`, which must be there.
    ///
    /// # Errors
    /// When it is absent, blank or not UTF-8.
    pub(super) fn required(&self, n: usize) -> Result<&'a str, X12Error> {
        self.text(n)?
            .ok_or_else(|| self.fault(n, ElementFault::Missing, b""))
    }

    /// An error about element `n`, quoting `value`.
    pub(super) fn fault(&self, n: usize, fault: ElementFault, value: &[u8]) -> X12Error {
        X12Error::Element {
            position: self.position,
            segment: self.id.to_owned(),
            element: n,
            fault,
            value: quote(value),
        }
    }

    /// The segment as it was sent, without its terminator: the id and every element,
    /// joined by `separator`.
    pub(super) fn raw(&self, separator: u8) -> Vec<u8> {
        let mut out = self.id.as_bytes().to_vec();
        for element in &self.elements {
            out.push(separator);
            out.extend_from_slice(element);
        }
        out
    }

    /// How many elements the segment has, trailing empty ones included.
    pub(super) fn len(&self) -> usize {
        self.elements.len()
    }
}

/// The delimiters and the segments of `bytes`, which must begin with an ISA (after an
/// optional byte-order mark and white space).
///
/// # Errors
/// When there is no ISA, its delimiters are unusable, or a segment is empty, has no valid id
/// or is not terminated.
pub(super) fn split(bytes: &[u8]) -> Result<(Delimiters, Vec<Segment<'_>>), X12Error> {
    let data = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    let data = data.get(start..).unwrap_or_default();
    let delimiters = delimiters(data)?;

    let mut segments = Vec::new();
    let mut rest = data;
    loop {
        rest = skip_line_breaks(rest);
        if rest.is_empty() {
            break;
        }
        let position = segments.len() + 1;
        let Some(end) = rest.iter().position(|&b| b == delimiters.segment) else {
            if rest.iter().all(u8::is_ascii_whitespace) {
                break;
            }
            return Err(X12Error::Unterminated { position });
        };
        let (body, after) = rest.split_at(end);
        rest = after.get(1..).unwrap_or_default();
        // A CRLF file whose terminator is the LF leaves a CR on every segment.
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        segments.push(segment(position, body, delimiters.element)?);
    }
    Ok((delimiters, segments))
}

fn skip_line_breaks(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn segment(position: usize, body: &[u8], separator: u8) -> Result<Segment<'_>, X12Error> {
    if body.is_empty() {
        return Err(X12Error::EmptySegment { position });
    }
    let mut parts = body.split(move |&b| b == separator);
    let raw_id = parts.next().unwrap_or_default();
    let id = std::str::from_utf8(raw_id)
        .ok()
        .filter(|id| {
            (2..=3).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
        .ok_or_else(|| X12Error::BadSegmentId {
            position,
            id: quote(raw_id),
        })?;
    Ok(Segment {
        position,
        id,
        elements: parts.collect(),
    })
}

/// The delimiters declared by the ISA at the start of `data`.
fn delimiters(data: &[u8]) -> Result<Delimiters, X12Error> {
    let bad = |reason| X12Error::BadDelimiters {
        position: 1,
        reason,
    };
    if !data.starts_with(b"ISA") {
        return Err(X12Error::NotAnInterchange {
            position: 1,
            found: quote(data.get(..3).unwrap_or(data)),
        });
    }
    let Some(&element) = data.get(3) else {
        return Err(bad("the ISA ends before its first element separator"));
    };
    // The 16th separator opens ISA16 (one byte, the component separator); the segment
    // terminator follows it.
    let isa16 = data
        .iter()
        .enumerate()
        .skip(3)
        .filter(|&(_, &b)| b == element)
        .nth(ISA_ELEMENTS - 1)
        .map(|(at, _)| at + 1);
    let (Some(&component), Some(&segment)) = (
        isa16.and_then(|at| data.get(at)),
        isa16.and_then(|at| data.get(at + 1)),
    ) else {
        return Err(bad(
            "the ISA ends before its 16 elements and segment terminator",
        ));
    };
    let isa11 = data.split(|&b| b == element).nth(11).unwrap_or_default();
    let repetition = match isa11 {
        [b] if !b.is_ascii_alphanumeric() => Some(*b),
        _ => None,
    };
    let line_break = match isa16.and_then(|at| data.get(at + 2..at + 4)) {
        Some(b"\r\n") => LineBreak::CrLf,
        Some([b'\n', ..]) => LineBreak::Lf,
        Some(_) | None => LineBreak::None,
    };
    let delimiters = Delimiters {
        element,
        component,
        repetition,
        segment,
        line_break,
    };
    let all = [Some(element), Some(component), repetition, Some(segment)];
    let all: Vec<u8> = all.into_iter().flatten().collect();
    if all
        .iter()
        .any(|b| b.is_ascii_alphanumeric() || *b == b' ' || !b.is_ascii())
    {
        return Err(bad(
            "a delimiter is a letter, a digit, a space or not ASCII",
        ));
    }
    if all
        .iter()
        .enumerate()
        .any(|(i, b)| all.get(i + 1..).unwrap_or_default().contains(b))
    {
        return Err(bad("two delimiters are the same byte"));
    }
    // A CR or LF element separator would be swallowed as a line break.
    if [element, component]
        .iter()
        .any(|b| *b == b'\r' || *b == b'\n')
    {
        return Err(bad("the element or component separator is a line break"));
    }
    Ok(delimiters)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ISA: &str =
        "ISA*00*          *00*          *ZZ*ACMEBUYER      *ZZ*WIDGETSELLER   *261202*1430*U*00401*000000905*1*P*>~";

    fn ids(segments: &[Segment<'_>]) -> Vec<String> {
        segments.iter().map(|s| s.id.to_owned()).collect()
    }

    #[test]
    fn reads_the_delimiters_of_the_isa() {
        let text = format!("{ISA}\nGS*PO~\n");
        let (d, segments) = split(text.as_bytes()).unwrap();
        assert_eq!((d.element, d.component, d.segment), (b'*', b'>', b'~'));
        assert_eq!(d.repetition, None);
        assert_eq!(d.line_break, LineBreak::Lf);
        assert_eq!(ids(&segments), ["ISA", "GS"]);
        assert_eq!(segments[0].len(), 16);
        assert_eq!(segments[0].text(6).unwrap(), Some("ACMEBUYER"));
        assert_eq!(segments[0].text(16).unwrap(), Some(">"));
    }

    #[test]
    fn reads_other_delimiters_and_a_repetition_separator() {
        let isa = ISA.replace('*', "|").replace("|U|00401", "|^|00501");
        let text = isa.replace('~', "\n") + "GS|PO|A\nST|850\n";
        let (d, segments) = split(text.as_bytes()).unwrap();
        assert_eq!(
            (d.element, d.segment, d.repetition),
            (b'|', b'\n', Some(b'^'))
        );
        // The terminator is the LF: nothing more follows it.
        assert_eq!(d.line_break, LineBreak::None);
        assert_eq!(ids(&segments), ["ISA", "GS", "ST"]);
        assert_eq!(segments[1].text(2).unwrap(), Some("A"));
        assert_eq!(segments[2].text(1).unwrap(), Some("850"));

        // CRLF with no other terminator: the CR is the terminator, the LF a line break.
        let text = isa.replace('~', "\r\n") + "GS|PO|A\r\nST|850\r\n";
        let (d, segments) = split(text.as_bytes()).unwrap();
        assert_eq!((d.segment, d.line_break), (b'\r', LineBreak::Lf));
        assert_eq!(ids(&segments), ["ISA", "GS", "ST"]);
        assert_eq!(segments[2].text(1).unwrap(), Some("850"));
    }

    #[test]
    fn tolerates_crlf_a_bom_and_leading_blanks() {
        let text = format!("\u{feff}\r\n  {ISA}\r\nGS*PO~\r\n\r\n");
        let (d, segments) = split(text.as_bytes()).unwrap();
        assert_eq!(d.line_break, LineBreak::CrLf);
        assert_eq!(ids(&segments), ["ISA", "GS"]);
    }

    #[test]
    fn reads_an_unpadded_isa() {
        let text = "ISA*00**00**ZZ*A*ZZ*B*261202*1430*U*00401*1*0*P*:~GS*PO~";
        let (d, segments) = split(text.as_bytes()).unwrap();
        assert_eq!((d.component, d.segment), (b':', b'~'));
        assert_eq!(segments.len(), 2);
    }

    #[test]
    fn refuses_what_is_not_an_interchange() {
        assert!(matches!(
            split(b"<?xml version"),
            Err(X12Error::NotAnInterchange { .. })
        ));
        assert!(matches!(split(b""), Err(X12Error::NotAnInterchange { .. })));
        assert!(matches!(
            split(&ISA.as_bytes()[..60]),
            Err(X12Error::BadDelimiters { .. })
        ));
        let same = ISA.replace('>', "*");
        assert!(matches!(
            split(same.as_bytes()),
            Err(X12Error::BadDelimiters { .. })
        ));
        let letter = ISA.replace('~', "X");
        assert!(matches!(
            split(letter.as_bytes()),
            Err(X12Error::BadDelimiters { .. })
        ));
    }

    #[test]
    fn names_the_segment_at_fault() {
        let cut = format!("{ISA}GS*PO~ST*850");
        assert_eq!(
            split(cut.as_bytes()),
            Err(X12Error::Unterminated { position: 3 })
        );
        let empty = format!("{ISA}GS*PO~~");
        assert_eq!(
            split(empty.as_bytes()),
            Err(X12Error::EmptySegment { position: 3 })
        );
        let id = format!("{ISA}GS*PO~po1*1~");
        assert!(matches!(
            split(id.as_bytes()),
            Err(X12Error::BadSegmentId { position: 3, .. })
        ));
    }

    #[test]
    fn elements_are_trimmed_and_checked() {
        // A Latin-1 byte in N104.
        let mut bytes = format!("{ISA}N1*ST* ACME **").into_bytes();
        bytes.extend_from_slice(b"\xE9~");
        let (_, segments) = split(&bytes).unwrap();
        let n1 = &segments[1];
        assert_eq!(n1.text(2).unwrap(), Some("ACME"));
        assert_eq!(n1.text(3).unwrap(), None);
        assert_eq!(n1.text(9).unwrap(), None);
        assert!(matches!(
            n1.required(3),
            Err(X12Error::Element {
                position: 2,
                element: 3,
                fault: ElementFault::Missing,
                ..
            })
        ));
        assert!(matches!(
            n1.text(4),
            Err(X12Error::Element {
                fault: ElementFault::InvalidCharacter,
                ..
            })
        ));
    }
}
