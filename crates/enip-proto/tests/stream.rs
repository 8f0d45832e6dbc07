//! The stream decoder yields the same frames whatever the chunk boundaries, treats short
//! input as "need more", and refuses an oversized declared length before buffering it.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::hex;
use enip_proto::{ErrorKind, FrameDecoder};
use proptest::prelude::*;

/// A realistic conversation: register, list identity, read, connected read, unregister.
fn stream() -> Vec<u8> {
    let frames = [
        "65 00 04 00 00 00 00 00 00 00 00 00 5f 70 79 63 6f 6d 6d 5f 00 00 00 00 01 00 00 00",
        "63 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        "6f 00 2e 00 01 1e 02 11 00 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 00 05 00 02 00 00 00 00 00 b2 00 1e 00 52 02 20 06 24 01 05 9d 10 00
         52 04 91 05 53 43 41 44 41 00 01 00 00 00 00 00 01 00 01 00",
        "70 00 24 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 02 00 a1 00 04 00 44 33 22 11 b1 00 10 00 01 00
         52 03 91 03 54 61 67 00 01 00 00 00 00 00",
        "00 00 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 aa bb cc",
        "66 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    ];
    frames.iter().flat_map(|f| hex(f)).collect()
}

fn drain(dec: &mut FrameDecoder, out: &mut Vec<Vec<u8>>) {
    while let Some(f) = dec.next_frame().unwrap() {
        out.push(f.to_vec().unwrap());
    }
}

fn whole() -> Vec<Vec<u8>> {
    let mut dec = FrameDecoder::new(4096);
    dec.feed(&stream());
    let mut out = Vec::new();
    drain(&mut dec, &mut out);
    out
}

#[test]
fn whole_stream_decodes_to_six_frames() {
    let frames = whole();
    assert_eq!(frames.len(), 6);
    assert_eq!(frames.concat(), stream());
}

#[test]
fn one_byte_at_a_time() {
    let mut dec = FrameDecoder::new(4096);
    let mut out = Vec::new();
    for b in stream() {
        dec.feed(&[b]);
        drain(&mut dec, &mut out);
    }
    assert_eq!(out, whole());
    assert_eq!(dec.buffered(), 0);
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_frames(cuts in prop::collection::vec(0usize..300, 0..40)) {
        let s = stream();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (s.len() + 1)).collect();
        cuts.push(0);
        cuts.push(s.len());
        cuts.sort_unstable();
        let mut dec = FrameDecoder::new(4096);
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            dec.feed(&s[w[0]..w[1]]);
            drain(&mut dec, &mut out);
        }
        prop_assert_eq!(out, whole());
    }

    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64) {
        let mut dec = FrameDecoder::new(512);
        for c in data.chunks(chunk) {
            dec.feed(c);
            while let Ok(Some(_)) = dec.next_frame() {}
        }
    }
}

#[test]
fn short_input_is_never_an_error() {
    let s = stream();
    for n in 0..s.len() {
        let mut dec = FrameDecoder::new(4096);
        dec.feed(&s[..n]);
        let mut out = Vec::new();
        drain(&mut dec, &mut out);
        assert!(out.len() <= 6);
    }
}

#[test]
fn oversized_length_is_refused_before_the_body_arrives() {
    let mut dec = FrameDecoder::new(600);
    // First a good frame, so the error offset is a stream offset.
    let first = hex("63 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    dec.feed(&first);
    assert!(dec.next_frame().unwrap().is_some());
    // Then a header declaring 60,000 bytes: refused with only 4 bytes of it buffered.
    dec.feed(&hex("6f 00 60 ea"));
    let e = dec.next_frame().unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::TooLong {
            what: "encapsulation body",
            declared: 60000,
            max: 600
        }
    );
    assert_eq!(e.offset, 24 + 2);
    assert_eq!(
        e.to_string(),
        "encapsulation body declares 60000 bytes, more than the maximum 600 at byte 26"
    );
}

#[test]
fn malformed_body_reports_the_stream_offset() {
    // A SendRRData whose CPF item claims 0x40 bytes in a 16-byte body.
    let mut s = hex("6f 00 10 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    s.extend(hex("00 00 00 00 05 00 01 00 b2 00 40 00 4c 00 00 00"));
    let mut dec = FrameDecoder::new(4096);
    dec.feed(&hex(
        "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    ));
    assert!(dec.next_frame().unwrap().is_some());
    dec.feed(&s);
    let e = dec.next_frame().unwrap_err();
    assert_eq!(e.offset, 24 + 24 + 12);
    assert!(e.to_string().starts_with("CPF item data truncated"), "{e}");
}
