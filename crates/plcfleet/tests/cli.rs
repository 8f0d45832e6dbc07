//! The `plcfleet` binary: validate, plan, schema, targets, and `up` until Ctrl-C.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_plcfleet");

fn example(name: &str) -> String {
    format!(
        "{}/../../deploy/examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_plan_schema_and_targets() {
    let (code, out, _) = run(&["validate", &example("plant-a.yaml")]);
    assert_eq!(code, 0);
    assert!(
        out.ends_with(
            "fleet `plant-a` is valid: 201 simulator(s) on 10.213.0.0/16 (docker backend)\n"
        ),
        "{out}"
    );
    let dir = std::env::temp_dir().join(format!("plcfleet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "kind: Fleet\nmetadata: {name: f}\nspec:\n  backend: local\n  defaults: {tags: {S: INT}}\n  simulators:\n    - {name: a, ip: 127.77.0.5}\n    - {name: b, ip: 127.77.0.5}\n").unwrap();
    let (code, _, err) = run(&["validate", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!("plcfleet: {}:8:17: b: 127.77.0.5 is already `a`'s address\n  hint: every simulator needs its own address\n", bad.display())
    );
    // A fresh local fleet: everything to create, exit 2.
    let (code, out, _) = run(&["plan", &example("quickstart.yaml")]);
    assert_eq!(code, 2);
    assert!(
        out.ends_with("100 to create, 0 to update, 0 to delete, 0 unchanged\n"),
        "{out}"
    );
    let (code, out, _) = run(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(schema["title"], "RawFleet");
    let (code, out, _) = run(&["targets", &example("plant-a.yaml")]);
    assert_eq!(code, 0);
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t[0]["targets"].as_array().unwrap().len(), 201);
    assert_eq!(t[0]["targets"][0], "10.213.0.10:8080");
    assert_eq!(t[0]["labels"]["fleet"], "plant-a");
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r
}

#[test]
fn up_runs_the_quickstart_until_ctrl_c() {
    let mut child = Command::new(BIN)
        .args([
            "up",
            &example("quickstart.yaml"),
            "--listen",
            "127.0.0.1:19177",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(
            "plcfleet: fleet `quickstart`: 100 of 100 simulators answering on 127.77.0.0/16 in "
        ),
        "{line}"
    );
    let fleets = http_get("127.0.0.1:19177", "/api/fleets");
    assert!(
        fleets.contains(
            "\"name\":\"plc-100\",\"ip\":\"127.77.0.109\",\"state\":\"running\",\"healthy\":true"
        ),
        "{fleets}"
    );
    let metrics = http_get("127.0.0.1:19177", "/metrics");
    assert!(
        metrics.contains("plcfleet_simulators_healthy{fleet=\"quickstart\"} 100"),
        "{metrics}"
    );
    let page = http_get("127.0.0.1:19177", "/");
    assert!(page.contains("100 of 100 simulators healthy"), "{page}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "up did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("plcfleet: stopped fleet `quickstart`"),
        "{rest}"
    );
    // The addresses are free again.
    assert!(TcpStream::connect("127.77.0.10:44818").is_err());
}
