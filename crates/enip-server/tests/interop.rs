//! Real third-party clients against our server: pycomm3 1.2.16, pylogix 1.1.6 and
//! cpppo 5.2.5's client, from the Python venv `.ci/run` creates (`.venv` at the
//! workspace root, or `ENIP_PYTHON`). Each test serves on its own loopback address at
//! port 44818, as a controller does.
//!
//! Without the venv the tests skip, printing why; under `CI=true` that is a failure.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use enip_device::Controller;

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("ENIP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let ok = Command::new(&p)
        .args(["-c", "import pycomm3, pylogix, cpppo"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(p);
    }
    let why = format!(
        "no Python with pycomm3, pylogix and cpppo at {} (run .ci/run, or set ENIP_PYTHON)",
        p.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("SKIPPED: {why}");
    None
}

/// Serve the standard tag set on `ip:44818` on a runtime of its own.
fn serve(ip: [u8; 4]) -> SocketAddr {
    let addr = SocketAddr::from((ip, 44818));
    let mut c = Controller::new();
    for t in [
        "SCADA=DINT[1000]",
        "Recipe=STRING",
        "Program:Main.Step=DINT",
        "Bits=BOOL[96]",
        "Grid=REAL[4,5]",
    ] {
        c.add_tag(t).unwrap();
    }
    c.now_us = 1_700_000_000_000_000;
    let ctrl = Arc::new(Mutex::new(c));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
            let udp = tokio::net::UdpSocket::bind(addr).await.unwrap();
            tokio::spawn(enip_server::serve_udp(udp, ctrl.clone()));
            tx.send(()).unwrap();
            enip_server::serve_tcp(tcp, ctrl).await;
        });
    });
    rx.recv().unwrap();
    addr
}

fn run(py: &PathBuf, script: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn pycomm3_logix_driver_opens_with_defaults_and_reads_and_writes() {
    let Some(py) = python() else { return };
    let addr = serve([127, 0, 41, 1]);
    let script = r#"
import sys
from pycomm3 import LogixDriver
with LogixDriver(sys.argv[1]) as plc:
    print("info", plc.info["product_name"], plc.info["keyswitch"], plc.info["name"], sorted(plc.info["programs"]))
    print("tags", sorted(plc.tags))
    w = plc.write(("SCADA[0]{3}", [1, 2, 3]), ("Recipe", "hello"), ("Program:Main.Step", 7), ("Grid[1,2]", 1.5))
    print("write", [t.error for t in w])
    r = plc.read("SCADA[0]{5}", "Recipe", "Program:Main.Step", "Grid[1,2]")
    print("read", [t.value for t in r])
    plc.write("SCADA.5", True)
    print("bit", plc.read("SCADA[0]").value)
    plc.write("Bits[40]", True)
    print("bools", [t.value for t in plc.read("Bits[40]", "Bits[41]")])
    big = plc.read("SCADA{1000}")
    print("big", big.error, len(big.value))
    plc.write("SCADA[0]{1000}", list(range(1000)))
    print("bigwrite", plc.read("SCADA[999]").value)
    print("time", plc.get_plc_time().value["microseconds"])
"#;
    let out = run(&py, script, &[&addr.ip().to_string()]);
    let expect = [
        "info 1756-L81E/B LOGIX5581E REMOTE RUN Simulator ['Main']",
        "tags ['Bits', 'Grid', 'Program:Main.Step', 'Recipe', 'SCADA']",
        "write [None, None, None, None]",
        "read [[1, 2, 3, 0, 0], 'hello', 7, 1.5]",
        "bit 33",
        "bools [True, False]",
        "big None 1000",
        "bigwrite 999",
        "time 1700000000000000",
    ];
    for line in expect {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{line}` in:\n{out}"
        );
    }
}

#[test]
fn pylogix_reads_writes_lists_and_properties() {
    let Some(py) = python() else { return };
    let addr = serve([127, 0, 41, 2]);
    let script = r#"
import sys
from pylogix import PLC
with PLC(sys.argv[1]) as comm:
    print("write", comm.Write("SCADA[10]", 123).Status)
    print("read", [(r.TagName, r.Value, r.Status) for r in comm.Read(["SCADA[10]", "Program:Main.Step"])])
    print("string", comm.Write("Recipe", "pylogix").Status, comm.Read("Recipe").Value)
    r = comm.Read("SCADA[0]", 600)
    print("many", r.Status, len(r.Value))
    print("taglist", sorted(t.TagName for t in comm.GetTagList().Value))
    print("programs", comm.GetProgramsList().Value)
    print("time", comm.GetPLCTime(raw=True).Value)
    print("device", comm.GetDeviceProperties().Value.ProductName)
"#;
    let out = run(&py, script, &[&addr.ip().to_string()]);
    let expect = [
        "write Success",
        "read [('SCADA[10]', 123, 'Success'), ('Program:Main.Step', 0, 'Success')]",
        "string Success pylogix",
        "many Success 600",
        "taglist ['Bits', 'Grid', 'Program:Main', 'Program:Main.Step', 'Recipe', 'SCADA']",
        "programs ['Program:Main']",
        "time 1700000000000000",
        "device 1756-L81E/B LOGIX5581E",
    ];
    for line in expect {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{line}` in:\n{out}"
        );
    }
}

#[test]
fn cpppo_client_in_every_mode() {
    let Some(py) = python() else { return };
    let addr = serve([127, 0, 41, 3]);
    let a = addr.ip().to_string();
    for flags in [&[][..], &["-c"], &["-m"], &["-S"], &["-f"], &["-c", "-m"]] {
        let mut args = vec!["-m", "cpppo.server.enip.client", "-a", &a, "-p"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["SCADA[2]=(DINT)7", "SCADA[0-3]"]);
        let out = Command::new(&py).args(&args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flags:?}: {text}");
        assert!(
            text.contains("SCADA[2][  2-2  ]+  0 <= [7]: 'OK'"),
            "{flags:?}: {text}"
        );
        assert!(
            text.contains("SCADA[0][  0-3  ]+  0 == [0, 0, 7, 0]: 'OK'"),
            "{flags:?}: {text}"
        );
    }
    for flags in [&["-i"][..], &["-u", "-i"]] {
        let mut args = vec!["-m", "cpppo.server.enip.client", "-a", &a];
        args.extend_from_slice(flags);
        let out = Command::new(&py).args(&args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("1756-L81E/B LOGIX5581E"), "{flags:?}: {text}");
    }
}
