//! Live fuzzing, long form: the harness of `tests/live_fuzz.rs` (`tests/fuzzlive/mod.rs`)
//! for `LIVE_FUZZ_SECS` (default 60) against an `enip-server` child process, then the
//! checks, printed as a table. Exits non-zero if a check fails. Not a timed test.
//!
//! ```text
//! cargo bench -p enip-server --bench live_fuzz
//! LIVE_FUZZ_SECS=600 LIVE_FUZZ_SEED=7 cargo bench -p enip-server --bench live_fuzz
//! ```
//!
//! `LIVE_FUZZ_TCP` (4) fuzzing TCP connections at a time, `LIVE_FUZZ_FLOOD` (200)
//! connections per flood burst; the server's stderr goes to `LIVE_FUZZ_LOG` (default
//! `live_fuzz.log` in the temp dir).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../tests/fuzzlive/mod.rs"]
mod fuzzlive;

use std::time::Duration;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = std::env::var_os("LIVE_FUZZ_LOG")
        .map_or_else(|| std::env::temp_dir().join("live_fuzz.log"), Into::into);
    let plan = fuzzlive::Plan {
        seed: env_u64("LIVE_FUZZ_SEED", 1),
        duration: Duration::from_secs(env_u64("LIVE_FUZZ_SECS", 60)),
        tcp_fuzzers: env_u64("LIVE_FUZZ_TCP", 4) as usize,
        flood_burst: env_u64("LIVE_FUZZ_FLOOD", 200) as usize,
    };
    let mut t = fuzzlive::Target::start(env!("CARGO_BIN_EXE_enip-server"), [127, 0, 82, 2], log);
    let o = fuzzlive::run(&mut t, &plan, &rt);
    let s = o.elapsed.as_secs_f64();
    let checks = [
        ("server alive", o.alive),
        ("no panic in its log", !o.panicked),
        (
            "well-behaved client: no error",
            o.good_errors.is_empty() && o.good_ops > 0,
        ),
        (
            "enip_tcp_connections back to baseline",
            o.gauge_after <= o.gauge_before,
        ),
        ("open fds back to baseline", o.fds_after <= o.fds_before),
        (
            "RSS growth < 16 MiB",
            o.rss_after_kib <= o.rss_before_kib + 16 * 1024,
        ),
    ];
    println!(
        "\n| live fuzz, seed {}, {:.0} s | |\n|---|---:|",
        plan.seed, s
    );
    println!(
        "| TCP frames sent | {} ({:.0}/s, {} bytes) |",
        o.tcp_frames,
        o.tcp_frames as f64 / s,
        o.tcp_bytes
    );
    println!("| TCP fuzzing connections | {} |", o.tcp_connections);
    println!(
        "| UDP datagrams sent | {} ({:.0}/s), {} replies |",
        o.udp_frames,
        o.udp_frames as f64 / s,
        o.udp_replies
    );
    println!("| slowloris connections | {} |", o.slowloris);
    println!("| flood connections | {} |", o.flood);
    println!(
        "| server encapsulation errors counted | {} |",
        o.encap_errors
    );
    println!(
        "| well-behaved client requests / errors | {} / {} |",
        o.good_ops,
        o.good_errors.len()
    );
    println!(
        "| enip_tcp_connections before / max during / after | {} / {} / {} |",
        o.gauge_before, o.gauge_during_max, o.gauge_after
    );
    println!(
        "| server fds before / after | {} / {} |",
        o.fds_before, o.fds_after
    );
    println!(
        "| server RSS before / max / after | {:.1} / {:.1} / {:.1} MiB |",
        o.rss_before_kib as f64 / 1024.0,
        o.rss_max_kib as f64 / 1024.0,
        o.rss_after_kib as f64 / 1024.0
    );
    for (what, ok) in checks {
        println!("| {what} | {} |", if ok { "ok" } else { "FAILED" });
    }
    for e in &o.good_errors {
        println!("client error: {e}");
    }
    t.stop();
    if !checks.iter().all(|c| c.1) {
        std::process::exit(1);
    }
}
