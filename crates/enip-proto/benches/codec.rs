//! Decode and encode cost of the messages a busy simulator handles most: a connected
//! Read Tag request and its reply, and a 20-request Multiple Service Packet.
//!
//! `cargo bench -p enip-proto --bench codec`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use enip_proto::mr::service as svc;
use enip_proto::services::Body as _;
use enip_proto::services::{Multiple, ReadTag, ReplyBody, ReplyContext, RequestBody, TagData};
use enip_proto::types::{DataType, TypeTag};
use enip_proto::{Body, Command, Cpf, Encapsulation, Header, Path, Reply, Request, ServiceKind};

fn unit_data(cpf: Cpf<'_>) -> Encapsulation<'_> {
    Encapsulation {
        header: Header::new(Command::SendUnitData, 1, [7; 8]),
        body: Body::SendData(enip_proto::encap::SendData {
            interface_handle: 0,
            timeout: 0,
            cpf,
        }),
    }
}

fn frame(cpf: Cpf<'_>) -> Vec<u8> {
    unit_data(cpf).to_vec().unwrap_or_default()
}

fn read_request() -> Vec<u8> {
    let body = ReadTag { elements: 10 }.to_vec().unwrap_or_default();
    Request::build(
        svc::READ_TAG,
        &Path::parse("SCADA[0]").unwrap_or_default(),
        &body,
    )
    .unwrap_or_default()
}

/// Decode a frame down to the typed service body.
fn decode_request(bytes: &[u8]) -> usize {
    let Ok(e) = Encapsulation::decode(bytes) else {
        return 0;
    };
    let Some(m) = e.send_data().and_then(|sd| sd.cpf.message()) else {
        return 0;
    };
    let Ok(req) = Request::decode(m.data) else {
        return 0;
    };
    match RequestBody::decode(&req) {
        Ok(RequestBody::ReadTag(r)) => usize::from(r.elements),
        Ok(RequestBody::Multiple(msp)) => msp
            .requests()
            .filter_map(Result::ok)
            .filter_map(|r| RequestBody::decode(&r).ok())
            .count(),
        _ => 0,
    }
}

fn decode_reply(bytes: &[u8], kind: ServiceKind) -> usize {
    let Ok(e) = Encapsulation::decode(bytes) else {
        return 0;
    };
    let Some(m) = e.send_data().and_then(|sd| sd.cpf.message()) else {
        return 0;
    };
    let Ok(reply) = Reply::decode(m.data) else {
        return 0;
    };
    match ReplyBody::decode(&reply, &ReplyContext::new(kind)) {
        Ok(ReplyBody::TagData(t)) => t.data.len(),
        Ok(ReplyBody::Multiple(msp)) => msp
            .replies()
            .filter_map(Result::ok)
            .filter_map(|r| ReplyBody::decode(&r, &ReplyContext::new(ServiceKind::ReadTag)).ok())
            .count(),
        _ => 0,
    }
}

fn benches(c: &mut Criterion) {
    let req = read_request();
    let data = [0u8; 40];
    let reply = Reply::success(svc::READ_TAG, &[]);
    let tag = TagData {
        type_tag: TypeTag::atomic(DataType::Dint),
        data: &data,
    }
    .to_vec()
    .unwrap_or_default();
    let reply = Reply {
        data: &tag,
        ..reply
    }
    .to_vec()
    .unwrap_or_default();
    let req_frame = frame(Cpf::connected(0x8000_0001, 1, &req));
    let reply_frame = frame(Cpf::connected(0x7119_0427, 1, &reply));

    let msgs: Vec<&[u8]> = (0..20).map(|_| &req[..]).collect();
    let msp_body = Multiple { messages: msgs }.to_vec().unwrap_or_default();
    let msp = Request::build(
        svc::MULTIPLE_SERVICE_PACKET,
        &Path::message_router(),
        &msp_body,
    )
    .unwrap_or_default();
    let msp_frame = frame(Cpf::connected(0x8000_0001, 2, &msp));
    let replies: Vec<&[u8]> = (0..20).map(|_| &reply[..]).collect();
    let msp_reply_body = Multiple { messages: replies }.to_vec().unwrap_or_default();
    let msp_reply = Reply::success(svc::MULTIPLE_SERVICE_PACKET, &msp_reply_body)
        .to_vec()
        .unwrap_or_default();
    let msp_reply_frame = frame(Cpf::connected(0x7119_0427, 2, &msp_reply));

    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode Read Tag request", |b| {
        b.iter(|| decode_request(black_box(&req_frame)))
    });
    g.bench_function("decode Read Tag reply", |b| {
        b.iter(|| decode_reply(black_box(&reply_frame), ServiceKind::ReadTag))
    });
    g.bench_function("decode 20-request MSP", |b| {
        b.iter(|| decode_request(black_box(&msp_frame)))
    });
    g.bench_function("decode 20-reply MSP", |b| {
        b.iter(|| {
            decode_reply(
                black_box(&msp_reply_frame),
                ServiceKind::MultipleServicePacket,
            )
        })
    });

    let mut out = Vec::with_capacity(1024);
    g.bench_function("encode Read Tag request", |b| {
        b.iter(|| {
            out.clear();
            let mut mr = Vec::with_capacity(32);
            mr.push(svc::READ_TAG);
            if let Ok(p) = Path::parse(black_box("SCADA[0]")) {
                let _ = p.encode_sized(&mut mr);
            }
            let _ = ReadTag { elements: 10 }.encode(&mut mr);
            let _ = unit_data(Cpf::connected(0x8000_0001, 1, &mr)).encode(&mut out);
            black_box(out.len())
        })
    });
    g.bench_function("encode Read Tag reply", |b| {
        b.iter(|| {
            out.clear();
            let mut mr = Vec::with_capacity(64);
            let _ = Reply::success(svc::READ_TAG, &[]).encode(&mut mr);
            let _ = TagData {
                type_tag: TypeTag::atomic(DataType::Dint),
                data: black_box(&data),
            }
            .encode(&mut mr);
            let _ = unit_data(Cpf::connected(0x7119_0427, 1, &mr)).encode(&mut out);
            black_box(out.len())
        })
    });
    g.bench_function("encode 20-request MSP", |b| {
        b.iter(|| {
            out.clear();
            let msgs: Vec<&[u8]> = (0..20).map(|_| black_box(&req[..])).collect();
            let mut mr = Vec::with_capacity(512);
            mr.push(svc::MULTIPLE_SERVICE_PACKET);
            let _ = Path::message_router().encode_sized(&mut mr);
            let _ = Multiple { messages: msgs }.encode(&mut mr);
            let _ = unit_data(Cpf::connected(0x8000_0001, 2, &mr)).encode(&mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(codec, benches);
criterion_main!(codec);
