//! The access journal (`--print`, `--history`) and custom tag behaviour (TagHook).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::{Arc, Mutex};

use enip_device::{Access, Controller, Literal, Tag, TagHook, UNCONNECTED_REPLY_LIMIT};
use enip_proto::mr::service as svc;
use enip_proto::services::{Body as _, Multiple, ReadTag, ReadTagFragmented, WriteTag};
use enip_proto::types::{DataType, TypeTag};
use enip_proto::{GeneralStatus, Path, Reply, Request};

fn request(service: u8, path: &str, body: &[u8]) -> Vec<u8> {
    Request::build(service, &Path::parse(path).unwrap(), body).unwrap()
}

fn read_req(path: &str, n: u16) -> Vec<u8> {
    request(
        svc::READ_TAG,
        path,
        &ReadTag { elements: n }.to_vec().unwrap(),
    )
}

fn write_req(path: &str, t: DataType, n: u16, data: &[u8]) -> Vec<u8> {
    let body = WriteTag {
        type_tag: TypeTag::atomic(t),
        elements: n,
        data,
    }
    .to_vec()
    .unwrap();
    request(svc::WRITE_TAG, path, &body)
}

fn status(reply: &[u8]) -> u8 {
    Reply::decode(reply).unwrap().status.0
}

#[test]
fn the_journal_records_successful_reads_and_writes_only() {
    let mut c = Controller::new();
    c.add_tag("Other=INT").unwrap();
    c.add_tag("SCADA=DINT[100]").unwrap();
    // Not recording: nothing kept.
    c.execute(&read_req("SCADA[1]", 1), UNCONNECTED_REPLY_LIMIT);
    assert_eq!(c.take_journal(), []);

    c.record_accesses(true);
    c.now_us = 1_000;
    c.execute(&read_req("SCADA[2]", 3), UNCONNECTED_REPLY_LIMIT);
    c.now_us = 2_000;
    c.execute(
        &write_req("SCADA[5]", DataType::Dint, 1, &7i32.to_le_bytes()),
        UNCONNECTED_REPLY_LIMIT,
    );
    // Failures are not accesses.
    let bad = write_req("SCADA[5]", DataType::Int, 1, &[1, 0]);
    assert_eq!(status(&c.execute(&bad, UNCONNECTED_REPLY_LIMIT)), 0xFF);
    c.execute(&read_req("SCADA[99]", 2), UNCONNECTED_REPLY_LIMIT);
    c.execute(&read_req("Nope", 1), UNCONNECTED_REPLY_LIMIT);
    // A Multiple Service Packet's members each count; a fragmented read once.
    let msp = Multiple {
        messages: vec![&read_req("Other", 1), &read_req("SCADA[0]", 1)],
    }
    .to_vec()
    .unwrap();
    c.execute(
        &request(svc::MULTIPLE_SERVICE_PACKET, "@2/1", &msp),
        UNCONNECTED_REPLY_LIMIT,
    );
    for offset in [0u32, 200] {
        let frag = ReadTagFragmented {
            elements: 100,
            offset,
        }
        .to_vec()
        .unwrap();
        c.execute(
            &request(svc::READ_TAG_FRAGMENTED, "SCADA", &frag),
            UNCONNECTED_REPLY_LIMIT,
        );
    }
    let journal: Vec<_> = c
        .take_journal()
        .into_iter()
        .map(|a| (a.tag, a.offset, a.len, a.write, a.at_us, a.data.len()))
        .collect();
    assert_eq!(
        journal,
        [
            (1, 8, 12, false, 1_000, 12),
            (1, 20, 4, true, 2_000, 4),
            (0, 0, 2, false, 2_000, 2),
            (1, 0, 4, false, 2_000, 4),
            (1, 0, 400, false, 2_000, 400),
        ]
    );
    assert_eq!(c.take_journal(), []);
    // The journal holds the bytes as they were: a later write does not change them.
    c.execute(&read_req("SCADA[5]", 1), UNCONNECTED_REPLY_LIMIT);
    c.execute(
        &write_req("SCADA[5]", DataType::Dint, 1, &8i32.to_le_bytes()),
        UNCONNECTED_REPLY_LIMIT,
    );
    let j = c.take_journal();
    assert_eq!(j[0].data, 7i32.to_le_bytes());
    assert_eq!(j[1].data, 8i32.to_le_bytes());
}

/// Counts reads into the tag's value, and remembers writes.
#[derive(Debug)]
struct Counter {
    reads: i32,
    writes: Arc<Mutex<Vec<Access>>>,
}

impl TagHook for Counter {
    fn before_read(&mut self, tag: &mut Tag) -> Result<(), GeneralStatus> {
        self.reads += 1;
        if self.reads == 4 {
            // The source is away: the read fails rather than answer a stale value.
            return Err(GeneralStatus(0x0C));
        }
        tag.data.copy_from_slice(&self.reads.to_le_bytes());
        Ok(())
    }
    fn before_write(&mut self, _tag: &Tag) -> Result<(), GeneralStatus> {
        if self.reads > 4 {
            Err(GeneralStatus::ATTRIBUTE_NOT_SETTABLE)
        } else {
            Ok(())
        }
    }
    fn after_write(&mut self, _tag: &Tag, access: &Access) {
        self.writes.lock().unwrap().push(access.clone());
    }
}

#[test]
fn hooks_compute_reads_and_see_writes() {
    let mut c = Controller::new();
    c.add_tag("Hits=DINT").unwrap();
    let writes = Arc::new(Mutex::new(Vec::new()));
    assert!(c.set_hook(
        "hits",
        Box::new(Counter {
            reads: 0,
            writes: writes.clone()
        })
    ));
    assert!(!c.set_hook(
        "Nope",
        Box::new(Counter {
            reads: 0,
            writes: writes.clone()
        })
    ));
    for n in 1..=3i32 {
        let r = c.execute(&read_req("Hits", 1), UNCONNECTED_REPLY_LIMIT);
        assert_eq!(&r[r.len() - 4..], &n.to_le_bytes());
    }
    c.execute(
        &write_req("Hits", DataType::Dint, 1, &[9, 0, 0, 0]),
        UNCONNECTED_REPLY_LIMIT,
    );
    c.execute(
        &write_req("Hits", DataType::Real, 1, &[9, 0, 0, 0]),
        UNCONNECTED_REPLY_LIMIT,
    );
    assert_eq!(writes.lock().unwrap().len(), 1);
    // Reading by name outside a client request does not run the hook.
    assert_eq!(c.values("Hits", 0, 1).unwrap(), [Literal::Int(9)]);
    // A hook can fail a read, and refuse a write; neither is journalled or stored.
    c.record_accesses(true);
    assert_eq!(
        status(&c.execute(&read_req("Hits", 1), UNCONNECTED_REPLY_LIMIT)),
        0x0C
    );
    assert_eq!(
        status(&c.execute(&read_req("Hits", 1), UNCONNECTED_REPLY_LIMIT)),
        0
    );
    let w = write_req("Hits", DataType::Dint, 1, &[1, 0, 0, 0]);
    assert_eq!(status(&c.execute(&w, UNCONNECTED_REPLY_LIMIT)), 0x0E);
    assert_eq!(c.values("Hits", 0, 1).unwrap(), [Literal::Int(5)]);
    assert_eq!(c.take_journal().len(), 1);
}
