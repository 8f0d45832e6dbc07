//! The stream decoder and everything under a frame: CPF, Message Router, request bodies.
#![no_main]

use enip_proto::services::RequestBody;
use enip_proto::{FrameDecoder, Reply, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a chunk size, so boundaries are explored too.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 32) + 1;
    let mut dec = FrameDecoder::new(4096);
    for piece in rest.chunks(chunk) {
        dec.feed(piece);
        loop {
            match dec.next_frame() {
                Ok(Some(frame)) => {
                    let bytes = frame.to_vec().expect("a decoded frame re-encodes");
                    let again = enip_proto::Encapsulation::decode(&bytes)
                        .expect("a re-encoded frame decodes");
                    assert_eq!(again, frame);
                    if let Some(m) = frame.send_data().and_then(|sd| sd.cpf.message()) {
                        if let Ok(req) = Request::decode(m.data) {
                            let _ = RequestBody::decode(&req);
                        }
                        let _ = Reply::decode(m.data);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.to_string();
                    return;
                }
            }
        }
    }
});
