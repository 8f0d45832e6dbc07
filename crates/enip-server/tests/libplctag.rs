//! libplctag 2.6.3 (the C library most HMI, SCADA and .NET/Python wrappers are built on,
//! through the `plctag-core` crate, which compiles its C source) against our server, as
//! shipped, with its ControlLogix defaults: connected messaging (Forward Open, falling
//! back as it does), Read Tag Fragmented for every read, writes replaying the read's type
//! bytes, many tags' requests packed into one Multiple Service Packet, STRING, REAL, BOOL
//! bits, a tag of a program, the `@tags` listing, and unconnected messaging.
//!
//! Each test serves on its own loopback address at port 44818 (127.0.48.x).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use plctag_core::RawTag;

const TIMEOUT: u32 = 5000;

/// Serve the test tags on `ip:44818`.
fn serve(ip: [u8; 4]) -> SocketAddr {
    support::serve_in_thread(
        ip,
        &[
            "SCADA=DINT[1000]",
            "Temp=REAL",
            "Flags=DINT",
            "Recipe=STRING",
            "Grid=INT[4,5]",
            "Program:Main.Step=DINT",
        ],
    )
}

fn tag(addr: SocketAddr, attrs: &str) -> RawTag {
    let path = format!(
        "protocol=ab-eip&gateway={}&path=1,0&plc=ControlLogix&{attrs}",
        addr.ip()
    );
    RawTag::new(path.as_str(), TIMEOUT)
        .unwrap_or_else(|e| panic!("libplctag cannot create `{attrs}`: {}", e.decode()))
}

fn ok(what: &str, s: plctag_core::Status) {
    assert!(s.is_ok(), "{what}: {}", s.decode());
}

#[test]
fn arrays_scalars_and_strings_read_and_write_connected() {
    let addr = serve([127, 0, 48, 1]);
    // 1000 DINTs (4000 bytes): more than one connected reply, so Read Tag Fragmented
    // walks the offsets.
    let scada = tag(addr, "name=SCADA&elem_count=1000");
    for i in 0..1000 {
        scada.set_i32(i * 4, i as i32 * 3 - 7).unwrap();
    }
    ok("write SCADA", scada.write(TIMEOUT));
    let back = tag(addr, "name=SCADA&elem_count=1000");
    ok("read SCADA", back.read(TIMEOUT));
    assert_eq!(back.size().unwrap(), 4000);
    for i in [0u32, 1, 499, 999] {
        assert_eq!(back.get_i32(i * 4).unwrap(), i as i32 * 3 - 7, "SCADA[{i}]");
    }
    // One element by index.
    let one = tag(addr, "name=SCADA[10]&elem_count=1");
    ok("read SCADA[10]", one.read(TIMEOUT));
    assert_eq!(one.get_i32(0).unwrap(), 23);

    let temp = tag(addr, "name=Temp&elem_count=1");
    temp.set_f32(0, 21.5).unwrap();
    ok("write Temp", temp.write(TIMEOUT));
    let t2 = tag(addr, "name=Temp&elem_count=1");
    ok("read Temp", t2.read(TIMEOUT));
    assert_eq!(t2.get_f32(0).unwrap(), 21.5);

    // A bit of a DINT: libplctag reads the DINT, sets the bit and writes it back.
    let bit = tag(addr, "name=Flags.5&elem_count=1");
    ok("read Flags.5", bit.read(TIMEOUT));
    bit.set_bit(0, true).unwrap();
    ok("write Flags.5", bit.write(TIMEOUT));
    let flags = tag(addr, "name=Flags&elem_count=1");
    ok("read Flags", flags.read(TIMEOUT));
    assert_eq!(flags.get_i32(0).unwrap(), 1 << 5);

    // A Logix STRING with libplctag's ControlLogix string defaults.
    let recipe = tag(addr, "name=Recipe&elem_count=1");
    ok("read Recipe", recipe.read(TIMEOUT));
    recipe.set_string(0, "batch 42").unwrap();
    ok("write Recipe", recipe.write(TIMEOUT));
    let r2 = tag(addr, "name=Recipe&elem_count=1");
    ok("read Recipe again", r2.read(TIMEOUT));
    let n = r2.get_string_length(0).unwrap() as usize;
    let mut buf = vec![0u8; n];
    r2.get_string(0, &mut buf).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf), "batch 42");

    // A 2-D array element and a program's tag.
    let cell = tag(addr, "name=Grid[2,3]&elem_count=1");
    cell.set_i16(0, -12).unwrap();
    ok("write Grid[2,3]", cell.write(TIMEOUT));
    let grid = tag(addr, "name=Grid&elem_count=20");
    ok("read Grid", grid.read(TIMEOUT));
    assert_eq!(grid.get_i16((2 * 5 + 3) * 2).unwrap(), -12);
    let step = tag(addr, "name=Program:Main.Step&elem_count=1");
    step.set_i32(0, 7).unwrap();
    ok("write Program:Main.Step", step.write(TIMEOUT));
    ok("read Program:Main.Step", step.read(TIMEOUT));
    assert_eq!(step.get_i32(0).unwrap(), 7);
}

#[test]
fn many_tags_at_once_share_packets_and_unconnected_messaging_works() {
    let addr = serve([127, 0, 48, 2]);
    // 50 single-element tags started together: libplctag packs their requests into
    // Multiple Service Packets on its one connection.
    let tags: Vec<RawTag> = (0..50)
        .map(|i| tag(addr, &format!("name=SCADA[{i}]&elem_count=1")))
        .collect();
    for (i, t) in tags.iter().enumerate() {
        t.set_i32(0, 1000 + i as i32).unwrap();
        let s = t.write(0);
        assert!(s.is_ok() || s.is_pending(), "{}", s.decode());
    }
    let until = Instant::now() + Duration::from_secs(10);
    while tags.iter().any(|t| t.status().is_pending()) {
        assert!(Instant::now() < until, "writes still pending");
        std::thread::sleep(Duration::from_millis(5));
    }
    for t in &tags {
        ok("packed write", t.status());
    }
    let all = tag(addr, "name=SCADA&elem_count=50");
    ok("read SCADA[0..50]", all.read(TIMEOUT));
    for i in 0..50u32 {
        assert_eq!(all.get_i32(i * 4).unwrap(), 1000 + i as i32);
    }
    // Unconnected (Unconnected Send with the route path); reads and writes.
    let u = tag(addr, "name=SCADA[3]&elem_count=1&use_connected_msg=0");
    ok("unconnected read", u.read(TIMEOUT));
    assert_eq!(u.get_i32(0).unwrap(), 1003);
}

#[test]
fn the_tag_listing_names_every_tag_and_program() {
    let addr = serve([127, 0, 48, 3]);
    let listing = tag(addr, "name=@tags");
    ok("read @tags", listing.read(TIMEOUT));
    let size = listing.size().unwrap();
    let mut raw = vec![0u8; size as usize];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = listing.get_u8(i as u32).unwrap();
    }
    // Entries: instance UDINT, type UINT, element size UINT, 3 dimensions UDINT, name
    // length UINT, name.
    let mut names = Vec::new();
    let mut at = 0;
    while at + 22 <= raw.len() {
        let len = u16::from_le_bytes([raw[at + 20], raw[at + 21]]) as usize;
        let name = String::from_utf8_lossy(&raw[at + 22..at + 22 + len]).into_owned();
        if name == "SCADA" {
            let dim0 = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap());
            assert_eq!(dim0, 1000);
            assert_eq!(
                u16::from_le_bytes([raw[at + 6], raw[at + 7]]),
                4,
                "element size"
            );
        }
        names.push(name);
        at += 22 + len;
    }
    assert_eq!(at, raw.len(), "entries fill the listing exactly");
    for want in ["SCADA", "Temp", "Flags", "Recipe", "Grid", "Program:Main"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let program = tag(addr, "name=Program:Main.@tags");
    ok("read Program:Main.@tags", program.read(TIMEOUT));
    let size = program.size().unwrap();
    let raw: Vec<u8> = (0..size).map(|i| program.get_u8(i).unwrap()).collect();
    assert!(
        raw.windows(4).any(|w| w == b"Step"),
        "Step not in the program's listing"
    );
}
