//! Every service-body decoder, request and reply, selected by the first byte.
#![no_main]

use enip_proto::services::*;
use enip_proto::types::{DataType, LogixString, TypeTag, Value};
use enip_proto::wire::Reader;
use enip_proto::{Reply, Request, ServiceKind};
use libfuzzer_sys::fuzz_target;

/// Decode; if that succeeds, re-encode, decode again and compare.
macro_rules! rt {
    ($t:ty, $data:expr) => {{
        if let Ok(v) = <$t>::decode(&mut Reader::new($data)) {
            let b = v.to_vec().expect("a decoded body re-encodes");
            let again = <$t>::decode(&mut Reader::new(&b)).expect("a re-encoded body decodes");
            assert_eq!(again, v);
        }
    }};
}

const KINDS: [ServiceKind; 17] = [
    ServiceKind::GetAttributesAll,
    ServiceKind::GetAttributeList,
    ServiceKind::SetAttributeList,
    ServiceKind::MultipleServicePacket,
    ServiceKind::GetAttributeSingle,
    ServiceKind::SetAttributeSingle,
    ServiceKind::ReadTag,
    ServiceKind::ReadTagFragmented,
    ServiceKind::WriteTag,
    ServiceKind::WriteTagFragmented,
    ServiceKind::ReadModifyWrite,
    ServiceKind::GetInstanceAttributeList,
    ServiceKind::ReadTemplate,
    ServiceKind::UnconnectedSend,
    ServiceKind::ForwardOpen,
    ServiceKind::LargeForwardOpen,
    ServiceKind::ForwardClose,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    match sel % 24 {
        0 => rt!(ReadTag, body),
        1 => rt!(ReadTagFragmented, body),
        2 => rt!(TagData, body),
        3 => rt!(WriteTag, body),
        4 => rt!(WriteTagFragmented, body),
        5 => {
            let _ = ReadModifyWrite::decode(&mut Reader::new(body)).map(|v| v.to_vec());
        }
        6 => rt!(Multiple, body),
        7 => rt!(AttributeIds, body),
        8 => rt!(ReadTemplate, body),
        9 => rt!(UnconnectedSend, body),
        10 | 11 => {
            let large = sel % 24 == 11;
            if let Ok(v) = ForwardOpen::decode_with(&mut Reader::new(body), large) {
                let mut b = Vec::new();
                v.encode(&mut b).expect("re-encodes");
                assert_eq!(ForwardOpen::decode_with(&mut Reader::new(&b), large).ok(), Some(v));
            }
        }
        12 => rt!(ForwardOpenReply, body),
        13 => rt!(ForwardClose, body),
        14 => rt!(ForwardCloseReply, body),
        15 => {
            let _ = ConnectionFailure::decode(&mut Reader::new(body));
        }
        16 => {
            let forms = [
                AttributeListForm::GetReply,
                AttributeListForm::SetRequest,
                AttributeListForm::SetReply,
            ];
            for f in forms {
                let _ = AttributeList::decode_with(&mut Reader::new(body), f, template_attribute_size);
            }
        }
        17 => {
            let (ids, rest) = body.split_at(body.len().min(4));
            let requested: Vec<u16> = ids.iter().map(|b| u16::from(b % 11)).collect();
            if let Ok(l) = SymbolList::decode_with(&mut Reader::new(rest), &requested) {
                let mut b = Vec::new();
                l.encode(&mut b).expect("re-encodes");
                assert_eq!(SymbolList::decode_with(&mut Reader::new(&b), &requested).ok(), Some(l));
            }
        }
        18 => {
            let (n, rest) = body.split_first().map_or((0, body), |(n, r)| (*n, r));
            let _ = TemplateDefinition::decode(rest, u16::from(n));
        }
        19 => {
            let _ = TypeTag::decode(&mut Reader::new(body));
            let _ = LogixString::decode(&mut Reader::new(body));
            for t in DataType::ALL {
                let _ = Value::decode_many(t, body, body.len().min(64));
            }
        }
        20 | 21 => {
            // Full request, dispatched by (service, class).
            if let Ok(req) = Request::decode(body) {
                let _ = req.path.to_string();
                if let Ok(b) = RequestBody::decode(&req) {
                    let mut out = Vec::new();
                    b.encode(&mut out).expect("re-encodes");
                }
            }
        }
        _ => {
            // Full reply, decoded as the reply to each kind of request.
            if let Ok(reply) = Reply::decode(body) {
                let attrs = [1u16, 2, 8];
                for kind in KINDS {
                    let ctx = ReplyContext {
                        attributes: &attrs,
                        attribute_size: template_attribute_size,
                        ..ReplyContext::new(kind)
                    };
                    if let Ok(b) = ReplyBody::decode(&reply, &ctx) {
                        let mut out = Vec::new();
                        b.encode(&mut out).expect("re-encodes");
                    }
                }
            }
        }
    }
});
