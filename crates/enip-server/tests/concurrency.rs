//! Concurrent writers and readers of the same tags, with `--history` on: every read sees
//! a whole write (no torn multi-element write), and the history holds every write once,
//! in an order per tag consistent with each writer's own order, ending with the value
//! the tags hold.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use enip_client::{Client, Options, TagPath, WireType};
use enip_device::Literal;
use enip_proto::DataType;

const WRITERS: i32 = 8;
/// Writes per writer, issued in batches of DEPTH in flight at once.
const WRITES: i32 = 48;
const DEPTH: i32 = 4;
const READERS: usize = 4;
const ELEMENTS: u16 = 100;

/// Writer `w`'s `k`th write (k from 0): every element of `Arr` and `Scalar` get this id.
fn id(w: i32, k: i32) -> i32 {
    (w + 1) * 1000 + k
}

fn dints(data: &[u8]) -> Vec<i32> {
    data.chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

async fn write_both(c: &Client, v: i32) {
    let dint = WireType::Atomic(DataType::Dint);
    let arr: Vec<u8> = (0..ELEMENTS).flat_map(|_| v.to_le_bytes()).collect();
    let (arr_path, scalar_path) = (
        TagPath::parse("Arr").unwrap(),
        TagPath::parse("Scalar").unwrap(),
    );
    let one = v.to_le_bytes();
    let (a, s) = tokio::join!(
        c.write_tag(&arr_path, dint, ELEMENTS, &arr),
        c.write_tag(&scalar_path, dint, 1, &one),
    );
    a.unwrap();
    s.unwrap();
}

async fn writer(addr: SocketAddr, w: i32) {
    let c = Client::connect(addr, Options::default()).await.unwrap();
    for batch in 0..WRITES / DEPTH {
        let k0 = batch * DEPTH;
        // DEPTH writes of each tag in flight on the one connection.
        tokio::join!(
            write_both(&c, id(w, k0)),
            write_both(&c, id(w, k0 + 1)),
            write_both(&c, id(w, k0 + 2)),
            write_both(&c, id(w, k0 + 3)),
        );
    }
    c.close().await.unwrap();
}

/// Whether `v` is the initial value or some write's id.
fn known(v: i32) -> bool {
    v == 0 || (1..=WRITERS).any(|w| (w * 1000..w * 1000 + WRITES).contains(&v))
}

async fn reader(addr: SocketAddr, stop: Arc<AtomicBool>, reads: Arc<AtomicU64>) {
    let c = Client::connect(addr, Options::default()).await.unwrap();
    let (arr, scalar) = (
        TagPath::parse("Arr").unwrap(),
        TagPath::parse("Scalar").unwrap(),
    );
    while !stop.load(Ordering::Relaxed) {
        let (a, s) = tokio::join!(c.read_tag(&arr, ELEMENTS), c.read_tag(&scalar, 1));
        let a = dints(&a.unwrap().data);
        assert_eq!(a.len(), usize::from(ELEMENTS));
        assert!(a.iter().all(|v| *v == a[0]), "torn read of Arr: {a:?}");
        assert!(known(a[0]), "Arr holds {} which nobody wrote", a[0]);
        let s = dints(&s.unwrap().data);
        assert!(s.len() == 1 && known(s[0]), "Scalar: {s:?}");
        reads.fetch_add(2, Ordering::Relaxed);
    }
    c.close().await.unwrap();
}

/// One tag's write records, each checked whole, as ids in history order.
fn writes_of(records: &[enip_server::history::Record], tag: &str, elements: usize) -> Vec<i32> {
    records
        .iter()
        .filter(|r| r.write && r.tag == tag)
        .map(|r| {
            assert_eq!((r.first, r.last), (0, elements - 1), "{r:?}");
            let vals: Vec<i32> = r
                .values
                .iter()
                .map(|l| match l {
                    Literal::Int(i) => i32::try_from(*i).unwrap(),
                    other => panic!("{other:?} in {r:?}"),
                })
                .collect();
            assert_eq!(vals.len(), elements, "{r:?}");
            assert!(
                vals.iter().all(|v| *v == vals[0]),
                "torn write recorded: {r:?}"
            );
            vals[0]
        })
        .collect()
}

fn check_history(order: &[i32], last_read: i32, tag: &str) {
    // Every write exactly once.
    let mut seen: HashMap<i32, usize> = HashMap::new();
    for v in order {
        *seen.entry(*v).or_default() += 1;
    }
    for w in 0..WRITERS {
        for k in 0..WRITES {
            assert_eq!(
                seen.get(&id(w, k)),
                Some(&1),
                "{tag}: write {} of writer {w}",
                k
            );
        }
    }
    assert_eq!(
        order.len(),
        (WRITERS * WRITES) as usize,
        "{tag}: extra records"
    );
    // Per writer: a batch is issued only after the previous one completed, so its
    // writes come after all of the previous batch's.
    for w in 0..WRITERS {
        let batches: Vec<i32> = order
            .iter()
            .filter(|v| (**v - 1000) / 1000 == w)
            .map(|v| (v % 1000) / DEPTH)
            .collect();
        assert!(
            batches.windows(2).all(|p| p[0] <= p[1]),
            "{tag}: writer {w}'s batches recorded out of order: {batches:?}"
        );
    }
    assert_eq!(
        order.last(),
        Some(&last_read),
        "{tag}: the last recorded write is not the value held"
    );
}

#[test]
fn concurrent_writers_are_never_torn_and_history_holds_every_write_in_order() {
    let dir = std::env::temp_dir().join(format!("enip-concurrency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hist = dir.join("history");
    let addr: SocketAddr = "127.0.83.1:44818".parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_enip-server"))
        .args(["-a", &addr.to_string(), "--history"])
        .arg(&hist)
        .args(["Arr=DINT[100]", "Scalar=DINT"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reads = Arc::new(AtomicU64::new(0));
    let (final_arr, final_scalar) = rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..READERS)
            .map(|_| tokio::spawn(reader(addr, stop.clone(), reads.clone())))
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(addr, w)))
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.await.unwrap();
        }
        let c = Client::connect(addr, Options::default()).await.unwrap();
        let a = dints(
            &c.read_tag(&TagPath::parse("Arr").unwrap(), ELEMENTS)
                .await
                .unwrap()
                .data,
        );
        let s = dints(
            &c.read_tag(&TagPath::parse("Scalar").unwrap(), 1)
                .await
                .unwrap()
                .data,
        );
        c.close().await.unwrap();
        assert!(a.iter().all(|v| *v == a[0]));
        (a[0], s[0])
    });
    // Readers ran alongside the writers (not a vacuous pass).
    assert!(reads.load(Ordering::Relaxed) > 0);
    // SIGTERM: the server writes out every record before it exits.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(10), "server did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    let records = enip_server::history::load(&hist).unwrap();
    check_history(&writes_of(&records, "Arr", 100), final_arr, "Arr");
    check_history(&writes_of(&records, "Scalar", 1), final_scalar, "Scalar");
    // Reads are recorded whole too.
    for r in records.iter().filter(|r| !r.write && r.tag == "Arr") {
        assert!(
            r.values.iter().all(|v| *v == r.values[0]),
            "torn read recorded: {r:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
