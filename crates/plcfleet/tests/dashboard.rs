//! The controller dashboard, as a browser draws it: `plcfleet up`, then headless
//! Chromium takes a screenshot, which must show the fleet's table with every simulator
//! marked healthy (in the dashboard's green). Skips without Chromium unless CI=true.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_plcfleet");

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn the_dashboard_renders_every_simulator_healthy() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no Chromium (apt-get install chromium)"
        );
        eprintln!("SKIPPED: no Chromium (apt-get install chromium)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("plcfleet-shot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("shot.yaml");
    std::fs::write(
        &manifest,
        "kind: Fleet\nmetadata: {name: screenshot}\nspec:\n  backend: local\n  network: {subnet: 127.84.0.0/16}\n  defaults: {tags: {SCADA: \"DINT[10]\"}}\n  simulators:\n    - name: press-{index:02}\n      replicas: 12\n      ipStart: 127.84.0.10\n",
    )
    .unwrap();
    let mut up = Command::new(BIN)
        .args([
            "up",
            manifest.to_str().unwrap(),
            "--listen",
            "127.0.0.1:19185",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(up.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _up = Kill(up);
    assert!(line.contains("12 of 12 simulators answering"), "{line}");
    let shot = dir.join("dashboard.png");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1000,700",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg("http://127.0.0.1:19185/")
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1000, 700));
    let channels = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let count = |want: [u8; 3], tol: i32| {
        px.chunks(channels)
            .filter(|p| (0..3).all(|i| (i32::from(p[i]) - i32::from(want[i])).abs() <= tol))
            .count()
    };
    // Text: dark pixels; "healthy" in #187a2f green, once per simulator row.
    let dark = count([0x22, 0x22, 0x22], 40);
    let green = count([0x18, 0x7a, 0x2f], 40);
    let red = count([0xb3, 0x26, 0x1e], 40);
    assert!(dark > 2000, "little text drawn: {dark} dark pixels");
    assert!(
        green > 12 * 40,
        "healthy marks missing: {green} green pixels"
    );
    assert_eq!(red, 0, "something is drawn as unhealthy");
}
