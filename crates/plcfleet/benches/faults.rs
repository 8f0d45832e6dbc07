//! The Docker daemon restarted in the middle of a reconcile: the controller rides it out
//! and the fleet converges, with no duplicate and no orphan. Restarting dockerd stops
//! every container on the engine, so this is a program one runs on purpose, not a test:
//!
//! ```text
//! PLCFLEET_FAULTS_RESTART_DOCKER=1 cargo bench -p plcfleet --bench faults
//! ```
//!
//! It needs root, `cpppo/scada:latest` (docker/build.sh), and a dockerd it may stop with
//! SIGTERM and start again with the same command line (not under systemd: there it uses
//! `systemctl restart docker`). Prints a table of each trial.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plcfleet::api::Shared;
use plcfleet::apply::{self, ApplyOptions};
use plcfleet::backend::Backend as _;
use plcfleet::controller::Controller;
use plcfleet::docker::DockerBackend;
use plcfleet::manifest::{self, BackendKind, Fleet};

const NAME: &str = "faults";
const N: usize = 10;

fn manifest_text(tag: &str) -> String {
    format!(
        "kind: Fleet\nmetadata: {{name: {NAME}}}\nspec:\n  backend: docker\n  image: cpppo/scada:latest\n  network: {{name: faults-net, subnet: 10.250.0.0/24}}\n  defaults: {{tags: {{T: {tag}}}, identity: {{serial: auto}}}}\n  simulators:\n    - name: s-{{index:02}}\n      replicas: {N}\n      ipStart: 10.250.0.10\n"
    )
}

fn docker_ok() -> bool {
    Command::new("docker")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Container ids by simulator, straight from the engine.
fn containers() -> BTreeMap<String, usize> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=plcfleet.fleet={NAME}"),
            "--format",
            "{{.Label \"plcfleet.simulator\"}}",
        ])
        .output()
        .unwrap();
    let mut m = BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        *m.entry(l.to_owned()).or_insert(0) += 1;
    }
    m
}

/// Restart dockerd the way it runs here; returns how long the engine was away.
fn restart_dockerd() -> Duration {
    let t = Instant::now();
    if Path::new("/run/systemd/system").exists() {
        assert!(Command::new("systemctl")
            .args(["restart", "docker"])
            .status()
            .unwrap()
            .success());
    } else {
        let pid = String::from_utf8(
            Command::new("pidof")
                .arg("dockerd")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let pid = pid
            .split_whitespace()
            .next()
            .expect("no dockerd running")
            .to_owned();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let argv: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        while Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::File::create("/tmp/dockerd-restarted.log").unwrap();
        // setsid -f: the new dockerd is nobody's child (it must outlive this program).
        assert!(Command::new("setsid")
            .arg("-f")
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap()
            .success());
    }
    while !docker_ok() {
        std::thread::sleep(Duration::from_millis(100));
    }
    t.elapsed()
}

async fn converged(b: &DockerBackend, f: &Fleet) -> Result<(), String> {
    let c = containers();
    if c.len() != N || c.values().any(|&n| n != 1) {
        return Err(format!("containers {c:?}"));
    }
    let observed = b.list(NAME).await.map_err(|e| e.to_string())?;
    let p = plcfleet::plan::plan(f, &observed);
    if p.changes() {
        return Err(format!("{p}"));
    }
    let mut failures = Vec::new();
    let quick = ApplyOptions {
        timeout: Duration::from_secs(3),
        ..ApplyOptions::default()
    };
    if apply::wait_healthy(&f.simulators, &quick, &mut failures).await != N {
        return Err(format!("{failures:?}"));
    }
    Ok(())
}

fn main() {
    if std::env::var("PLCFLEET_FAULTS_RESTART_DOCKER").as_deref() != Ok("1") {
        eprintln!(
            "SKIPPED: this restarts the Docker daemon (every container on it stops); run with \
             PLCFLEET_FAULTS_RESTART_DOCKER=1"
        );
        return;
    }
    assert!(docker_ok(), "no Docker engine");
    let trials: usize = std::env::var("PLCFLEET_FAULTS_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("plcfleet-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fleet.yaml");
    let b = rt.block_on(DockerBackend::connect(None)).unwrap();
    println!("| trial | restart after | engine away | converged after the restart | failed reconcile passes meanwhile | duplicates | orphans |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for trial in 0..trials {
        // A fleet in one version, then a change (every simulator recreated) in flight.
        let v0 = manifest_text(if trial % 2 == 0 { "INT" } else { "DINT" });
        let v1 = manifest_text(if trial % 2 == 0 { "DINT" } else { "INT" });
        std::fs::write(&file, &v0).unwrap();
        let f0 = manifest::parse(&file, &v0).unwrap();
        let opts = ApplyOptions {
            parallel: 4,
            wait: false,
            ..ApplyOptions::default()
        };
        rt.block_on(apply::apply(&b, &f0, &opts)).unwrap();
        std::fs::write(&file, &v1).unwrap();
        let f1 = manifest::parse(&file, &v1).unwrap();
        let shared = Shared::new().unwrap();
        let mut c = Controller::new(&dir, b.clone(), BackendKind::Docker, shared.clone(), opts);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = rt.spawn(async move {
            c.run(Duration::from_secs(1), None, async {
                let _ = stop_rx.await;
            })
            .await;
        });
        let after = Duration::from_millis(300 + 400 * trial as u64);
        std::thread::sleep(after);
        let away = restart_dockerd();
        let t = Instant::now();
        let deadline = t + Duration::from_secs(180);
        let outcome = loop {
            match rt.block_on(converged(&b, &f1)) {
                Ok(()) => break Ok(t.elapsed()),
                Err(e) if Instant::now() > deadline => break Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        };
        let _ = stop_tx.send(());
        rt.block_on(run).unwrap();
        let failed: u64 = shared
            .metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("plcfleet_reconcile_errors_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        let c = containers();
        let dups = c.values().filter(|&&n| n > 1).count();
        let orphans = c
            .keys()
            .filter(|k| !f1.simulators.iter().any(|s| &s.name == *k))
            .count();
        match outcome {
            Ok(conv) => println!(
                "| {trial} | {:.1} s | {:.1} s | {:.1} s | {failed} | {dups} | {orphans} |",
                after.as_secs_f64(),
                away.as_secs_f64(),
                conv.as_secs_f64()
            ),
            Err(e) => println!(
                "| {trial} | {:.1} s | {:.1} s | NOT CONVERGED in 180 s: {e} | {failed} | {dups} | {orphans} |",
                after.as_secs_f64(),
                away.as_secs_f64()
            ),
        }
    }
    let f = manifest::parse(&file, &std::fs::read_to_string(&file).unwrap()).unwrap();
    rt.block_on(apply::delete(&b, &f)).unwrap();
}
