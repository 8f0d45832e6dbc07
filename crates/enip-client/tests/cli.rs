//! The binary's own features: operation errors that point at a character, `--thruput`,
//! `--json`, `--list-tags`, standard input, `-r`, UDP discovery.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{ours, serve, stderr, stdout};

#[test]
fn bad_operations_point_at_the_character_and_nothing_is_sent() {
    // Nothing listens at this address: a connection attempt would fail differently.
    let cases: &[(&str, &str)] = &[
        ("SCADA[0-1", "SCADA[0-1\n         ^ expected `]`"),
        (
            "SCADA[1]=(FLOAT)1",
            "SCADA[1]=(FLOAT)1\n          ^ unknown type `FLOAT`",
        ),
        (
            "SCADA[0-1]=1",
            "SCADA[0-1]=1\n           ^ 1 value(s) for 2 element(s)",
        ),
        ("Tag.5=1", "Tag.5=1\n    ^ a bit number"),
    ];
    for (op, want) in cases {
        let t = Instant::now();
        let out = ours(&["-a", "127.0.53.99", "-t", "10", "SCADA", op]);
        assert_eq!(out.status.code(), Some(1), "{op}");
        let err = stderr(&out);
        assert!(err.contains(want), "{op}: {err}");
        assert!(stdout(&out).is_empty());
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn thruput_ends_with_cpppos_line_and_latencies() {
    let addr = serve([127, 0, 53, 1]).ip().to_string();
    // 100 reads of 11 DINTs and 100 writes: one request each, or packed ~17 to a
    // 504-byte packet.
    for (flags, requests) in [(&["-d", "20"][..], "200"), (&["-d", "20", "-m"], " 13")] {
        let mut args = vec!["-a", addr.as_str(), "-r", "100", "--thruput"];
        args.extend_from_slice(flags);
        args.extend(["SCADA[0-10]", "SCADA[1]=(DINT)1"]);
        let out = ours(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let prefix = format!("200 operations using {requests} requests in ");
        assert!(lines[0].starts_with(&prefix), "{text}");
        assert!(lines[0].contains("s at pipeline depth 20; "), "{text}");
        assert!(lines[0].ends_with(" TPS"), "{text}");
        assert!(
            lines[1].starts_with("latency p50 ") && lines[1].ends_with(" ms"),
            "{text}"
        );
    }
    // With --json the summary is JSON too, so every line parses.
    let out = ours(&["-a", &addr, "-r", "3", "--json", "--thruput", "SCADA[0-10]"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4);
    let sum = &lines[3]["thruput"];
    assert_eq!(
        (sum["operations"].as_u64(), sum["requests"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(sum.get("sessions").is_none(), "{sum}");
}

#[test]
fn json_lines_carry_values_types_and_statuses() {
    let addr = serve([127, 0, 53, 2]).ip().to_string();
    let out = ours(&[
        "-a",
        &addr,
        "--json",
        "Speed[0-1]=(REAL)1.5,2",
        "Speed[0-1]",
        "Recipe=(STRING)\"flour, water\"",
        "Recipe",
        "Motors[1]",
        "Nope",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["action"], "write");
    assert_eq!(lines[1]["values"], serde_json::json!([1.5, 2.0]));
    assert_eq!(lines[1]["type"], "REAL");
    assert_eq!(lines[2]["ok"], true, "{}", lines[2]);
    assert_eq!(lines[3]["values"], serde_json::json!(["flour, water"]));
    assert_eq!(
        lines[4]["values"][0]["Pos"],
        serde_json::json!({"X": 0.0, "Y": 0.0})
    );
    assert_eq!(lines[4]["values"][0]["Hist"].as_array().unwrap().len(), 10);
    assert_eq!(lines[5]["ok"], false);
    assert_eq!(lines[5]["cip_status"], 4);
    assert_eq!(lines[5]["status"], "Status 4 [0]");
    assert_eq!(
        lines[5]["error"],
        "Read Tag Nope: CIP status 0x04 (path segment error) [0x0000]"
    );
}

#[test]
fn list_tags_shows_types_and_structure_layouts() {
    let addr = serve([127, 0, 53, 3]).ip().to_string();
    let out = ours(&["-a", &addr, "-c", "--list-tags"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "SCADA                 DINT[1000]",
        "Bits                  BOOL[64]",
        "Grid                  REAL[4,5]",
        "Motors                Motor[4]",
        "Program:Main.Step     DINT",
        "Motor (template ",
        "  Running       BOOL (bit 0)     offset 4",
        "  Pos           Point            offset 136",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    let out = ours(&["-a", &addr, "--list-tags", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(j["programs"], serde_json::json!(["Program:Main"]));
    assert!(j["structures"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "Point"));
}

#[test]
fn operations_from_standard_input_and_repeat() {
    let addr = serve([127, 0, 53, 4]).ip().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_enip-client"))
        .args([
            "-a",
            &addr,
            "-p",
            "-r",
            "2",
            "SCADA[0]=(DINT)5",
            "-",
            "Small[0]",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SCADA[0]\n\n# a comment\nSCADA[0-1]\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let once = [
        "            SCADA[0][  0-0  ]+  0 <= [5]: 'OK'",
        "            SCADA[0][  0-0  ]+  0 == [5]: 'OK'",
        "            SCADA[0][  0-1  ]+  0 == [5, 0]: 'OK'",
        "            Small[0][  0-0  ]+  0 == [0]: 'OK'",
    ];
    let want: Vec<&str> = once.iter().chain(once.iter()).copied().collect();
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), want);
}

#[test]
fn udp_discovery_unicast_and_broadcast_with_a_time_limit() {
    let addr = serve([127, 0, 53, 5]).ip().to_string();
    let out = ours(&["-a", &addr, "-u", "-i", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let j: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(j["items"][0]["product_name"], "1756-L81E/B LOGIX5581E");
    assert_eq!(j["peer"], format!("{addr}:44818"));
    let t = Instant::now();
    let out = ours(&["-a", &addr, "-u", "-b", "-i", "-t", "0.5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.elapsed() >= Duration::from_millis(500));
    assert!(stdout(&out).starts_with(&format!("List Identity  0 from ('{addr}', 44818): {{")));
    // Nobody answers: exit 1 after the time limit.
    let out = ours(&["-a", "127.0.53.98", "-u", "-b", "-i", "-t", "0.3"]);
    assert_eq!(out.status.code(), Some(1));
    // Tag operations need a session.
    let out = ours(&["-a", &addr, "-u", "SCADA"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("need a TCP session"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn several_addresses_and_connections_each_run_every_operation() {
    for ip in 10..=12 {
        serve([127, 0, 53, ip]);
    }
    // Three simulators, two sessions each; a run that must succeed.
    let fleet = |more: &[&str]| {
        let args = [&["-a", "127.0.53.10-12", "--connections", "2"], more].concat();
        let out = ours(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        out
    };
    let out = fleet(&["-d", "4", "--json", "SCADA[1]=(DINT)5", "SCADA[1]"]);
    let lines = json_lines(&out);
    // Every session ran both operations, in order, and says which session it is.
    for ip in 10..=12 {
        for k in 1..=2 {
            let target = format!("127.0.53.{ip}:44818#{k}");
            let mine: Vec<&serde_json::Value> =
                lines.iter().filter(|l| l["target"] == *target).collect();
            assert_eq!(mine.len(), 2, "{target}: {lines:?}");
            assert_eq!(mine[0]["action"], "write", "{target}");
            assert_eq!(mine[1]["values"], serde_json::json!([5]), "{target}");
        }
    }
    assert_eq!(lines.len(), 12);
    // Each simulator got its writes, not just one of them.
    for ip in 10..=12 {
        let one = ours(&["-a", &format!("127.0.53.{ip}"), "-p", "SCADA[0-1]"]);
        assert!(stdout(&one).contains("== [0, 5]: 'OK'"), "{}", stdout(&one));
    }

    // --thruput adds up every session, then names the slowest and fastest.
    let out = fleet(&[
        "-a",
        "127.0.53.10",
        "-d",
        "20",
        "-r",
        "50",
        "--thruput",
        "SCADA[0-10]",
        "SCADA[2]=(DINT)2",
    ]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("800 operations using 800 requests in "),
        "{text}"
    );
    assert!(lines[1].starts_with("latency p50 "), "{text}");
    assert!(
        lines[2].starts_with("8 sessions to 4 address(es): slowest "),
        "{text}"
    );
    assert!(lines[2].contains("127.0.53.1"), "{text}");

    // With --json, every line is JSON: one per operation, then the summary.
    let out = fleet(&["-d", "5", "-r", "10", "--json", "--thruput", "SCADA[0-10]"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 61);
    assert!(lines[..60].iter().all(|l| l["ok"] == true));
    let sum = &lines[60]["thruput"];
    assert_eq!(sum["operations"], 60, "{sum}");
    assert_eq!(sum["requests"], 60, "{sum}");
    assert_eq!(sum["depth"], 5, "{sum}");
    assert_eq!(sum["sessions"]["count"], 6, "{sum}");
    assert_eq!(sum["sessions"]["addresses"], 3, "{sum}");
    let rate = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!(rate(&sum["sessions"]["slowest"]["tps"]) <= rate(&sum["sessions"]["median_tps"]));
    assert!(rate(&sum["sessions"]["median_tps"]) <= rate(&sum["sessions"]["fastest"]["tps"]));
    assert!(rate(&sum["latency_ms"]["p50"]) <= rate(&sum["latency_ms"]["p99"]));
    assert!(
        rate(&sum["tps"]) > 0.0 && rate(&sum["seconds"]) > 0.0,
        "{sum}"
    );
}

#[test]
fn a_session_that_cannot_open_is_reported_and_the_rest_run() {
    serve([127, 0, 53, 13]);
    // Nothing listens on 127.0.53.14.
    let t = Instant::now();
    let out = ours(&[
        "-a",
        "127.0.53.13-14",
        "-t",
        "3",
        "-p",
        "SCADA[1]=(DINT)3",
        "SCADA[1]",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.lines().all(|l| l.starts_with("127.0.53.13:44818: ")),
        "{text}"
    );
    assert!(text.contains("== [3]: 'OK'"), "{text}");
    assert!(err.contains("127.0.53.14:44818: cannot connect"), "{err}");
    assert!(err.contains("1 of 2 sessions opened"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));

    // More sessions than the process may open files: said before anything is sent.
    let out = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 100 && exec \"$0\" -a 127.0.53.14 --connections 200",
        ])
        .arg(env!("CARGO_BIN_EXE_enip-client"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "200 sessions need about 264 open files; this process may open 100 \
             (raise it with `ulimit -n 264`)"
        ),
        "{}",
        stderr(&out)
    );

    // What only one controller can answer is refused before anything is sent.
    let out = ours(&["-a", "127.0.53.13-14", "--list-tags"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--list-tags asks one controller"),
        "{}",
        stderr(&out)
    );
}

/// Standard output as JSON, a value per line; a line that does not parse fails the test.
fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
