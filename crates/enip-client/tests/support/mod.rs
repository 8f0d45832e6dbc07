//! Shared by the integration tests: our simulator in-process, cpppo's simulator as a
//! child process, the Python venv, and running our binary and cpppo's client.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use enip_device::{Controller, UdtDef};

#[path = "../../../enip-server/tests/support/venv.rs"]
mod venv;

#[path = "../../../enip-server/tests/support/serve.rs"]
mod serve;
pub use serve::serve_controller;

/// The venv's Python with cpppo and pycomm3 (`ENIP_PYTHON` names another).
pub fn python() -> Option<PathBuf> {
    venv::python_with("ENIP_PYTHON", &["cpppo", "pycomm3"])
}

/// The tags every test server has.
pub const TAGS: &[&str] = &[
    "SCADA=DINT[1000]",
    "Small=INT[10]",
    "Speed=REAL[4]",
    "Flag=BOOL",
    "Bits=BOOL[64]",
    "Names=SSTRING[2]",
    "Recipe=STRING",
    "Big=LINT",
    "Un=UDINT",
    "Tiny=SINT",
    "Dbl=LREAL",
    "Grid=REAL[4,5]",
    "Program:Main.Step=DINT",
    "Volts@0x22/1/3=INT[2]",
];

pub fn controller() -> Controller {
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
        ],
    ))
    .unwrap();
    for t in TAGS.iter().chain(&["Motors=Motor[4]"]) {
        c.add_addressed_tag(t).unwrap();
    }
    c
}

/// Our simulator on `ip:44818` (TCP and UDP), on a runtime of its own for the rest of
/// the test process.
pub fn serve(ip: [u8; 4]) -> SocketAddr {
    serve_controller(ip, controller())
}

/// cpppo's simulator, killed when dropped.
pub struct Cpppo {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Cpppo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `python -m cpppo.server.enip -a ip:44818 TAGS...` and wait for its port.
pub fn cpppo_server(py: &PathBuf, ip: [u8; 4], tags: &[&str]) -> Cpppo {
    let addr = SocketAddr::from((ip, 44818));
    let child = Command::new(py)
        .args(["-m", "cpppo.server.enip", "-a", &addr.to_string()])
        .args(tags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Cpppo { child, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "cpppo's simulator did not open {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Run our binary.
pub fn ours(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enip-client"))
        .args(args)
        .output()
        .unwrap()
}

/// Run cpppo's client.
pub fn theirs(py: &PathBuf, args: &[&str]) -> Output {
    Command::new(py)
        .args(["-m", "cpppo.server.enip.client"])
        .args(args)
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
