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

use enip_device::{Controller, UdtDef};

#[path = "support/serve.rs"]
mod serve;
#[path = "support/venv.rs"]
mod venv;

/// The venv's Python with the three clients (`ENIP_PYTHON` names another).
fn python() -> Option<PathBuf> {
    venv::python_with("ENIP_PYTHON", &["pycomm3", "pylogix", "cpppo"])
}

/// Serve the standard tag set on `ip:44818` on a runtime of its own.
fn serve(ip: [u8; 4]) -> SocketAddr {
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
    serve_controller(ip, c)
}

/// Serve structures: `Motor` holds BOOLs, a STRING, an array, a nested `Point` and a
/// LINT; `Big` is larger than any connection, so clients read it in fragments.
fn serve_udts(ip: [u8; 4]) -> SocketAddr {
    let mut c = Controller::new();
    c.define_udt(&UdtDef::new("Point", &[("X", "REAL"), ("Y", "REAL")]))
        .unwrap();
    c.define_udt(&UdtDef::new(
        "Motor",
        &[
            ("Speed", "REAL"),
            ("Running", "BOOL"),
            ("Faulted", "BOOL"),
            ("Name", "STRING"),
            ("Hist", "DINT[10]"),
            ("Pos", "Point"),
            ("Count", "LINT"),
        ],
    ))
    .unwrap();
    for t in [
        "Motors=Motor[4]",
        "Program:Main.Cell=Motor",
        "Big=Motor[40]",
        "Plain=DINT",
    ] {
        c.add_tag(t).unwrap();
    }
    serve_controller(ip, c)
}

fn serve_controller(ip: [u8; 4], mut c: Controller) -> SocketAddr {
    c.now_us = 1_700_000_000_000_000;
    serve::serve_controller(ip, c)
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
    print("bits", comm.Write("SCADA[11].3", True).Status, comm.Write("Bits[37]", True).Status,
          [r.Value for r in comm.Read(["SCADA[11]", "SCADA[11].3", "SCADA[11].4", "Bits[37]", "Bits[36]"])])
    print("bitlist", comm.Read("Bits[32]", 8).Value)
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
        "bits Success Success [8, True, False, True, False]",
        "bitlist [False, False, False, False, False, True, False, False]",
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

#[test]
fn pycomm3_uploads_structures_and_reads_and_writes_them() {
    let Some(py) = python() else { return };
    let addr = serve_udts([127, 0, 41, 4]);
    let script = r#"
import sys
from pycomm3 import LogixDriver
with LogixDriver(sys.argv[1]) as plc:
    t = plc.tags["Motors"]
    print("tag", t["data_type_name"], t["dim"], t["dimensions"], t["data_type"]["attributes"])
    print("members", sorted(plc.data_types["Motor"]["internal_tags"]))
    print("nested", plc.data_types["Point"]["attributes"], plc.data_types["Motor"]["internal_tags"]["Name"]["data_type_name"])
    w = plc.write(("Motors[1].Speed", 2.5), ("Motors[1].Running", True), ("Motors[1].Pos.Y", 4.5),
                  ("Motors[1].Name", "pump"), ("Motors[1].Hist[3]", 7), ("Motors[1].Count", -3))
    print("write", [x.error for x in w])
    r = plc.read("Motors[1].Speed", "Motors[1].Running", "Motors[1].Faulted", "Motors[1].Pos.Y",
                 "Motors[1].Name", "Motors[1].Hist[3]", "Motors[1].Count")
    print("read", [x.value for x in r])
    m = plc.read("Motors[1]").value
    print("whole", m["Speed"], m["Running"], m["Faulted"], m["Name"], m["Hist"][:4], m["Pos"], m["Count"])
    m["Count"] = 99
    m["Faulted"] = True
    print("whole write", plc.write("Program:Main.Cell", m).error)
    c = plc.read("Program:Main.Cell").value
    print("program", c["Count"], c["Faulted"], c["Running"], c["Name"], c["Pos"])
    plc.write("Motors[1].Running", False)
    print("bit off", plc.read("Motors[1].Running").value, plc.read("Motors[1].Speed").value)
    plc.write("Big[39].Hist[9]", 123)
    big = plc.read("Big{40}")
    print("big", big.error, len(big.value), big.value[39]["Hist"][9])
    print("missing", plc.read("Motors[1].Nope").error is not None)
"#;
    let out = run(&py, script, &[&addr.ip().to_string()]);
    let expect = [
        "tag Motor 1 [4, 0, 0] ['Speed', 'Running', 'Faulted', 'Name', 'Hist', 'Pos', 'Count']",
        "members ['Count', 'Faulted', 'Hist', 'Name', 'Pos', 'Running', 'Speed', 'ZZZZZZZZZZMotor1']",
        "nested ['X', 'Y'] STRING",
        "write [None, None, None, None, None, None]",
        "read [2.5, True, False, 4.5, 'pump', 7, -3]",
        "whole 2.5 True False pump [0, 0, 0, 7] {'X': 0.0, 'Y': 4.5} -3",
        "whole write None",
        "program 99 True True pump {'X': 0.0, 'Y': 4.5}",
        "bit off False 2.5",
        "big None 40 123",
        "missing True",
    ];
    for line in expect {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{line}` in:\n{out}"
        );
    }
}

#[test]
fn pylogix_lists_structures_and_reads_and_writes_members() {
    let Some(py) = python() else { return };
    let addr = serve_udts([127, 0, 41, 5]);
    let script = r#"
import sys
from pylogix import PLC
with PLC(sys.argv[1]) as comm:
    tags = comm.GetTagList().Value
    print("taglist", sorted((t.TagName, t.DataType) for t in tags))
    print("fields", [f.TagName for f in comm.UDTByName["Motor"].Fields])
    print("point", [(f.TagName, f.DataType) for f in comm.UDTByName["Point"].Fields])
    print("write", comm.Write("Motors[1].Speed", 2.5).Status, comm.Write("Motors[1].Running", True).Status,
          comm.Write("Program:Main.Cell.Hist[2]", 42).Status)
    print("read", [(r.TagName, r.Value, r.Status) for r in comm.Read(["Motors[1].Speed", "Motors[1].Running", "Motors[1].Faulted"])])
    print("one", comm.Read("Motors[1].Speed").Value, comm.Read("Program:Main.Cell.Hist[2]").Value)
"#;
    let out = run(&py, script, &[&addr.ip().to_string()]);
    let expect = [
        "taglist [('Big', 'Motor'), ('Motors', 'Motor'), ('Plain', 'DINT'), ('Program:Main', ''), ('Program:Main.Cell', 'Motor')]",
        "fields ['Speed', 'ZZZZZZZZZZMotor1', 'Running', 'Faulted', 'Name', 'Hist', 'Pos', 'Count']",
        "point [('X', 'REAL'), ('Y', 'REAL')]",
        "write Success Success Success",
        "read [('Motors[1].Speed', 2.5, 'Success'), ('Motors[1].Running', True, 'Success'), ('Motors[1].Faulted', False, 'Success')]",
        "one 2.5 42",
    ];
    for line in expect {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{line}` in:\n{out}"
        );
    }
}

#[test]
fn cpppo_client_casts_every_type() {
    let Some(py) = python() else { return };
    let mut c = Controller::new();
    for t in [
        "Names=SSTRING[2]",
        "Small=INT[2]",
        "Speed=REAL",
        "Flag=BOOL",
        "Big=LINT",
        "Un=UDINT",
        "Tiny=SINT",
        "Dbl=LREAL",
        "Volts@0x22/1/3=INT[2]",
    ] {
        c.add_addressed_tag(t).unwrap();
    }
    let addr = serve_controller([127, 0, 41, 6], c);
    let ops = [
        (
            "Names[0]=(SSTRING)\"abc\"",
            "Names[0][  0-0  ]+  0 <= ['abc']: 'OK'",
        ),
        ("Names[0-1]", "Names[0][  0-1  ]+  0 == ['abc', '']: 'OK'"),
        (
            "Small[0-1]=(INT)-3,4",
            "Small[0][  0-1  ]+  0 <= [-3, 4]: 'OK'",
        ),
        ("Small[0-1]", "Small[0][  0-1  ]+  0 == [-3, 4]: 'OK'"),
        ("Speed=(REAL)1.5", "Speed              <= [1.5]: 'OK'"),
        ("Speed", "Speed              == [1.5]: 'OK'"),
        ("Flag=(BOOL)1", "Flag              <= [True]: 'OK'"),
        ("Flag", "Flag              == [True]: 'OK'"),
        ("Big=(LINT)-5", "Big              <= [-5]: 'OK'"),
        ("Big", "Big              == [-5]: 'OK'"),
        (
            "Un=(UDINT)4000000000",
            "Un              <= [4000000000]: 'OK'",
        ),
        ("Un", "Un              == [4000000000]: 'OK'"),
        ("Tiny=(SINT)-128", "Tiny              <= [-128]: 'OK'"),
        ("Tiny", "Tiny              == [-128]: 'OK'"),
        ("Dbl=(LREAL)2.25", "Dbl              <= [2.25]: 'OK'"),
        ("Dbl", "Dbl              == [2.25]: 'OK'"),
        // A cast that does not match the tag's type is refused, not stored.
        (
            "Small[0]=(DINT)9",
            "Small[0][  0-0  ]+  0 <= [9]: 'Status 255 [8455]'",
        ),
        ("Small[0]", "Small[0][  0-0  ]+  0 == [-3]: 'OK'"),
        // Numeric addressing of a NAME@cls/ins/att tag.
        (
            "@0x22/1/3/1=(INT)7",
            "@0x0022/1/3[1][  1-1  ]+  0 <= [7]: 'OK'",
        ),
        ("@0x22/1/3", "@0x0022/1/3              == [0]: 'OK'"),
    ];
    let a = addr.ip().to_string();
    let mut args = vec!["-m", "cpppo.server.enip.client", "-a", &a, "-p"];
    args.extend(ops.iter().map(|(op, _)| *op));
    let out = Command::new(&py).args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for (op, line) in ops {
        assert!(text.contains(line), "{op}: missing `{line}` in:\n{text}");
    }
}
