//! Minimal PIDF (RFC 3863, `application/pidf+xml`): the presentity, its tuples with basic
//! status (`open`/`closed`), contact and notes, and the document-level notes. Elements from
//! other namespaces (RPID, `im:`, vendor extensions) are skipped when parsing and never
//! written.

use std::fmt::Write as _;

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// The PIDF namespace.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:pidf";

/// The media type of a PIDF document.
pub const CONTENT_TYPE: &str = "application/pidf+xml";

/// Why a PIDF document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PidfError {
    /// Not well-formed XML.
    #[error("PIDF: malformed XML at byte {offset}: {message}")]
    Xml {
        /// Byte offset where the reader stopped.
        offset: u64,
        /// The XML reader's message.
        message: String,
    },
    /// The root element is not `<presence>` in the PIDF namespace.
    #[error("PIDF: root element is not <presence> in {NAMESPACE}")]
    NotPidf,
    /// `<presence>` has no `entity` attribute.
    #[error("PIDF: <presence> has no entity attribute")]
    MissingEntity,
    /// A `<tuple>` has no `id` attribute.
    #[error("PIDF: <tuple> has no id attribute")]
    MissingTupleId,
    /// `<basic>` is neither `open` nor `closed`.
    #[error("PIDF: <basic> is \"{0}\", not open or closed")]
    BadBasic(String),
}

/// `<basic>`: whether the presentity is reachable through the tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    /// `open`.
    Open,
    /// `closed`.
    Closed,
}

impl Basic {
    /// `"open"` or `"closed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Basic::Open => "open",
            Basic::Closed => "closed",
        }
    }
}

/// A `<note>`, with its `xml:lang` if given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note {
    /// The text.
    pub text: String,
    /// The `xml:lang` attribute.
    pub lang: Option<String>,
}

/// A `<tuple>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tuple {
    /// The `id` attribute.
    pub id: String,
    /// `<status><basic>`.
    pub basic: Option<Basic>,
    /// `<contact>`: a URI.
    pub contact: Option<String>,
    /// `<contact priority="…">`.
    pub priority: Option<f32>,
    /// The tuple's notes.
    pub notes: Vec<Note>,
    /// `<timestamp>`, as written.
    pub timestamp: Option<String>,
}

/// A `<presence>` document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Presence {
    /// The `entity` attribute (`pres:alice@example.com` or a SIP URI).
    pub entity: String,
    /// The tuples, in document order.
    pub tuples: Vec<Tuple>,
    /// The document-level notes.
    pub notes: Vec<Note>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum El {
    Presence,
    Tuple,
    Status,
    Basic,
    Contact,
    Note,
    Timestamp,
    Other,
}

impl Presence {
    /// A document with one tuple: `entity`, tuple `id`, status and an optional note.
    pub fn simple(entity: &str, tuple_id: &str, basic: Basic, note: Option<&str>) -> Self {
        Presence {
            entity: entity.to_owned(),
            tuples: vec![Tuple {
                id: tuple_id.to_owned(),
                basic: Some(basic),
                notes: note
                    .map(|n| {
                        vec![Note {
                            text: n.to_owned(),
                            lang: None,
                        }]
                    })
                    .unwrap_or_default(),
                ..Tuple::default()
            }],
            notes: Vec::new(),
        }
    }

    /// The overall basic status: `Open` if any tuple is open, `Closed` if some tuple is
    /// closed and none is open, `None` if no tuple says.
    pub fn basic(&self) -> Option<Basic> {
        let mut any = None;
        for t in &self.tuples {
            match t.basic {
                Some(Basic::Open) => return Some(Basic::Open),
                Some(Basic::Closed) => any = Some(Basic::Closed),
                None => {}
            }
        }
        any
    }

    /// Parse a PIDF document.
    pub fn parse(xml: &[u8]) -> Result<Self, PidfError> {
        let mut reader = NsReader::from_reader(xml);
        let mut stack: Vec<El> = Vec::new();
        let mut doc = Presence::default();
        let mut seen_root = false;
        let mut text = String::new();
        let mut note_lang: Option<String> = None;
        let xml_err = |reader: &NsReader<&[u8]>, e: &dyn std::fmt::Display| PidfError::Xml {
            offset: reader.buffer_position(),
            message: e.to_string(),
        };
        loop {
            let (ns, event) = match reader.read_resolved_event() {
                Ok(r) => r,
                Err(e) => return Err(xml_err(&reader, &e)),
            };
            let in_pidf =
                matches!(ns, ResolveResult::Bound(n) if n.as_ref() == NAMESPACE.as_bytes());
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let empty = matches!(event, Event::Empty(_));
                    let parent = stack.last().copied();
                    let local = e.local_name();
                    let el = if !in_pidf {
                        El::Other
                    } else {
                        match (parent, local.as_ref()) {
                            (None, b"presence") => El::Presence,
                            (Some(El::Presence), b"tuple") => El::Tuple,
                            (Some(El::Tuple), b"status") => El::Status,
                            (Some(El::Status), b"basic") => El::Basic,
                            (Some(El::Tuple), b"contact") => El::Contact,
                            (Some(El::Presence | El::Tuple), b"note") => El::Note,
                            (Some(El::Tuple), b"timestamp") => El::Timestamp,
                            _ => El::Other,
                        }
                    };
                    if parent.is_none() {
                        if el != El::Presence || seen_root {
                            return Err(PidfError::NotPidf);
                        }
                        seen_root = true;
                    }
                    let attr = |name: &[u8]| -> Result<Option<String>, PidfError> {
                        attribute(e, name).map_err(|m| PidfError::Xml {
                            offset: reader.buffer_position(),
                            message: m,
                        })
                    };
                    match el {
                        El::Presence => {
                            doc.entity = attr(b"entity")?.ok_or(PidfError::MissingEntity)?;
                        }
                        El::Tuple => doc.tuples.push(Tuple {
                            id: attr(b"id")?.ok_or(PidfError::MissingTupleId)?,
                            ..Tuple::default()
                        }),
                        El::Contact => {
                            if let Some(t) = doc.tuples.last_mut() {
                                t.priority = attr(b"priority")?.and_then(|p| p.trim().parse().ok());
                            }
                        }
                        El::Note => note_lang = attr(b"xml:lang")?,
                        _ => {}
                    }
                    text.clear();
                    stack.push(el);
                    if empty {
                        finish(&mut stack, &mut doc, &mut text, &mut note_lang)?;
                    }
                }
                Event::End(_) => finish(&mut stack, &mut doc, &mut text, &mut note_lang)?,
                Event::Text(t) if collects(&stack) => {
                    let t = t.xml_content().map_err(|e| xml_err(&reader, &e))?;
                    text.push_str(&t);
                }
                Event::CData(t) if collects(&stack) => {
                    let t = t.decode().map_err(|e| xml_err(&reader, &e))?;
                    text.push_str(&t);
                }
                Event::GeneralRef(r) if collects(&stack) => {
                    if let Some(c) = r.resolve_char_ref().map_err(|e| xml_err(&reader, &e))? {
                        text.push(c);
                    } else {
                        let name = r.decode().map_err(|e| xml_err(&reader, &e))?;
                        let v = resolve_predefined_entity(&name).ok_or_else(|| {
                            xml_err(&reader, &format_args!("unknown entity &{name};"))
                        })?;
                        text.push_str(v);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !seen_root || !stack.is_empty() {
            return Err(if seen_root {
                PidfError::Xml {
                    offset: reader.buffer_position(),
                    message: "unexpected end of document".to_owned(),
                }
            } else {
                PidfError::NotPidf
            });
        }
        Ok(doc)
    }

    /// Serialize as a PIDF document (UTF-8, default namespace).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<presence xmlns=\"{NAMESPACE}\" entity=\"{}\">",
            escape(self.entity.as_str())
        );
        for t in &self.tuples {
            let _ = writeln!(out, "  <tuple id=\"{}\">", escape(t.id.as_str()));
            match t.basic {
                Some(b) => {
                    let _ = writeln!(out, "    <status><basic>{}</basic></status>", b.as_str());
                }
                None => out.push_str("    <status/>\n"),
            }
            if let Some(c) = &t.contact {
                out.push_str("    <contact");
                if let Some(p) = t.priority {
                    let _ = write!(out, " priority=\"{p}\"");
                }
                let _ = writeln!(out, ">{}</contact>", escape(c.as_str()));
            }
            for n in &t.notes {
                write_note(&mut out, "    ", n);
            }
            if let Some(ts) = &t.timestamp {
                let _ = writeln!(out, "    <timestamp>{}</timestamp>", escape(ts.as_str()));
            }
            out.push_str("  </tuple>\n");
        }
        for n in &self.notes {
            write_note(&mut out, "  ", n);
        }
        out.push_str("</presence>\n");
        out
    }
}

fn write_note(out: &mut String, indent: &str, n: &Note) {
    out.push_str(indent);
    out.push_str("<note");
    if let Some(l) = &n.lang {
        let _ = write!(out, " xml:lang=\"{}\"", escape(l.as_str()));
    }
    let _ = writeln!(out, ">{}</note>", escape(n.text.as_str()));
}

fn collects(stack: &[El]) -> bool {
    matches!(
        stack.last(),
        Some(El::Basic | El::Contact | El::Note | El::Timestamp)
    )
}

fn attribute(e: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        if a.key.as_ref() == name {
            let v = a.unescape_value().map_err(|e| e.to_string())?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// Close the innermost element, storing the text it collected.
fn finish(
    stack: &mut Vec<El>,
    doc: &mut Presence,
    text: &mut String,
    note_lang: &mut Option<String>,
) -> Result<(), PidfError> {
    let el = stack.pop();
    let parent = stack.last().copied();
    let value = std::mem::take(text);
    match el {
        Some(El::Basic) => {
            let b = match value.trim() {
                "open" => Basic::Open,
                "closed" => Basic::Closed,
                other => return Err(PidfError::BadBasic(other.to_owned())),
            };
            if let Some(t) = doc.tuples.last_mut() {
                t.basic = Some(b);
            }
        }
        Some(El::Contact) => {
            if let Some(t) = doc.tuples.last_mut() {
                t.contact = Some(value.trim().to_owned());
            }
        }
        Some(El::Timestamp) => {
            if let Some(t) = doc.tuples.last_mut() {
                t.timestamp = Some(value.trim().to_owned());
            }
        }
        Some(El::Note) => {
            let note = Note {
                text: value.trim().to_owned(),
                lang: note_lang.take(),
            };
            match parent {
                Some(El::Tuple) => {
                    if let Some(t) = doc.tuples.last_mut() {
                        t.notes.push(note);
                    }
                }
                _ => doc.notes.push(note),
            }
        }
        _ => {}
    }
    Ok(())
}
