//! plcfleet's Docker backend against docker-compose and a `docker run` loop, same
//! machine, same run: time until N simulators all answer ListIdentity as themselves
//! (N = 100, 250, 500 by default), and a no-op re-apply at the largest N. Prints a
//! table; not a timed test. Another column measures bare `docker run -d` (no limits, no
//! hardening) with 64 in flight, until all answer: about what the engine itself allows.
//! Needs the Docker engine, docker-compose, and the image `cpppo/scada:latest`
//! (docker/build.sh).
//!
//! ```text
//! cargo bench -p plcfleet --bench docker_fleet
//! DOCKER_FLEET_SIZES=50,100 cargo bench -p plcfleet --bench docker_fleet
//! DOCKER_FLEET_ONLY=plcfleet cargo bench -p plcfleet --bench docker_fleet   # skip the others
//! ```
//!
//! Each simulator serves `SCADA=DINT[1000]` on its own address in 10.254.0.0/16; the
//! three methods take turns on the same network, which is removed at the end.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use plcfleet::apply::{self, ApplyOptions};
use plcfleet::docker::DockerBackend;
use plcfleet::manifest::{self, Fleet};

const NET: &str = "plcfleet-bench";

fn fleet(n: usize) -> Fleet {
    let yaml = format!(
        "kind: Fleet\nmetadata: {{name: bench}}\nspec:\n  backend: docker\n  image: cpppo/scada:latest\n  network: {{name: {NET}, subnet: 10.254.0.0/16}}\n  defaults: {{tags: {{SCADA: \"DINT[1000]\"}}}}\n  simulators:\n    - name: s-{{index:04}}\n      replicas: {n}\n      ipStart: 10.254.1.1\n"
    );
    manifest::parse(Path::new("bench.yaml"), &yaml).unwrap()
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn clean() {
    let ids = Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=bench.method"])
        .output()
        .unwrap();
    let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    for chunk in ids.chunks(100) {
        let mut a = vec!["docker", "rm", "-f"];
        a.extend_from_slice(chunk);
        sh(&a);
    }
}

async fn wait_all(f: &Fleet) -> Duration {
    let t = Instant::now();
    let mut failures = Vec::new();
    let opts = ApplyOptions {
        timeout: Duration::from_secs(300),
        ..ApplyOptions::default()
    };
    let ok = apply::wait_healthy(&f.simulators, &opts, &mut failures).await;
    assert_eq!(ok, f.simulators.len(), "{failures:?}");
    t.elapsed()
}

fn compose_file(f: &Fleet) -> String {
    let mut s = format!("networks:\n  fleet:\n    external: true\n    name: {NET}\nservices:\n");
    for sim in &f.simulators {
        let args: Vec<String> = sim.args().iter().map(|a| format!("\"{a}\"")).collect();
        s += &format!(
            "  {}:\n    image: cpppo/scada:latest\n    command: [{}]\n    labels: {{bench.method: compose}}\n    networks:\n      fleet: {{ipv4_address: {}}}\n",
            sim.name,
            args.join(", "),
            sim.ip
        );
    }
    s
}

/// `docker run -d` of one simulator on the bench network, as a user would type it.
fn run_args(sim: &plcfleet::Simulator) -> Vec<String> {
    let mut a: Vec<String> = [
        "docker",
        "run",
        "-d",
        "--label",
        "bench.method=run",
        "--network",
        NET,
        "--ip",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(sim.ip.to_string());
    a.push("cpppo/scada:latest".into());
    a.extend(sim.args());
    a
}

fn main() {
    if !sh(&["docker", "version"]) {
        eprintln!("SKIPPED: no Docker engine");
        return;
    }
    let sizes: Vec<usize> = std::env::var("DOCKER_FLEET_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 250, 500]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend = rt.block_on(DockerBackend::connect(None)).unwrap();
    let dir = std::env::temp_dir().join(format!("plcfleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("| simulators | plcfleet apply | docker-compose up -d | docker run loop | docker run, 64 at once | containers/s (plcfleet / docker run ×64) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut noop = None;
    for &n in &sizes {
        let f = fleet(n);
        // plcfleet: creates its own network.
        let t = Instant::now();
        let r = rt
            .block_on(apply::apply(
                &backend,
                &f,
                &ApplyOptions {
                    timeout: Duration::from_secs(300),
                    ..ApplyOptions::default()
                },
            ))
            .unwrap();
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let ours = t.elapsed();
        if n == *sizes.iter().max().unwrap() {
            let t = Instant::now();
            let again = rt
                .block_on(apply::apply(&backend, &f, &ApplyOptions::default()))
                .unwrap();
            assert!(!again.plan.changes());
            noop = Some((n, t.elapsed()));
        }
        // Remove the containers, keep the network for the others.
        let observed = rt
            .block_on(plcfleet::backend::Backend::list(&backend, &f.name))
            .unwrap();
        for o in &observed {
            rt.block_on(plcfleet::backend::Backend::remove(&backend, &f.name, o))
                .unwrap();
        }
        // Bare `docker run -d`, 64 at once: what the engine gives a parallel CLI loop.
        let t = Instant::now();
        let runs: Vec<Vec<String>> = f.simulators.iter().map(run_args).collect();
        std::thread::scope(|s| {
            for chunk in runs.chunks(runs.len().div_ceil(64).max(1)) {
                s.spawn(move || {
                    for a in chunk {
                        let a: Vec<&str> = a.iter().map(String::as_str).collect();
                        assert!(sh(&a));
                    }
                });
            }
        });
        rt.block_on(wait_all(&f));
        let ceiling = t.elapsed();
        clean();
        let rates = format!(
            "{:.1} / {:.1}",
            n as f64 / ours.as_secs_f64(),
            n as f64 / ceiling.as_secs_f64()
        );
        if std::env::var("DOCKER_FLEET_ONLY").as_deref() == Ok("plcfleet") {
            println!(
                "| {n} | {:.1} s | – | – | {:.1} s | {rates} |",
                ours.as_secs_f64(),
                ceiling.as_secs_f64()
            );
            continue;
        }
        // docker-compose on the same network.
        let compose = dir.join("docker-compose.yml");
        std::fs::write(&compose, compose_file(&f)).unwrap();
        let t = Instant::now();
        assert!(sh(&[
            "docker-compose",
            "-f",
            compose.to_str().unwrap(),
            "-p",
            "plcfleetbench",
            "up",
            "-d",
            "--quiet-pull"
        ]));
        rt.block_on(wait_all(&f));
        let comp = t.elapsed();
        sh(&[
            "docker-compose",
            "-f",
            compose.to_str().unwrap(),
            "-p",
            "plcfleetbench",
            "down",
        ]);
        clean();
        // docker run, one after another.
        let t = Instant::now();
        for sim in &f.simulators {
            let a = run_args(sim);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            assert!(sh(&a));
        }
        rt.block_on(wait_all(&f));
        let run = t.elapsed();
        clean();
        println!(
            "| {n} | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {rates} |",
            ours.as_secs_f64(),
            comp.as_secs_f64(),
            run.as_secs_f64(),
            ceiling.as_secs_f64()
        );
    }
    if let Some((n, t)) = noop {
        println!(
            "\nNo-op re-apply of {n} simulators: {:.2} s",
            t.as_secs_f64()
        );
    }
    rt.block_on(plcfleet::backend::Backend::remove_network(
        &backend,
        &fleet(1),
    ))
    .ok();
    sh(&["docker", "network", "rm", NET]);
}
