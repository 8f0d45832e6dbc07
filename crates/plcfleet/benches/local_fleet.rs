//! Local backend at scale: how long until N in-process simulators all answer
//! ListIdentity as themselves, and what each costs in memory. Prints a table; not a
//! timed test.
//!
//! ```text
//! cargo bench -p plcfleet --bench local_fleet            # N = 100, 250, 500, 1000
//! LOCAL_FLEET_SIZES=2000 cargo bench -p plcfleet --bench local_fleet
//! ```
//!
//! Each simulator serves `SCADA=DINT[1000]` on its own address in 127.79.0.0/16. RSS is
//! this process's VmRSS after the fleet is up, less before, divided by N.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use plcfleet::apply::{self, ApplyOptions};
use plcfleet::local::LocalBackend;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("LOCAL_FLEET_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 250, 500, 1000]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| simulators | ready (all answer as themselves) | RSS per simulator | no-op re-apply |"
    );
    println!("|---:|---:|---:|---:|");
    for n in sizes {
        let yaml = format!(
            "kind: Fleet\nmetadata: {{name: bench}}\nspec:\n  backend: local\n  network: {{subnet: 127.79.0.0/16}}\n  defaults:\n    tags: {{SCADA: \"DINT[1000]\"}}\n    identity: {{serial: auto}}\n  simulators:\n    - name: s-{{index:04}}\n      replicas: {n}\n      ipStart: 127.79.0.10\n"
        );
        let fleet = plcfleet::manifest::parse(Path::new("bench.yaml"), &yaml).unwrap();
        let backend = LocalBackend::new();
        let opts = ApplyOptions {
            parallel: 256,
            timeout: Duration::from_secs(60),
            ..ApplyOptions::default()
        };
        let (ready, per, noop) = rt.block_on(async {
            let before = rss_kib();
            let t = Instant::now();
            let r = apply::apply(&backend, &fleet, &opts).await.unwrap();
            let ready = t.elapsed();
            assert_eq!(r.healthy, n, "{:?}", r.failures);
            let per = (rss_kib().saturating_sub(before)) as f64 / n as f64;
            let t = Instant::now();
            let again = apply::apply(&backend, &fleet, &opts).await.unwrap();
            assert!(!again.plan.changes());
            let noop = t.elapsed();
            backend.shutdown();
            (ready, per, noop)
        });
        println!(
            "| {n} | {:.3} s | {per:.0} KiB | {:.3} s |",
            ready.as_secs_f64(),
            noop.as_secs_f64()
        );
        // Let the listeners close before the next size reuses the addresses.
        std::thread::sleep(Duration::from_millis(300));
    }
}
