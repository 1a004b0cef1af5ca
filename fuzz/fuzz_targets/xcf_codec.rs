//! The XCF codec (`sysplex::xcf::codec`, the frames of `wire::xcf`): a
//! frame decoded from arbitrary bytes encodes again and decodes to the
//! same value, and the stream decoder (what `runtime::xcf` reads a TCP
//! connection with), fed the same bytes in arbitrary pieces, agrees with
//! it and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plexnet::sysplex::xcf::codec::{
    decode, encode_cf_request, encode_cf_response, encode_xcf, Body, Decoded, FrameDecoder,
};
use plexnet::wire::xcf::Header;

/// Encodes `d` again and checks it decodes to itself.
fn round_trip(d: &Decoded) {
    let mut out = Vec::new();
    let encoded = match &d.body {
        Body::Xcf(m) => encode_xcf(m, &mut out),
        Body::CfRequest(r) => encode_cf_request(d.request_id, r, &mut out),
        Body::CfResponse(r) => encode_cf_response(d.request_id, r, &mut out),
    };
    encoded.expect("what decoded encodes");
    let (again, used) = decode(&out).expect("what was encoded decodes");
    assert_eq!(used, out.len());
    assert_eq!(again.body, d.body, "decode(encode(x)) != x");
    // XCF messages are sent with request id 0 and a receiver ignores the
    // field (like a reserved one); CF frames keep theirs.
    match d.body {
        Body::Xcf(_) => assert_eq!(again.request_id, 0),
        _ => assert_eq!(again.request_id, d.request_id),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&piece, bytes)) = data.split_first() else {
        return;
    };
    let _ = Header::parse(bytes);
    let whole = decode(bytes);
    if let Ok((d, used)) = &whole {
        assert!(*used <= bytes.len());
        round_trip(d);
    }
    // The same bytes as a stream, in pieces of 1..=64 bytes.
    let mut dec = FrameDecoder::new();
    let mut frames = Vec::new();
    for chunk in bytes.chunks(usize::from(piece % 64) + 1) {
        dec.push(chunk);
        while let Some(f) = dec.next_frame() {
            frames.push(f);
        }
        assert!(dec.buffered() <= bytes.len());
    }
    if let Some(Ok(first)) = frames.first() {
        round_trip(first);
    }
    if let Ok((d, _)) = whole {
        assert_eq!(frames.first().cloned().map(Result::ok), Some(Some(d)));
    }
    for f in frames.iter().flatten() {
        round_trip(f);
    }
    if dec.is_poisoned() {
        assert!(dec.next_frame().is_none());
    }
});
