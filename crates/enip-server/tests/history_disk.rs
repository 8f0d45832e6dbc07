//! The history file on a disk that fills up: recording goes on, every record is either
//! written or counted as lost (and logged), the file holds only whole lines, and once
//! there is room again it says how many records were lost and why.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use enip_device::Literal;
use enip_server::history::{parse_line, HistoryWriter, Record, Rotation};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("enip-history-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rec(at_us: u64, first: usize, v: i64) -> Record {
    Record {
        at_us,
        tag: "SCADA".into(),
        first,
        last: first,
        write: true,
        values: vec![Literal::Int(v.into())],
    }
}

/// A small tmpfs, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(name: &str, size: &str) -> Option<Self> {
        let dir = tmp(name);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Self(dir));
        }
        let why = "cannot mount a small tmpfs (needs root and CAP_SYS_ADMIN)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: {why}"
        );
        eprintln!("skipping: {why}");
        None
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_loses_no_record_without_saying_so() {
    let Some(disk) = SmallDisk::mount("full", "256k") else {
        return;
    };
    // Fill the disk but for a few KiB.
    let filler = disk.0.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
    }
    let size = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(size - 12 * 1024)
        .unwrap();
    let path = disk.0.join("h.log");
    let w = HistoryWriter::open(
        &path,
        Rotation {
            max_bytes: 1 << 30,
            keep: 1,
        },
        0,
    )
    .unwrap();
    let batch = |from: u64| -> Vec<Record> {
        (from..from + 500)
            .map(|i| rec(1_700_000_000_000_000 + i, i as usize, i as i64))
            .collect()
    };
    // 2,000 records of ~70 bytes into ~12 KiB: most cannot be written.
    for n in 0..4 {
        w.write(&batch(n * 500));
        w.flush();
    }
    let s = w.stats();
    assert_eq!(s.written.get() + s.lost.get(), 2000);
    assert!(s.lost.get() > 1000, "lost {}", s.lost.get());
    assert!(s.errors.get() > 0);
    let lost_while_full = s.lost.get();
    // Space again: writing resumes by itself, and the file says what was lost.
    std::fs::remove_file(&filler).unwrap();
    w.write(&batch(10_000));
    w.flush();
    assert_eq!(
        s.lost.get(),
        lost_while_full,
        "nothing lost once there is room"
    );
    assert_eq!(s.written.get() + s.lost.get(), 2500);
    let text = std::fs::read_to_string(&path).unwrap();
    // Only whole lines: every record line parses, and they are exactly the written ones.
    let records: Vec<Record> = text
        .lines()
        .filter_map(|l| parse_line(l).unwrap())
        .collect();
    assert_eq!(records.len() as u64, s.written.get());
    // Each stretch of failures has its note (small batches may fit between big ones that
    // do not); together they account for every lost record.
    let notes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("# ") && l.contains(" record(s) lost since "))
        .collect();
    assert!(!notes.is_empty(), "no loss note in the file:\n{text}");
    let noted: u64 = notes
        .iter()
        .map(|l| l.split(' ').nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(noted, lost_while_full, "{notes:?}");
    assert!(
        notes.iter().all(|n| n.contains("No space left on device")),
        "{notes:?}"
    );
    // The last 500 are all there, in order.
    let tail: Vec<usize> = records
        .iter()
        .rev()
        .take(500)
        .rev()
        .map(|r| r.first)
        .collect();
    assert_eq!(tail, (10_000..10_500).collect::<Vec<_>>());
    drop(w);
}
