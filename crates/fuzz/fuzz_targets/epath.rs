//! Binary EPATH: validation, iteration, printing, re-encoding.
#![no_main]

use enip_proto::EPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = EPath::new(data, 0) {
        let path = p.to_path();
        let _ = path.to_string();
        let _ = p.target();
        // Canonical re-encoding decodes to the same segments.
        if let Ok(b) = path.to_bytes() {
            let again = EPath::new(&b, 0).expect("canonical encoding decodes");
            assert_eq!(again.to_path(), path);
        }
    }
});
