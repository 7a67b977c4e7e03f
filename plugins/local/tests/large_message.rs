//! A 50 MB message in bounded memory: stored while the upload is read chunk by chunk, its
//! structure found by the streaming scanner, its attachments fetched by range. A counting
//! allocator records the largest single allocation made while the store works (a whole-message
//! buffer would show up as one of 50 MB or more), and the store's read counters show what
//! each call read from the host.
#![allow(unsafe_code)] // the counting allocator

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine as _;
use common::{alice, Env};
use switchboard_local::chunks::CHUNK;
use switchboard_local::store::stats;
use switchboard_local::Local;
use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::MailConnector;

struct Counting;

static TRACKING: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Largest allocation while `f` runs.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.store(0, Ordering::Relaxed);
    TRACKING.store(true, Ordering::Relaxed);
    let r = f();
    TRACKING.store(false, Ordering::Relaxed);
    (r, LARGEST.load(Ordering::Relaxed))
}

fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn base64_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 38);
    for line in data.chunks(57) {
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(line)
                .as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn quoted_printable(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut col = 0;
    for &b in text {
        let enc: Vec<u8> = if b == b'=' || b >= 0x80 {
            format!("={b:02X}").into_bytes()
        } else {
            vec![b]
        };
        if col + enc.len() > 75 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        col += enc.len();
        out.extend_from_slice(&enc);
    }
    out
}

#[test]
fn a_50_mb_message_is_stored_and_fetched_in_bounded_memory() {
    let big = pseudo_random(37 * 1024 * 1024);
    let notes: Vec<u8> = "Grüße = greetings; ".repeat(20_000).into_bytes();
    let mut msg = b"From: Big Sender <big@example.com>\r\n\
To: alice@example.com\r\n\
Subject: The whole archive\r\n\
Date: Thu, 12 Mar 2026 12:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"big-boundary\"\r\n\
\r\n\
--big-boundary\r\n\
Content-Type: text/plain\r\n\
\r\n\
Here it is.\r\n\
--big-boundary\r\n\
Content-Type: application/zip; name=\"archive.zip\"\r\n\
Content-Disposition: attachment; filename=\"archive.zip\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n"
        .to_vec();
    msg.extend_from_slice(&base64_lines(&big));
    msg.extend_from_slice(
        b"--big-boundary\r\n\
Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"\r\n\
Content-Disposition: attachment; filename=\"notes.txt\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n",
    );
    msg.extend_from_slice(&quoted_printable(&notes));
    msg.extend_from_slice(b"\r\n--big-boundary--\r\n");
    assert!(msg.len() > 50_000_000, "{} bytes", msg.len());

    let env = Env::new();
    let a = alice();
    let upload = env.run(|| Upload::from_bytes(&msg).unwrap());
    let size = msg.len();
    drop(msg);

    stats::reset();
    let (summary, largest) =
        largest_allocation(|| env.run(|| Local::create_item(&a, "inbox", upload).unwrap()));
    let reads = env.run(stats::get);
    assert!(
        largest <= 2 * CHUNK,
        "largest allocation storing: {largest} bytes"
    );
    assert!(reads.largest <= CHUNK as u64, "{reads:?}");
    assert!(
        reads.total <= size as u64 + 64 * 1024,
        "the upload is read once: {reads:?} for {size} bytes"
    );
    assert_eq!(summary.size, size as u64);
    assert_eq!(summary.subject, "The whole archive");
    assert_eq!(summary.sender, "Big Sender <big@example.com>");
    let att: Vec<(&str, u64)> = summary
        .attachments
        .iter()
        .map(|x| (x.file_name.as_str(), x.size))
        .collect();
    assert_eq!(
        att,
        [
            ("archive.zip", big.len() as u64),
            ("notes.txt", notes.len() as u64)
        ],
        "decoded sizes"
    );

    // Ranged fetches decode only from the nearest index point: a few chunks per call.
    for (part, data, offset, max) in [
        ("1", &big, 0usize, 192 * 1024u32),
        ("1", &big, 20_000_001, 192 * 1024),
        ("1", &big, big.len() - 1000, 192 * 1024),
        ("2", &notes, 150_001, 10_000),
    ] {
        stats::reset();
        let (chunk, largest) = largest_allocation(|| {
            env.run(|| Local::fetch(&a, &summary.id, Some(part), offset as u64, max).unwrap())
        });
        let reads = env.run(stats::get);
        let end = (offset + max as usize).min(data.len());
        assert_eq!(chunk.data, &data[offset..end], "part {part} at {offset}");
        assert_eq!(chunk.total, data.len() as u64);
        assert!(
            largest <= 2 * CHUNK,
            "largest allocation fetching: {largest}"
        );
        assert!(
            reads.total <= 4 * CHUNK as u64,
            "part {part} at {offset}: read {reads:?}"
        );
    }

    // The raw message by range, too.
    stats::reset();
    let tail = env
        .run(|| Local::fetch(&a, &summary.id, None, size as u64 - 20, 1000))
        .unwrap();
    assert_eq!(tail.data, b"\r\n--big-boundary--\r\n");
    assert!(env.run(stats::get).total <= 2 * CHUNK as u64);

    // Deleting it removes every chunk.
    env.run(|| Local::delete_item(&a, &summary.id)).unwrap();
    assert_eq!(env.host.kv_get("m/alice@example.com/b/1/d00000000"), None);
    assert_eq!(env.host.kv_get("m/alice@example.com/b/1/m"), None);
}
