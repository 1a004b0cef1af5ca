//! The CF's side of its request codec, as `runtime::cf` serves a
//! connection: frames from arbitrary bytes through the stream decoder; a
//! request goes to the coupling facility (`sysplex::cf`), whose answer is
//! encoded and must decode to itself; every request and response
//! round-trips. The CF itself never panics, whatever it is asked in
//! whatever order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plexnet::sysplex::cf::CouplingFacility;
use plexnet::sysplex::xcf::codec::{
    decode, encode_cf_request, encode_cf_response, Body, FrameDecoder,
};
use plexnet::sysplex::xcf::{CfError, CfResponse};

fuzz_target!(|data: &[u8]| {
    let Some((&piece, bytes)) = data.split_first() else {
        return;
    };
    let mut cf = CouplingFacility::new();
    let mut dec = FrameDecoder::new();
    for chunk in bytes.chunks(usize::from(piece % 32) + 1) {
        dec.push(chunk);
        while let Some(frame) = dec.next_frame() {
            let Ok(frame) = frame else { continue };
            match frame.body {
                Body::CfRequest(req) => {
                    let mut out = Vec::new();
                    encode_cf_request(frame.request_id, &req, &mut out).expect("encodes");
                    let (again, _) = decode(&out).expect("decodes");
                    assert_eq!(again.body, Body::CfRequest(req.clone()));
                    let resp = cf.handle(req);
                    answer(frame.request_id, resp);
                }
                Body::CfResponse(resp) => answer(frame.request_id, resp),
                Body::Xcf(_) => {}
            }
        }
    }
    let _ = cf.status();
    let _ = cf.counters();
});

/// Encodes a response as `runtime::cf` does (one too large for a frame
/// becomes an error answer) and checks the client decodes it.
fn answer(id: u32, resp: CfResponse) {
    let mut out = Vec::new();
    let sent = match encode_cf_response(id, &resp, &mut out) {
        Ok(()) => resp,
        Err(e) => {
            out.clear();
            let e = CfResponse::Error(CfError::Malformed(e.to_string()));
            encode_cf_response(id, &e, &mut out).expect("an error answer encodes");
            e
        }
    };
    let (d, used) = decode(&out).expect("a response decodes");
    assert_eq!((d.request_id, used), (id, out.len()));
    assert_eq!(d.body, Body::CfResponse(sent));
}
