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
    // By name, through the running `up`: its table, with uptime and requests.
    let (code, out, e) = run(&["status", "quickstart", "--controller", "127.0.0.1:19177"]);
    assert_eq!(code, 0, "{e}");
    let head = out.lines().next().unwrap();
    assert!(
        head.split_whitespace()
            .eq(["NAME", "IP", "STATE", "HEALTH", "UPTIME", "REQUESTS"]),
        "{out}"
    );
    assert!(out.ends_with("100 of 100 healthy\n"), "{out}");
    let row = out.lines().find(|l| l.starts_with("plc-100 ")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..4],
        ["plc-100", "127.77.0.109", "running", "healthy"],
        "{row}"
    );
    assert!(cells[4].ends_with('s'), "uptime {row}");
    assert!(cells[5].parse::<u64>().is_ok(), "requests {row}");
    // `up` has no manifests directory: deleting by name says how to stop it instead.
    let (code, _, e) = run(&["delete", "quickstart", "--controller", "127.0.0.1:19177"]);
    assert_eq!(code, 1);
    assert!(e.contains("stop `plcfleet up`"), "{e}");
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

#[test]
fn fleets_by_name_through_the_controller() {
    let dir = std::env::temp_dir().join(format!("plcfleet-cli-ctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("named.yaml"),
        "kind: Fleet\nmetadata: {name: named}\nspec:\n  backend: local\n  network: {subnet: 127.87.0.0/16}\n  defaults: {tags: {SCADA: DINT}, web: true}\n  simulators:\n    - name: n-{index}\n      replicas: 3\n      ipStart: 127.87.0.10\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["controller", "--manifests"])
        .arg(&dir)
        .args(["--listen", "127.0.0.1:19178", "--resync", "0.5"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ctl = ["--controller", "127.0.0.1:19178"];
    let t = Instant::now();
    let out = loop {
        let (code, out, _) = run(&[&["status", "named", "-o", "json"][..], &ctl].concat());
        if code == 0 && out.matches("\"healthy\": true").count() == 3 {
            break out;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "never healthy: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["simulators"][2]["ip"], "127.87.0.12");
    assert!(v["simulators"][2]["uptime"].is_f64(), "{out}");
    let (code, out, err) = run(&[&["delete", "named"][..], &ctl].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("named.yaml"), "{out}");
    assert!(!dir.join("named.yaml").exists());
    let t = Instant::now();
    while TcpStream::connect("127.87.0.10:44818").is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the fleet outlived its manifest"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Gone from the controller; nothing of it anywhere else either.
    let (code, _, err) = run(&[&["status", "named"][..], &ctl].concat());
    assert_eq!(code, 1);
    assert!(err.contains("named"), "{err}");
    // Neither a file nor a name.
    let (code, _, err) = run(&["status", "missing.yaml"]);
    assert_eq!(
        (code, err.trim()),
        (1, "plcfleet: missing.yaml: no such manifest file")
    );
    let (code, _, err) = run(&["delete", "Not_A_Name"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("neither a manifest file nor a fleet name"),
        "{err}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_controller_off_loopback_needs_a_token_and_by_name_commands_send_it() {
    let dir = std::env::temp_dir().join(format!("plcfleet-cli-token-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("manifests")).unwrap();
    let manifests = dir.join("manifests");
    // Loopback unless told otherwise.
    for cmd in ["up", "controller"] {
        let (_, help, _) = run(&[cmd, "--help"]);
        assert!(help.contains("[default: 127.0.0.1:9100]"), "{cmd}: {help}");
        assert!(help.contains("--token-file <FILE>"), "{cmd}: {help}");
    }
    // Refused before anything starts, with what to do.
    for args in [
        vec![
            "controller",
            "--manifests",
            manifests.to_str().unwrap(),
            "--listen",
            "0.0.0.0:9",
        ],
        vec!["up", &example("quickstart.yaml"), "--listen", "0.0.0.0:9"],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .env_remove("PLCFLEET_TOKEN")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err.trim(),
            "plcfleet: --listen 0.0.0.0:9 is reachable from other hosts and the controller API can \
             create and delete fleets, so it needs a token: give --token-file FILE (a file holding \
             it) or set PLCFLEET_TOKEN, or listen on loopback (--listen 127.0.0.1:9)",
            "{args:?}"
        );
    }
    std::fs::write(
        manifests.join("tok.yaml"),
        "kind: Fleet\nmetadata: {name: tok}\nspec:\n  backend: local\n  network: {subnet: 127.88.0.0/16}\n  defaults: {tags: {SCADA: DINT}}\n  simulators:\n    - name: t\n      ip: 127.88.0.10\n",
    )
    .unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "example-controller-token\n").unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["controller", "--manifests"])
        .arg(&manifests)
        .args([
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--resync",
            "0.5",
            "--token-file",
        ])
        .arg(&token)
        .env_remove("PLCFLEET_TOKEN")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let ctl = ["--controller", addr.as_str()];
    let t = Instant::now();
    let out = loop {
        let out = Command::new(BIN)
            .args([&["status", "tok", "-o", "json"][..], &ctl].concat())
            .env("PLCFLEET_TOKEN", "example-controller-token")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("\"healthy\": true") {
            break text;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "never healthy: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(out.contains("127.88.0.10"), "{out}");
    // Without the token the controller says no, and the CLI says what to set.
    let out = Command::new(BIN)
        .args([&["status", "tok"][..], &ctl].concat())
        .env_remove("PLCFLEET_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the controller at {addr} wants a bearer token: set PLCFLEET_TOKEN"
        )),
        "{err}"
    );
    let page = http_get(&addr, "/api/fleets");
    assert!(
        page.starts_with("HTTP/1.0 401") || page.starts_with("HTTP/1.1 401"),
        "{page}"
    );
    assert!(
        page.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{page}"
    );
    for open in ["/metrics", "/healthz"] {
        let page = http_get(&addr, open);
        assert!(page.contains(" 200 OK"), "{open}: {page}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
