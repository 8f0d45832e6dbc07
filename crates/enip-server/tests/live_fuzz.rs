//! Live fuzzing, short form: a few seconds of mutated and generated frames over TCP and
//! UDP at an `enip-server` child process while a well-behaved client keeps writing and
//! reading back (the harness is `fuzzlive/mod.rs`; `cargo bench -p enip-server --bench
//! live_fuzz` runs it for longer and prints a table). Deterministic seed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod fuzzlive;

use std::time::Duration;

use fuzzlive::{Plan, Target};

/// RSS may grow by buffers and allocator caches that stay; a leak per connection or per
/// frame would pass this over thousands of each.
const RSS_GROWTH_BOUND_KIB: u64 = 16 * 1024;

#[test]
fn fuzzed_server_stays_up_leaks_nothing_and_serves_the_good_client() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = std::env::temp_dir().join(format!("live_fuzz_test_{}.log", std::process::id()));
    let mut t = Target::start(env!("CARGO_BIN_EXE_enip-server"), [127, 0, 82, 1], log);
    let plan = Plan {
        seed: 0x11FE_F022,
        duration: Duration::from_secs(3),
        tcp_fuzzers: 3,
        flood_burst: 100,
    };
    let o = fuzzlive::run(&mut t, &plan, &rt);
    println!("{o:#?}");
    let log = t.log_text();
    assert!(o.alive, "the server exited; log:\n{log}");
    assert!(!o.panicked, "the server panicked; log:\n{log}");
    // The fuzz reached the server, on every path: not a vacuous pass.
    assert!(o.tcp_frames > 500, "{o:?}");
    assert!(o.udp_frames > 500, "{o:?}");
    assert!(o.udp_replies > 0, "{o:?}");
    assert!(o.slowloris > 0 && o.flood >= 100, "{o:?}");
    assert!(o.encap_errors > 0.0, "{o:?}");
    assert!(o.reply_bytes > 0, "{o:?}");
    assert!(o.gauge_during_max > 1.0, "{o:?}");
    // The well-behaved client worked throughout and saw no error.
    assert!(o.good_ops > 20, "{o:?}");
    assert_eq!(o.good_errors, Vec::<String>::new());
    // Nothing leaked.
    assert_eq!(o.gauge_before, 0.0);
    assert_eq!(o.gauge_after, o.gauge_before, "{o:?}");
    assert!(o.fds_after <= o.fds_before, "{o:?}");
    assert!(
        o.rss_after_kib <= o.rss_before_kib + RSS_GROWTH_BOUND_KIB,
        "{o:?}"
    );
    t.stop();
}
