//! The controller answers every request, however malformed, with a reply that decodes,
//! never larger than its limit allows, and a sequence of requests never panics it.
#![no_main]

use enip_device::{Controller, UdtDef};
use enip_proto::Reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = Controller::new();
    c.define_udt(&UdtDef::new("Point", &[("X", "REAL"), ("Y", "LINT")]))
        .expect("valid structure");
    c.define_udt(&UdtDef::new(
        "Motor",
        &[
            ("Speed", "REAL"),
            ("Running", "BOOL"),
            ("Name", "STRING"),
            ("Hist", "DINT[10]"),
            ("Pos", "Point[2]"),
        ],
    ))
    .expect("valid structure");
    for spec in [
        "Motors=Motor[3]",
        "Program:Main.Cell=Motor",
        "SCADA=DINT[100]",
        "Grid=REAL[4,5]",
        "Cube=INT[2,3,4]",
        "Recipe=STRING",
        "Bits=BOOL[96]",
        "Program:Main.Step=DINT",
        "B=SINT",
    ] {
        c.add_tag(spec).expect("valid spec");
    }
    // Requests separated by 0xFF 0xFF; the byte before each picks a reply limit.
    for chunk in data.split(|&b| b == 0xFF).filter(|c| !c.is_empty()) {
        let (limit, req) = chunk.split_first().map_or((0, chunk), |(l, r)| (*l, r));
        let limit = 40 + usize::from(limit) * 16;
        let reply = c.execute(req, limit);
        let r = Reply::decode(&reply).expect("every reply decodes");
        let _ = r.describe_status();
    }
});
