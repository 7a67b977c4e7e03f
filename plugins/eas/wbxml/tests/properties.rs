//! Property tests: encode/decode round trips over arbitrary trees of real tags, and the
//! decoder's behaviour on arbitrary and mutated bytes (never a panic; anything accepted
//! re-encodes to a document that decodes to the same tree).

use proptest::prelude::*;
use switchboard_wbxml::{decode, encode, pages, Element, Encoder, Node, Tag};

fn any_tag() -> impl Strategy<Value = Tag> {
    let all: Vec<Tag> = pages()
        .iter()
        .flat_map(|p| {
            p.tags()
                .iter()
                .filter_map(move |&(t, _)| Tag::from_token(p.number(), t))
        })
        .collect();
    proptest::sample::select(all)
}

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        // Any Unicode except NUL (inline strings are NUL-terminated).
        "[^\u{0}]{0,12}".prop_map(Node::Text),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Node::Opaque),
    ]
}

/// Adjacent text nodes are one node after decoding (as in XML): merge them so the expected
/// tree is the canonical one.
fn canonical(mut e: Element) -> Element {
    let mut out: Vec<Node> = Vec::with_capacity(e.children.len());
    for node in e.children.drain(..) {
        match (out.last_mut(), node) {
            (Some(Node::Text(prev)), Node::Text(s)) => prev.push_str(&s),
            (_, Node::Element(c)) => out.push(Node::Element(canonical(c))),
            (_, n) => out.push(n),
        }
    }
    e.children = out;
    e
}

fn tree() -> impl Strategy<Value = Element> {
    let node = leaf().prop_recursive(6, 64, 6, |inner| {
        (any_tag(), proptest::collection::vec(inner, 0..6))
            .prop_map(|(tag, children)| Node::Element(Element { tag, children }))
    });
    (any_tag(), proptest::collection::vec(node, 0..6))
        .prop_map(|(tag, children)| canonical(Element { tag, children }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_then_decode_is_identity(t in tree()) {
        let bytes = encode(&t).unwrap();
        let back = decode(&bytes).unwrap();
        prop_assert_eq!(&back, &t);
        // Encoding is deterministic and canonical.
        prop_assert_eq!(encode(&back).unwrap(), bytes);
    }

    #[test]
    fn streaming_writer_matches_tree_encoder(t in tree()) {
        // Drive the streaming API by hand and compare with the whole-tree encoder.
        fn walk(enc: &mut Encoder<Vec<u8>>, e: &Element) {
            enc.start(e.tag).unwrap();
            for n in &e.children {
                match n {
                    Node::Element(c) => walk(enc, c),
                    Node::Text(s) => enc.text(s).unwrap(),
                    Node::Opaque(b) => enc.opaque(b).unwrap(),
                }
            }
            enc.end().unwrap();
        }
        let mut enc = Encoder::new(Vec::new()).unwrap();
        walk(&mut enc, &t);
        prop_assert_eq!(enc.finish().unwrap(), encode(&t).unwrap());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn arbitrary_bodies_after_a_valid_header_never_panic(
        body in proptest::collection::vec(
            prop_oneof![
                // Bias towards the global tokens and small tag/page values.
                Just(0x00u8), Just(0x01), Just(0x02), Just(0x03), Just(0x83), Just(0xC3),
                0x05u8..0x20, 0x45u8..0x60, any::<u8>(),
            ],
            0..256,
        )
    ) {
        let mut doc = vec![0x03, 0x01, 0x6A, 0x00];
        doc.extend(body);
        if let Ok(tree) = decode(&doc) {
            let again = encode(&tree).unwrap();
            prop_assert_eq!(decode(&again).unwrap(), tree);
        }
    }

    #[test]
    fn mutated_documents_never_panic(
        t in tree(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&t).unwrap();
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let _ = decode(&bytes);
        let end = cut.index(bytes.len() + 1);
        if let Ok(tree) = decode(&bytes[..end]) {
            prop_assert_eq!(decode(&encode(&tree).unwrap()).unwrap(), tree);
        }
    }
}
