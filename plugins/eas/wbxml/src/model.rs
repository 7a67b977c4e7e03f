//! The element tree: what the decoder produces and what the encoder can write in one go.

use std::fmt;

use crate::Tag;

/// One node of content inside an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (STR_I, STR_T and ENTITY tokens; adjacent pieces are merged on decode).
    Text(String),
    /// Binary data (OPAQUE), e.g. MIME bodies, certificates, picture data.
    Opaque(Vec<u8>),
}

impl From<Element> for Node {
    fn from(e: Element) -> Node {
        Node::Element(e)
    }
}

impl From<String> for Node {
    fn from(s: String) -> Node {
        Node::Text(s)
    }
}

impl From<&str> for Node {
    fn from(s: &str) -> Node {
        Node::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Node {
    fn from(b: Vec<u8>) -> Node {
        Node::Opaque(b)
    }
}

/// An ActiveSync element: a tag (code page + token) and its content.
///
/// Build with [`Element::new`] and the `with*` methods, or the [`element!`](crate::element)
/// macro; read with [`Element::child`], [`Element::children_named`], [`Element::text`] and
/// friends. Name-based lookups match the element name on any code page (EAS names are
/// unambiguous among the children of one element in practice); use the `*_tag` variants to
/// match page and token exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// The element's tag.
    pub tag: Tag,
    /// The element's content, in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// An empty element.
    pub fn new(tag: Tag) -> Element {
        Element {
            tag,
            children: Vec::new(),
        }
    }

    /// An element whose only content is `text`: `<SyncKey>0</SyncKey>`.
    pub fn text_element(tag: Tag, text: impl Into<String>) -> Element {
        Element {
            tag,
            children: vec![Node::Text(text.into())],
        }
    }

    /// Appends a child node (an element, text or opaque data) and returns the element.
    #[must_use]
    pub fn with(mut self, child: impl Into<Node>) -> Element {
        self.children.push(child.into());
        self
    }

    /// Appends a text child and returns the element.
    #[must_use]
    pub fn with_text(self, text: impl Into<String>) -> Element {
        self.with(Node::Text(text.into()))
    }

    /// Appends an opaque child and returns the element.
    #[must_use]
    pub fn with_opaque(self, data: impl Into<Vec<u8>>) -> Element {
        self.with(Node::Opaque(data.into()))
    }

    /// Appends a child `<tag>text</tag>` and returns the element.
    #[must_use]
    pub fn with_text_child(self, tag: Tag, text: impl Into<String>) -> Element {
        self.with(Element::text_element(tag, text))
    }

    /// Appends a child node in place.
    pub fn push(&mut self, child: impl Into<Node>) {
        self.children.push(child.into());
    }

    /// The element name, e.g. `Collections`.
    pub fn name(&self) -> &'static str {
        self.tag.name()
    }

    /// The element's namespace, e.g. `AirSync:`.
    pub fn namespace(&self) -> &'static str {
        self.tag.namespace()
    }

    /// `true` if the element is `tag` (page and token).
    pub fn is(&self, tag: Tag) -> bool {
        self.tag == tag
    }

    /// The child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element named `name` (on any code page).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name() == name)
    }

    /// The first child element with exactly this tag.
    pub fn child_tag(&self, tag: Tag) -> Option<&Element> {
        self.elements().find(|e| e.tag == tag)
    }

    /// All child elements named `name` (on any code page).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.elements().filter(move |e| e.name() == name)
    }

    /// All child elements with exactly this tag.
    pub fn children_tagged(&self, tag: Tag) -> impl Iterator<Item = &Element> {
        self.elements().filter(move |e| e.tag == tag)
    }

    /// The element's text if its content is text only: `Some("")` for an empty element, the
    /// string for a single text node, `None` if it holds elements, opaque data or several
    /// nodes.
    pub fn text(&self) -> Option<&str> {
        match self.children.as_slice() {
            [] => Some(""),
            [Node::Text(s)] => Some(s),
            _ => None,
        }
    }

    /// The element's opaque data if its content is a single OPAQUE node.
    pub fn opaque(&self) -> Option<&[u8]> {
        match self.children.as_slice() {
            [Node::Opaque(b)] => Some(b),
            _ => None,
        }
    }

    /// The text of the first child named `name`: `sync.child_text("SyncKey")`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)?.text()
    }

    /// Encodes this element as a complete WBXML document (header included).
    pub fn to_wbxml(&self) -> Result<Vec<u8>, crate::EncodeError> {
        crate::encode(self)
    }

    fn render(
        &self,
        f: &mut fmt::Formatter<'_>,
        parent_page: Option<u8>,
        pretty: bool,
        depth: usize,
    ) -> fmt::Result {
        // Pretty form: every tag that starts a line is preceded by a newline, except the root.
        let indent = |f: &mut fmt::Formatter<'_>, newline: bool| -> fmt::Result {
            if pretty {
                if newline {
                    f.write_str("\n")?;
                }
                for _ in 0..depth {
                    f.write_str("  ")?;
                }
            }
            Ok(())
        };
        indent(f, depth > 0)?;
        write!(f, "<{}", self.name())?;
        if parent_page != Some(self.tag.page()) {
            write!(f, " xmlns=\"{}\"", self.namespace())?;
        }
        if self.children.is_empty() {
            return f.write_str("/>");
        }
        f.write_str(">")?;
        let inline = self.children.iter().all(|n| !matches!(n, Node::Element(_)));
        for node in &self.children {
            match node {
                Node::Element(e) => e.render(f, Some(self.tag.page()), pretty, depth + 1)?,
                Node::Text(s) => write_escaped(f, s)?,
                Node::Opaque(b) => write_opaque(f, b)?,
            }
        }
        if !inline {
            indent(f, true)?;
        }
        write!(f, "</{}>", self.name())
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '<' => f.write_str("&lt;")?,
            '>' => f.write_str("&gt;")?,
            '&' => f.write_str("&amp;")?,
            c if c.is_control() && c != '\n' && c != '\t' && c != '\r' => {
                write!(f, "&#x{:X};", u32::from(c))?
            }
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}

/// Opaque data is shown as its length and up to 32 bytes of hex: logs stay short.
fn write_opaque(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    write!(f, "[opaque {} bytes:", b.len())?;
    for byte in b.iter().take(32) {
        write!(f, " {byte:02x}")?;
    }
    if b.len() > 32 {
        f.write_str(" …")?;
    }
    f.write_str("]")
}

/// XML-ish rendering for logs and tests: `<Sync xmlns="AirSync:"><SyncKey>0</SyncKey></Sync>`.
///
/// A namespace is declared on the root and wherever the code page changes. Text is escaped;
/// opaque data is summarised as `[opaque N bytes: 01 02 …]`. The alternate form (`{:#}`)
/// indents one element per line.
impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pretty = f.alternate();
        self.render(f, None, pretty, 0)
    }
}

/// Builds an [`Element`] tree from tag constants.
///
/// ```
/// use switchboard_wbxml::{element, tags::{airsync, airsyncbase}};
/// let sync = element!(airsync::Sync [
///     element!(airsync::Collections [
///         element!(airsync::Collection [
///             element!(airsync::SyncKey = "0"),
///             element!(airsync::CollectionId = "5"),
///             element!(airsyncbase::BodyPreference [
///                 element!(airsyncbase::Type = "2"),
///             ]),
///             element!(airsync::GetChanges),
///         ]),
///     ]),
/// ]);
/// assert_eq!(
///     sync.child("Collections").and_then(|c| c.child("Collection")).and_then(|c| c.child_text("SyncKey")),
///     Some("0"),
/// );
/// ```
///
/// Forms: `element!(tag)` (empty), `element!(tag = text)` (text content),
/// `element!(tag [child, child, …])` (children are anything `Into<Node>`). `tag` is a path to
/// a [`Tag`] constant, e.g. `tags::airsync::Sync`.
#[macro_export]
macro_rules! element {
    ($tag:path = $text:expr) => {
        $crate::Element::text_element($tag, $text)
    };
    ($tag:path [ $($child:expr),* $(,)? ]) => {{
        #[allow(unused_mut)]
        let mut e = $crate::Element::new($tag);
        $( e.push($child); )*
        e
    }};
    ($tag:path) => {
        $crate::Element::new($tag)
    };
}
