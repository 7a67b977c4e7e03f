//! Sans-IO WBXML codec for Exchange ActiveSync.
//!
//! ActiveSync bodies are WBXML 1.3 (WAP-192) documents tokenised with the code pages of
//! [MS-ASWBXML]. This crate provides:
//!
//! - the code pages 0–24 as static tables ([`page`], [`page_named`], [`Tag`]) and a constant
//!   for every tag ([`tags`]: `tags::airsync::Sync`);
//! - a small element tree ([`Element`], [`Node`]) with accessors for the EAS plugin
//!   (`el.child("Collections")`, `el.children_named("Collection")`, `el.text()`,
//!   `el.opaque()`), a builder ([`Element::with`], the [`element!`] macro) and an XML-ish
//!   [`Display`](std::fmt::Display) for logs and tests;
//! - a streaming [`Encoder`] over any [`std::io::Write`] for large responses, and
//!   [`encode`] for a whole tree;
//! - a bounded [`decode`] / [`decode_with`] that rejects malformed input with a precise
//!   [`DecodeError`] (byte offset and what was expected) and never panics.
//!
//! The decoder works on a complete body: the EAS plugin buffers a request body (up to its
//! configured size limit) before decoding; there is no resumable decoder.
//!
//! ```
//! use switchboard_wbxml::{decode, element, encode, tags::folderhierarchy as fh};
//! let request = element!(fh::FolderSync [element!(fh::SyncKey = "0")]);
//! let bytes = encode(&request)?;
//! let back = decode(&bytes)?;
//! assert_eq!(back, request);
//! assert_eq!(back.to_string(), r#"<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod decode;
mod encode;
mod error;
mod model;
mod pages;

pub use decode::{decode, decode_with, Limits, MAX_DEPTH_CAP};
pub use encode::{encode, Encoder, HEADER};
pub use error::{DecodeError, EncodeError};
pub use model::{Element, Node};
pub use pages::{page, page_named, pages, tags, CodePage, Tag, PAGE_COUNT};
