//! Text paths (`Tag.Member[1,2]`, `@1/1/7`) and route paths (`1/0`).
#![no_main]

use enip_proto::path::{parse_route_text, parse_text, parse_text_prefix};
use enip_proto::EPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_text(text) {
        Ok(p) => {
            let printed = p.to_string();
            if let Ok(b) = p.to_bytes() {
                let e = EPath::new(&b, 0).expect("encoded text path decodes");
                assert_eq!(e.to_path(), p);
            }
            // What we print parses back to the same path.
            if !printed.contains('<') {
                assert_eq!(parse_text(&printed).expect("printed path parses"), p);
            }
        }
        Err(e) => {
            assert!(e.offset <= text.len());
            let _ = e.pointer(text);
        }
    }
    let _ = parse_text_prefix(text);
    let _ = parse_route_text(text).map(|p| p.to_bytes());
});
