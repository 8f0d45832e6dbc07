//! Tag history: cpppo's line format both ways, rotation with gzip, nothing lost under
//! load, `--print`, and replay of histories and CSVs.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enip_device::{Controller, Literal};
use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::mr::service as svc;
use enip_proto::services::{Body as _, WriteTag};
use enip_proto::types::{DataType, TypeTag};
use enip_proto::{
    Body, Command as Cmd, Cpf, Encapsulation, FrameDecoder, Header, Path as CipPath, Reply, Request,
};
use enip_server::history::{self, parse_line, parse_time, HistoryWriter, Record, Rotation};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("enip-history-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rec(at_us: u64, tag: &str, first: usize, write: bool, values: Vec<Literal>) -> Record {
    Record {
        at_us,
        tag: tag.into(),
        first,
        last: first + values.len().max(1) - 1,
        write,
        values,
    }
}

#[test]
fn lines_are_cpppos_format_both_ways() {
    // 2014-11-02 08:02:03.122 UTC, from cpppo's own doctest.
    let at = 1_414_915_323_122_000;
    let cases = [
        (
            rec(at, "SCADA", 2, false, vec![Literal::Int(0), Literal::Int(7), Literal::Int(-3)]),
            "2014-11-02 08:02:03.122\t[\"SCADA\", [2, 4]]\t{\"read\": [0, 7, -3]}\n",
        ),
        (
            rec(at, "Program:Main.Speed", 0, true, vec![Literal::Float(1.5), Literal::Float(2.0)]),
            "2014-11-02 08:02:03.122\t[\"Program:Main.Speed\", [0, 1]]\t{\"write\": [1.5, 2.0]}\n",
        ),
        (
            rec(at, "Temps", 0, true, vec![Literal::Float(f64::NAN), Literal::Float(f64::NEG_INFINITY)]),
            "2014-11-02 08:02:03.122\t[\"Temps\", [0, 1]]\t{\"write\": [NaN, -Infinity]}\n",
        ),
        (
            rec(at, "Recipe", 0, true, vec![Literal::Text("say \"NaN\"\tnow".into())]),
            "2014-11-02 08:02:03.122\t[\"Recipe\", [0, 0]]\t{\"write\": [\"say \\\"NaN\\\"\\tnow\"]}\n",
        ),
    ];
    for (r, line) in cases {
        assert_eq!(r.to_line(), line);
        let back = parse_line(line).unwrap().unwrap();
        // NaN != NaN: compare the lines they print.
        assert_eq!(back.to_line(), line);
        assert_eq!(
            (back.tag, back.first, back.last, back.write),
            (r.tag, r.first, r.last, r.write)
        );
    }
    assert_eq!(parse_line("# a comment").unwrap(), None);
    assert_eq!(parse_line("   ").unwrap(), None);
    for (bad, msg) in [
        ("2014-11-02 08:02:03.122 [\"A\", [0, 0]]", "expected TIME<tab>[\"Tag\", [first, last]]<tab>{\"read\"|\"write\": [...]}"),
        ("yesterday\t[\"A\", [0, 0]]\t{\"read\": [1]}", "`yesterday` is not a time (expected e.g. 2026-11-24 19:50:01.123 or 1700000000.5)"),
        ("2014-11-02 08:02:03\t[\"A\", 0]\t{\"read\": [1]}", "bad [\"Tag\", [first, last]] `[\"A\", 0]`: invalid type: integer `0`, expected a tuple of size 2 at line 1 column 7"),
        ("2014-11-02 08:02:03\t[\"A\", [0, 0]]\t{\"peek\": [1]}", "`peek` is neither read nor write"),
    ] {
        assert_eq!(parse_line(bad).unwrap_err(), msg, "{bad}");
    }
}

#[test]
fn times_parse_in_the_forms_people_write() {
    let want = 1_414_915_323_122_000;
    for t in [
        "2014-11-02 08:02:03.122",
        "2014-11-02 08:02:03.122 UTC",
        "2014-11-02T08:02:03.122Z",
        "2014-11-02T09:02:03.122+01:00",
        "1414915323.122",
    ] {
        assert_eq!(parse_time(t).unwrap(), want, "{t}");
    }
    assert_eq!(history::format_utc(want), "2014-11-02 08:02:03.122");
}

#[test]
fn people_see_local_time_with_the_zone_abbreviation() {
    // Only this test in this binary reads the local zone.
    std::env::set_var("TZ", "Europe/Paris");
    let winter = parse_time("2026-01-15 12:00:00").unwrap();
    let summer = parse_time("2026-07-15 12:00:00").unwrap();
    assert_eq!(history::format_local(winter), "2026-01-15 13:00:00.000 CET");
    assert_eq!(
        history::format_local(summer),
        "2026-07-15 14:00:00.000 CEST"
    );
}

fn gunzip(p: &Path) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn rotation_gzips_old_files_and_loses_no_record() {
    let dir = tmp("rotate");
    let path = dir.join("h.log");
    let w = HistoryWriter::open(
        &path,
        Rotation {
            max_bytes: 4096,
            keep: 3,
        },
        0,
    )
    .unwrap();
    let records: Vec<Record> = (0..400)
        .map(|i| {
            rec(
                1_700_000_000_000_000 + i * 1000,
                "SCADA",
                i as usize,
                true,
                vec![Literal::Int(i.into())],
            )
        })
        .collect();
    w.write(&records);
    drop(w);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["h.log", "h.log.1.gz", "h.log.2.gz", "h.log.3.gz"]);
    // The newest records are in the live file and the .N.gz files, newest first; what
    // rotated past `keep` is gone, and nothing else is missing.
    let mut text = String::new();
    for n in [3, 2, 1] {
        text += &gunzip(&dir.join(format!("h.log.{n}.gz")));
    }
    text += &std::fs::read_to_string(&path).unwrap();
    let firsts: Vec<usize> = text
        .lines()
        .filter_map(|l| parse_line(l).unwrap())
        .map(|r| r.first)
        .collect();
    assert!(!firsts.is_empty());
    let start = firsts[0];
    assert_eq!(firsts, (start..400).collect::<Vec<_>>());
    // load() reads a gzipped file as well.
    let loaded = history::load(&dir.join("h.log.1.gz")).unwrap();
    assert!(!loaded.is_empty());
}

#[test]
fn csv_replay_files_load_and_bad_ones_say_where() {
    let dir = tmp("csv");
    let good = dir.join("plant.csv");
    std::fs::write(
        &good,
        "time, Level, Valve[2], Name\n\
         2026-11-24 10:00:00, 1.5, 1, \"tank A\"\n\
         # a comment\n\
         2026-11-24 10:00:01, 2.5, , \n",
    )
    .unwrap();
    let r = history::load(&good).unwrap();
    let got: Vec<(String, usize, Literal)> = r
        .iter()
        .map(|r| (r.tag.clone(), r.first, r.values[0].clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("Level".into(), 0, Literal::Float(1.5)),
            ("Valve".into(), 2, Literal::Int(1)),
            ("Name".into(), 0, Literal::Text("tank A".into())),
            ("Level".into(), 0, Literal::Float(2.5)),
        ]
    );
    for (text, msg) in [
        (
            "time,A\n2026-11-24 10:00:00,1,2\n",
            "2: 3 cells, but the header has 2",
        ),
        (
            "time,A[x]\n",
            "1: bad column `A[x]` (expected Tag or Tag[index])",
        ),
        (
            "time\n",
            "1: the header needs a time column and at least one tag",
        ),
        (
            "time,A\nnoon,1\n",
            "2: `noon` is not a time (expected e.g. 2026-11-24 19:50:01.123 or 1700000000.5)",
        ),
    ] {
        let p = dir.join("bad.csv");
        std::fs::write(&p, text).unwrap();
        assert_eq!(
            history::load(&p).unwrap_err().to_string(),
            format!("{}:{msg}", p.display())
        );
    }
}

#[tokio::test(start_paused = true)]
async fn replay_runs_in_scaled_real_time() {
    let mut c = Controller::new();
    c.add_tag("Level=REAL").unwrap();
    let ctrl = Arc::new(Mutex::new(c));
    let t0 = 1_700_000_000_000_000;
    let records = vec![
        rec(t0, "Level", 0, true, vec![Literal::Float(1.0)]),
        rec(t0 + 1_000_000, "Level", 0, false, vec![Literal::Float(2.0)]),
        rec(t0 + 2_000_000, "Level", 0, true, vec![Literal::Float(3.0)]),
        rec(
            t0 + 2_000_000,
            "Missing",
            0,
            true,
            vec![Literal::Float(3.0)],
        ),
    ];
    let level = |ctrl: &enip_server::Shared| enip_server::lock(ctrl).values("Level", 0, 1).unwrap();
    let task = tokio::spawn(history::replay(ctrl.clone(), records, 2.0, false));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(level(&ctrl), [Literal::Float(1.0)]);
    // At speed 2, the record one second in lands at 0.5 s.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(level(&ctrl), [Literal::Float(2.0)]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(level(&ctrl), [Literal::Float(3.0)]);
    task.await.unwrap();
}

// ---- the binary: --history under load, --print ----

const BIN: &str = env!("CARGO_BIN_EXE_enip-server");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(addr: SocketAddr) {
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(t.elapsed() < Duration::from_secs(5), "{addr} never opened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Client {
    s: TcpStream,
    dec: FrameDecoder,
    session: u32,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut c = Self {
            s,
            dec: FrameDecoder::new(65535),
            session: 0,
        };
        let reg = Encapsulation {
            header: Header::new(Cmd::RegisterSession, 0, [0; 8]),
            body: Body::RegisterSession(RegisterSession::default()),
        };
        c.s.write_all(&reg.to_vec().unwrap()).unwrap();
        c.session = Encapsulation::decode(&c.recv()).unwrap().header.session;
        c
    }

    fn recv(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(f) = self.dec.next_frame().unwrap() {
                return f.to_vec().unwrap();
            }
            let n = self.s.read(&mut buf).unwrap();
            assert!(n > 0, "server closed the connection");
            self.dec.feed(&buf[..n]);
        }
    }

    fn write_dint(&mut self, tag: &str, v: i32) {
        let body = WriteTag {
            type_tag: TypeTag::atomic(DataType::Dint),
            elements: 1,
            data: &v.to_le_bytes(),
        }
        .to_vec()
        .unwrap();
        let msg = Request::build(svc::WRITE_TAG, &CipPath::parse(tag).unwrap(), &body).unwrap();
        let req = Encapsulation {
            header: Header::new(Cmd::SendRRData, self.session, [0; 8]),
            body: Body::SendData(SendData {
                interface_handle: 0,
                timeout: 5,
                cpf: Cpf::unconnected(&msg),
            }),
        };
        self.s.write_all(&req.to_vec().unwrap()).unwrap();
        let r = self.recv();
        let e = Encapsulation::decode(&r).unwrap();
        let m = e.send_data().unwrap().cpf.message().unwrap();
        assert_eq!(Reply::decode(m.data).unwrap().status.0, 0);
    }
}

fn stop(mut s: Server) {
    let pid = s.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let t = Instant::now();
    while s.0.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn history_under_load_keeps_every_write() {
    let dir = tmp("load");
    let file = dir.join("h.log");
    let server = Server(
        Command::new(BIN)
            .args(["-a", "127.0.44.1", "--history"])
            .arg(&file)
            .arg("SCADA=DINT[8]")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = "127.0.44.1:44818".parse().unwrap();
    wait_port(addr);
    let began = enip_server::now_us();
    let (threads, each) = (4, 500);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0..each {
                    c.write_dint(&format!("SCADA[{t}]"), i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let ended = enip_server::now_us();
    stop(server);
    let records = history::load(&file).unwrap();
    assert_eq!(records.len(), threads * each as usize);
    // Each request brings the wall-clock time with it (there is no ticker).
    assert!(records
        .iter()
        .all(|r| (began - 1_000..=ended + 1_000).contains(&r.at_us)));
    for t in 0..threads {
        let mine: Vec<Literal> = records
            .iter()
            .filter(|r| r.first == t)
            .map(|r| r.values[0].clone())
            .collect();
        // Every write, in the order each client made them.
        assert_eq!(
            mine,
            (0..each)
                .map(|i| Literal::Int(i.into()))
                .collect::<Vec<_>>()
        );
    }
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(first.starts_with("# "), "{first}");
    assert!(first.lines().next().unwrap().ends_with("times are UTC"));
}

#[test]
fn print_shows_each_write_as_cpppo_does() {
    let mut child = Command::new(BIN)
        .args(["-a", "127.0.44.2", "-p", "SCADA=DINT[8]"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let addr: SocketAddr = "127.0.44.2:44818".parse().unwrap();
    wait_port(addr);
    Client::connect(addr).write_dint("SCADA[3]", 42);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line, "               SCADA[    3-3    ] <= [42]\n");
    drop(server);
}

#[test]
fn structure_members_and_bits_are_recorded_by_path() {
    use enip_device::UdtDef;
    use enip_proto::services::ReadTag;
    let mut c = Controller::new();
    c.define_udt(&UdtDef::new(
        "Motor",
        &[("Speed", "REAL"), ("Running", "BOOL"), ("Hist", "DINT[4]")],
    ))
    .unwrap();
    c.add_tag("Motors=Motor[2]").unwrap();
    c.record_accesses(true);
    let run = |c: &mut Controller, service, path: &str, body: &[u8]| {
        let req = Request::build(service, &CipPath::parse(path).unwrap(), body).unwrap();
        let r = c.execute(&req, enip_device::UNCONNECTED_REPLY_LIMIT);
        assert_eq!(Reply::decode(&r).unwrap().status.0, 0, "{path}");
    };
    let bit = WriteTag {
        type_tag: TypeTag::atomic(DataType::Bool),
        elements: 1,
        data: &[1],
    }
    .to_vec()
    .unwrap();
    run(&mut c, svc::WRITE_TAG, "Motors[1].Running", &bit);
    let hist = WriteTag {
        type_tag: TypeTag::atomic(DataType::Dint),
        elements: 2,
        data: &[7, 0, 0, 0, 8, 0, 0, 0],
    }
    .to_vec()
    .unwrap();
    run(&mut c, svc::WRITE_TAG, "Motors[1].Hist[2]", &hist);
    run(
        &mut c,
        svc::READ_TAG,
        "Motors[0].Speed",
        &ReadTag { elements: 1 }.to_vec().unwrap(),
    );
    run(
        &mut c,
        svc::READ_TAG,
        "Motors[1]",
        &ReadTag { elements: 1 }.to_vec().unwrap(),
    );
    let lines: Vec<String> = history::drain(&mut c)
        .iter()
        .map(|r| r.to_line().split_once('\t').unwrap().1.to_owned())
        .collect();
    assert_eq!(
        lines[0],
        "[\"Motors[1].Running\", [0, 0]]\t{\"write\": [true]}\n"
    );
    assert_eq!(
        lines[1],
        "[\"Motors[1].Hist\", [2, 3]]\t{\"write\": [7, 8]}\n"
    );
    assert_eq!(
        lines[2],
        "[\"Motors[0].Speed\", [0, 0]]\t{\"read\": [0.0]}\n"
    );
    // A whole structure element: its bytes, in hex.
    assert!(
        lines[3].starts_with("[\"Motors\", [1, 1]]\t{\"read\": [\"0000000001000000"),
        "{}",
        lines[3]
    );
}
