//! Decode EtherNet/IP frames given as hex and print what they mean.
//!
//! ```text
//! cargo run -p enip-proto --example dissect -- 6f00...   # one frame per argument
//! echo "6f 00 18 00 ..." | cargo run -p enip-proto --example dissect   # one per line
//! ```
//! A hex string that is not a whole frame is read as a bare Message Router message.

use std::io::BufRead;
use std::process::ExitCode;

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    if digits.len() % 2 == 1 {
        return Err("odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|p| {
            let t = std::str::from_utf8(p).map_err(|e| e.to_string())?;
            u8::from_str_radix(t, 16).map_err(|e| e.to_string())
        })
        .collect()
}

fn dissect(input: &str) -> Result<String, String> {
    let bytes = parse_hex(input)?;
    let whole =
        matches!(enip_proto::encap::frame_len(&bytes, 65535), Ok(Some(n)) if n == bytes.len());
    if whole {
        enip_proto::describe::frame(&bytes).map_err(|e| format!("frame: {e}"))
    } else {
        enip_proto::describe::message(&bytes).map_err(|e| format!("message: {e}"))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inputs: Vec<String> = if args.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.trim().is_empty())
            .collect()
    } else {
        args
    };
    let mut failed = false;
    for input in &inputs {
        match dissect(input) {
            Ok(s) => print!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
