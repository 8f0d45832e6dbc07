//! End to end: `plcfleet controller` runs a fleet from a manifest directory and keeps a
//! file_sd targets file; a real Prometheus (Debian's) scrapes the controller and every
//! simulator through it. Skips without `prometheus` unless CI=true.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_plcfleet");

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    Some(r)
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn prometheus_scrapes_the_controller_and_every_simulator() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prometheus is not installed (apt-get install prometheus)"
        );
        eprintln!("SKIPPED: prometheus is not installed (apt-get install prometheus)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("plcfleet-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("scraped.yaml"),
        "kind: Fleet\nmetadata: {name: scraped}\nspec:\n  backend: local\n  network: {subnet: 127.83.0.0/16}\n  defaults: {tags: {SCADA: \"DINT[10]\"}, web: true}\n  simulators:\n    - name: s-{index}\n      replicas: 3\n      ipStart: 127.83.0.10\n",
    )
    .unwrap();
    let targets = dir.join("targets.json");
    let ctl = "127.0.0.1:19183";
    let _controller = Kill(
        Command::new(BIN)
            .args([
                "controller",
                "--resync",
                "0.5",
                "--listen",
                ctl,
                "--manifests",
            ])
            .arg(&manifests)
            .arg("--targets")
            .arg(&targets)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the targets file", Duration::from_secs(15), || {
        std::fs::read_to_string(&targets).is_ok_and(|t| t.contains("127.83.0.12:8080"))
    });
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: plcfleet\n    static_configs: [{{targets: ['{ctl}']}}]\n  - job_name: simulators\n    file_sd_configs: [{{files: ['{}'], refresh_interval: 1s}}]\n",
            targets.display()
        ),
    )
    .unwrap();
    let prom_addr = "127.0.0.1:19184";
    let _prom = Kill(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Every target up: the controller and the three simulators.
    wait_for(
        "4 healthy targets in Prometheus",
        Duration::from_secs(60),
        || {
            http_get(prom_addr, "/api/v1/targets?state=active")
                .is_some_and(|b| b.matches("\"health\":\"up\"").count() == 4)
        },
    );
    // And the data is there: the controller's gauge, the simulators' own metrics.
    wait_for("queries answer", Duration::from_secs(30), || {
        let healthy = http_get(prom_addr, "/api/v1/query?query=plcfleet_simulators_healthy")
            .unwrap_or_default();
        let sims = http_get(prom_addr, "/api/v1/query?query=count(enip_tags)").unwrap_or_default();
        healthy.contains("\"fleet\":\"scraped\"")
            && healthy.contains("\"3\"]")
            && sims.contains("\"3\"]")
    });
}
