//! Request dispatch and the Logix tag services.

use enip_proto::mr::{class, service as svc, ServiceKind};
use enip_proto::path::{LogicalKind, Segment};
use enip_proto::services::{
    AttributeEntry, AttributeList, Body as _, ConnectionFailure, ForwardClose, ForwardCloseReply,
    ForwardOpen, ForwardOpenReply, Multiple, ReadModifyWrite, ReadTag, ReadTagFragmented,
    RequestBody, TagData, UnconnectedSend, WriteTag, WriteTagFragmented,
};
use enip_proto::status::{cm, logix};
use enip_proto::types::DataType;
use enip_proto::{EPath, GeneralStatus, Reply, Request};

use crate::connections::Connections;
use crate::identity::Identity;
use crate::tag::{ElementType, SpecError, TagSpec, Tags};

/// The largest Message Router reply sent without a connection (cpppo and Logix use
/// about 500 bytes).
pub const UNCONNECTED_REPLY_LIMIT: usize = 504;

/// The largest connection size granted by (Large) Forward Open: libplctag asks 4002.
pub const MAX_CONNECTION_SIZE: u16 = 4002;

/// Bytes of a Message Router reply header with no extended status.
pub(crate) const REPLY_HEADER: usize = 4;

/// A CIP failure: general status and extended words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault(pub(crate) GeneralStatus, pub(crate) Option<u16>);

impl Fault {
    pub(crate) const UNKNOWN_TAG: Self = Self(GeneralStatus::PATH_SEGMENT_ERROR, Some(0));
    pub(crate) const BEYOND_END: Self =
        Self(GeneralStatus::GENERAL_ERROR, Some(logix::ACCESS_BEYOND_END));
    pub(crate) const OUT_OF_RANGE: Self = Self(
        GeneralStatus::GENERAL_ERROR,
        Some(logix::ADDRESS_OUT_OF_RANGE),
    );
    pub(crate) const TYPE_MISMATCH: Self =
        Self(GeneralStatus::GENERAL_ERROR, Some(logix::TYPE_MISMATCH));
    pub(crate) const NOT_SUPPORTED: Self = Self(GeneralStatus::SERVICE_NOT_SUPPORTED, None);
    pub(crate) const NOT_ENOUGH_DATA: Self = Self(GeneralStatus::NOT_ENOUGH_DATA, None);
    pub(crate) const BAD_DATA: Self = Self(GeneralStatus::INVALID_PARAMETER_VALUE, None);
    pub(crate) const NO_OBJECT: Self = Self(GeneralStatus::PATH_DESTINATION_UNKNOWN, None);
    pub(crate) const NO_ATTRIBUTE: Self = Self(GeneralStatus::ATTRIBUTE_NOT_SUPPORTED, None);
    pub(crate) const NOT_SETTABLE: Self = Self(GeneralStatus::ATTRIBUTE_NOT_SETTABLE, None);
}

/// A run of elements of one tag: where its bytes are, and what they are.
#[derive(Debug, Clone, Copy)]
struct Span {
    tag: usize,
    /// Byte offset of the first element in the tag's data.
    from: usize,
    /// Bytes of the requested elements.
    len: usize,
    size: usize,
    elem: ElementType,
}

/// Where a tag path leads: a tag, and the flat element index it starts at.
#[derive(Debug, Clone, Copy)]
struct Target {
    tag: usize,
    start: usize,
}

/// The controller.
#[derive(Debug, Default)]
pub struct Controller {
    pub tags: Tags,
    pub identity: Identity,
    pub connections: Connections,
    pub network: crate::network::Network,
    /// The time now, in µs since 1970 UTC, set by the I/O layer (this crate has no clock).
    pub now_us: u64,
    /// What a client's Set Attribute List on the wall clock moved it by.
    pub clock_offset_us: i64,
}

impl Controller {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a tag from a cpppo-style spec, `SCADA=INT[1000]`.
    pub fn add_tag(&mut self, spec: &str) -> Result<usize, SpecError> {
        self.tags.insert(&TagSpec::parse(spec)?)
    }

    /// Execute one Message Router request and return the reply bytes. `limit` is the
    /// largest reply the transport carries (the connection size, or
    /// [`UNCONNECTED_REPLY_LIMIT`]); larger reads answer 0x06 with what fits.
    pub fn execute(&mut self, request: &[u8], limit: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.execute_into(request, limit, &mut out);
        out
    }

    /// As [`Controller::execute`], appending the reply to `out`.
    pub fn execute_into(&mut self, request: &[u8], limit: usize, out: &mut Vec<u8>) {
        let req = match Request::decode(request) {
            Ok(r) => r,
            Err(_) => {
                let service = request.first().map_or(0, |s| s & 0x7F);
                return fault_reply(service, Fault(GeneralStatus::PATH_SEGMENT_ERROR, None), out);
            }
        };
        let body = match RequestBody::decode(&req) {
            Ok(b) => b,
            Err(_) => return fault_reply(req.service, Fault::NOT_ENOUGH_DATA, out),
        };
        let result = match body {
            RequestBody::ReadTag(r) => self.read(&req, r, limit, out),
            RequestBody::ReadTagFragmented(r) => self.read_fragmented(&req, r, limit, out),
            RequestBody::WriteTag(w) => self.write(&req, &w, out),
            RequestBody::WriteTagFragmented(w) => self.write_fragmented(&req, &w, out),
            RequestBody::ReadModifyWrite(m) => self.read_modify_write(&req, &m, out),
            RequestBody::Multiple(m) => self.multiple(&req, &m, limit, out),
            RequestBody::AttributeIds(ids)
                if req.kind() == ServiceKind::GetInstanceAttributeList =>
            {
                self.symbol_list(&req, &ids.0, limit, out)
            }
            RequestBody::AttributeIds(ids) => self.attribute_list(&req, &ids.0, out),
            RequestBody::ReadTemplate(r) => self.read_template(&req, r, limit, out),
            RequestBody::Empty => self.get_attributes(&req, out),
            RequestBody::Values(v) if req.kind() == ServiceKind::SetAttributeList => {
                self.set_attribute_list(&req, v, out)
            }
            RequestBody::Values(_) => self.set_attributes(&req),
            RequestBody::UnconnectedSend(u) => self.unconnected_send(&u, out),
            RequestBody::ForwardOpen(fo) => self.forward_open(&req, &fo, out),
            RequestBody::ForwardClose(fc) => self.forward_close(&req, &fc, out),
            _ => Err(Fault::NOT_SUPPORTED),
        };
        if let Err(f) = result {
            fault_reply(req.service, f, out);
        }
    }

    /// Execute a request that arrived on connection `ot_id` (SendUnitData). `None` when
    /// no such connection is open: the request is dropped unanswered, as OpENer does.
    pub fn execute_connected(&mut self, ot_id: u32, request: &[u8]) -> Option<(u32, Vec<u8>)> {
        let c = *self.connections.get(ot_id)?;
        Some((c.to_id, self.execute(request, usize::from(c.size))))
    }

    fn get_attributes(&self, req: &Request<'_>, out: &mut Vec<u8>) -> Result<(), Fault> {
        let t = req.path.target();
        let data = match (t.class, t.instance, req.kind()) {
            (Some(class::IDENTITY), Some(1), ServiceKind::GetAttributesAll) => self.identity.all(),
            (Some(class::IDENTITY), Some(1), ServiceKind::GetAttributeSingle) => {
                let attr = t.attribute.ok_or(Fault::NO_ATTRIBUTE)?;
                self.identity.attribute(attr).ok_or(Fault::NO_ATTRIBUTE)?
            }
            (Some(class::CONTROLLER_NAME), Some(1), ServiceKind::GetAttributesAll) => {
                self.identity.controller_name_reply()
            }
            (
                Some(c @ (class::TCP_IP | class::ETHERNET_LINK)),
                Some(1),
                ServiceKind::GetAttributesAll,
            ) => self.network.all(c),
            (Some(class::TCP_IP), Some(1), ServiceKind::GetAttributeSingle) => {
                let attr = t.attribute.ok_or(Fault::NO_ATTRIBUTE)?;
                self.network
                    .tcpip_attribute(attr)
                    .ok_or(Fault::NO_ATTRIBUTE)?
            }
            (Some(class::ETHERNET_LINK), Some(1), ServiceKind::GetAttributeSingle) => {
                let attr = t.attribute.ok_or(Fault::NO_ATTRIBUTE)?;
                self.network
                    .link_attribute(attr)
                    .ok_or(Fault::NO_ATTRIBUTE)?
            }
            (Some(_), _, _) => return Err(Fault::NO_OBJECT),
            (None, _, _) => return Err(Fault::NOT_SUPPORTED),
        };
        let _ = Reply::success(req.service, &data).encode(out);
        Ok(())
    }

    fn attribute_list(
        &self,
        req: &Request<'_>,
        attrs: &[u16],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        match req.path.target().class {
            Some(class::TEMPLATE) => self.template_attributes(req, attrs, out),
            Some(class::WALL_CLOCK) => self.clock_attributes(req, attrs, out),
            Some(_) => Err(Fault::NO_OBJECT),
            None => Err(Fault::NOT_SUPPORTED),
        }
    }

    fn set_attribute_list(
        &mut self,
        req: &Request<'_>,
        values: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        match req.path.target().class {
            Some(class::WALL_CLOCK) => self.set_clock(req, values, out),
            _ => self.set_attributes(req),
        }
    }

    fn set_attributes(&self, req: &Request<'_>) -> Result<(), Fault> {
        match req.path.target().class {
            Some(
                class::IDENTITY | class::CONTROLLER_NAME | class::TCP_IP | class::ETHERNET_LINK,
            ) => Err(Fault::NOT_SETTABLE),
            Some(_) => Err(Fault::NO_OBJECT),
            None => Err(Fault::NOT_SUPPORTED),
        }
    }

    /// Unconnected Send: run the embedded request and answer with its bare reply. Any
    /// route path is accepted, empty included (rseip), or a whole connection path
    /// (libplctag): this controller is the only target.
    fn unconnected_send(
        &mut self,
        u: &UnconnectedSend<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        if Request::decode(u.message).is_ok_and(|r| r.kind() == ServiceKind::UnconnectedSend) {
            // One hop is all a controller routes to itself.
            return Err(Fault(
                GeneralStatus::CONNECTION_FAILURE,
                Some(cm::PORT_NOT_AVAILABLE),
            ));
        }
        self.execute_into(u.message, UNCONNECTED_REPLY_LIMIT, out);
        Ok(())
    }

    fn forward_open(
        &mut self,
        req: &Request<'_>,
        fo: &ForwardOpen<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let failure = |ext: &[u16], out: &mut Vec<u8>| {
            connection_failure(req.service, fo.connection_triad(), ext, out)
        };
        let triad = fo.connection_triad();
        if self.connections.find(triad).is_some() {
            failure(&[cm::CONNECTION_IN_USE], out);
            return Ok(());
        }
        let size = fo.ot_params.size().min(fo.to_params.size());
        if !(32..=MAX_CONNECTION_SIZE).contains(&size) {
            // libplctag retries with the size in the second word.
            failure(&[cm::INVALID_CONNECTION_SIZE, MAX_CONNECTION_SIZE], out);
            return Ok(());
        }
        match fo.path.target().class {
            None | Some(class::MESSAGE_ROUTER) => {}
            Some(_) => {
                failure(&[cm::INVALID_SEGMENT_IN_PATH], out);
                return Ok(());
            }
        }
        let Some(c) = self.connections.open(fo.to_connection_id, triad, size) else {
            failure(&[cm::OUT_OF_CONNECTIONS], out);
            return Ok(());
        };
        let reply = ForwardOpenReply {
            ot_connection_id: c.ot_id,
            to_connection_id: c.to_id,
            connection_serial: fo.connection_serial,
            originator_vendor: fo.originator_vendor,
            originator_serial: fo.originator_serial,
            ot_api: fo.ot_rpi,
            to_api: fo.to_rpi,
            reserved: 0,
            application: &[],
        }
        .to_vec()
        .unwrap_or_default();
        let _ = Reply::success(req.service, &reply).encode(out);
        Ok(())
    }

    fn forward_close(
        &mut self,
        req: &Request<'_>,
        fc: &ForwardClose<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let triad = (
            fc.connection_serial,
            fc.originator_vendor,
            fc.originator_serial,
        );
        if self.connections.close(triad).is_some() {
            let data = ForwardCloseReply {
                connection_serial: fc.connection_serial,
                originator_vendor: fc.originator_vendor,
                originator_serial: fc.originator_serial,
                reserved: 0,
                application: &[],
            }
            .to_vec()
            .unwrap_or_default();
            let _ = Reply::success(req.service, &data).encode(out);
        } else {
            connection_failure(req.service, triad, &[cm::CONNECTION_NOT_FOUND], out);
        }
        Ok(())
    }

    /// Resolve a symbolic tag path: `[Program:X] Name [i[,j[,k]]]`.
    fn resolve(&self, path: &EPath<'_>) -> Result<Target, Fault> {
        let mut segs = path.iter().peekable();
        let tag = match segs.next() {
            // Symbol-instance addressing (pycomm3 with firmware >= 21): 20 6B 24 ii.
            Some(seg) if seg.logical_value(LogicalKind::Class) == Some(class::SYMBOL) => {
                let inst = segs
                    .next()
                    .and_then(|s| s.logical_value(LogicalKind::Instance))
                    .ok_or(Fault::UNKNOWN_TAG)?;
                crate::symbols::tag_of_instance(inst)
                    .filter(|&t| self.tags.get(t).is_some())
                    .ok_or(Fault::UNKNOWN_TAG)?
            }
            Some(Segment::Symbolic(first)) => {
                let first = std::str::from_utf8(first).map_err(|_| Fault::UNKNOWN_TAG)?;
                let name = if crate::symbols::is_program(first) {
                    match segs.next() {
                        Some(Segment::Symbolic(n)) => format!(
                            "{first}.{}",
                            std::str::from_utf8(n).map_err(|_| Fault::UNKNOWN_TAG)?
                        ),
                        _ => return Err(Fault::UNKNOWN_TAG),
                    }
                } else {
                    first.to_owned()
                };
                self.tags.find(&name).ok_or(Fault::UNKNOWN_TAG)?
            }
            _ => return Err(Fault::UNKNOWN_TAG),
        };
        let mut indexes = Vec::with_capacity(3);
        for s in segs {
            match s.logical_value(LogicalKind::Element) {
                Some(i) if indexes.len() < 3 => indexes.push(i),
                // Members of structures and deeper paths are not stored yet.
                _ => return Err(Fault::UNKNOWN_TAG),
            }
        }
        let t = self.tags.get(tag).ok_or(Fault::UNKNOWN_TAG)?;
        if !indexes.is_empty() && indexes.len() != t.dims.len() {
            return Err(Fault(GeneralStatus::PATH_SEGMENT_ERROR, Some(0)));
        }
        let start = t.flat_index(&indexes).ok_or(Fault::BEYOND_END)?;
        Ok(Target { tag, start })
    }

    /// The bytes `elements` elements from the path's start occupy, checked against the
    /// tag's size.
    fn span(&self, path: &EPath<'_>, elements: u16) -> Result<Span, Fault> {
        let Target { tag, start } = self.resolve(path)?;
        let t = self.tags.get(tag).ok_or(Fault::UNKNOWN_TAG)?;
        let size = t.elem.size();
        let count = usize::from(elements.max(1));
        if start + count > t.elements() {
            return Err(Fault::BEYOND_END);
        }
        Ok(Span {
            tag,
            from: start * size,
            len: count * size,
            size,
            elem: t.elem,
        })
    }

    fn bytes(&self, s: &Span, offset: usize, len: usize) -> Result<&[u8], Fault> {
        let t = self.tags.get(s.tag).ok_or(Fault::UNKNOWN_TAG)?;
        let from = s.from + offset;
        t.data.get(from..from + len).ok_or(Fault::BEYOND_END)
    }

    fn bytes_mut(&mut self, s: &Span, offset: usize, len: usize) -> Result<&mut [u8], Fault> {
        let t = self.tags.get_mut(s.tag).ok_or(Fault::UNKNOWN_TAG)?;
        let from = s.from + offset;
        t.data.get_mut(from..from + len).ok_or(Fault::BEYOND_END)
    }

    fn read(
        &self,
        req: &Request<'_>,
        r: ReadTag,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let s = self.span(&req.path, r.elements)?;
        // pycomm3 sends a plain Read Tag whenever the data alone fits the connection size
        // (DINT[1000] on a 4000-byte connection), so the data, not the whole reply, is
        // measured against the limit here. Fragmented reads keep the strict budget.
        let (status, len) = if s.len <= limit {
            (GeneralStatus::SUCCESS, s.len)
        } else {
            // Too large for one reply: what fits, in whole elements, and 0x06.
            (GeneralStatus::PARTIAL_TRANSFER, limit / s.size * s.size)
        };
        let data = self.bytes(&s, 0, len)?;
        tag_reply(
            req.service,
            status,
            &TagData {
                type_tag: s.elem.type_tag(),
                data,
            },
            out,
        );
        Ok(())
    }

    fn read_fragmented(
        &self,
        req: &Request<'_>,
        r: ReadTagFragmented,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let s = self.span(&req.path, r.elements)?;
        let offset = r.offset as usize;
        if offset > s.len {
            return Err(Fault::BEYOND_END);
        }
        let tt = s.elem.type_tag();
        let room = limit.saturating_sub(REPLY_HEADER + tt.encoded_len());
        // Whole elements per fragment where one fits; otherwise as many bytes as fit.
        let room = if room >= s.size {
            room / s.size * s.size
        } else {
            room
        };
        let chunk = (s.len - offset).min(room);
        let data = self.bytes(&s, offset, chunk)?;
        let status = if offset + chunk < s.len {
            GeneralStatus::PARTIAL_TRANSFER
        } else {
            GeneralStatus::SUCCESS
        };
        tag_reply(req.service, status, &TagData { type_tag: tt, data }, out);
        Ok(())
    }

    fn write(
        &mut self,
        req: &Request<'_>,
        w: &WriteTag<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let s = self.span(&req.path, w.elements)?;
        if w.type_tag != s.elem.type_tag() {
            return Err(Fault::TYPE_MISMATCH);
        }
        // Exactly count x size bytes; anything after them (pycomm3's doubled value,
        // libplctag's pad) is ignored.
        let src = w.data.get(..s.len).ok_or(Fault::NOT_ENOUGH_DATA)?;
        if s.elem == ElementType::LogixString && !strings_valid(src) {
            return Err(Fault::BAD_DATA);
        }
        self.bytes_mut(&s, 0, s.len)?.copy_from_slice(src);
        ok_reply(req.service, out);
        Ok(())
    }

    fn write_fragmented(
        &mut self,
        req: &Request<'_>,
        w: &WriteTagFragmented<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let s = self.span(&req.path, w.elements)?;
        if w.type_tag != s.elem.type_tag() {
            return Err(Fault::TYPE_MISMATCH);
        }
        let offset = w.offset as usize;
        if offset >= s.len {
            return Err(Fault::OUT_OF_RANGE);
        }
        // The chunk runs to the end of the data item, bounded by the declared total;
        // a pad byte past the total is ignored.
        let chunk = w.data.len().min(s.len - offset);
        let src = w.data.get(..chunk).unwrap_or_default();
        self.bytes_mut(&s, offset, chunk)?.copy_from_slice(src);
        ok_reply(req.service, out);
        Ok(())
    }

    fn read_modify_write(
        &mut self,
        req: &Request<'_>,
        m: &ReadModifyWrite<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let Target { tag, start } = self.resolve(&req.path)?;
        let t = self.tags.get_mut(tag).ok_or(Fault::UNKNOWN_TAG)?;
        let size = t.elem.size();
        let integer =
            matches!(t.elem, ElementType::Atomic(d) if d.is_integer() && d != DataType::Bool);
        if !integer || m.or_mask.len() > size {
            return Err(Fault::TYPE_MISMATCH);
        }
        let dst = t
            .data
            .get_mut(start * size..start * size + m.or_mask.len())
            .ok_or(Fault::BEYOND_END)?;
        for ((d, o), a) in dst.iter_mut().zip(m.or_mask).zip(m.and_mask) {
            *d = (*d & a) | o;
        }
        ok_reply(req.service, out);
        Ok(())
    }

    fn multiple(
        &mut self,
        req: &Request<'_>,
        m: &Multiple<'_>,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let target = req.path.target();
        if target.class != Some(0x02) {
            return Err(Fault::NOT_SUPPORTED);
        }
        let mut replies: Vec<Vec<u8>> = Vec::with_capacity(m.messages.len());
        let mut budget = limit.saturating_sub(REPLY_HEADER + 2 + 2 * m.messages.len());
        let mut failed = false;
        for msg in &m.messages {
            let mut r = Vec::new();
            // No nesting: an embedded Multiple Service Packet is refused.
            if msg.first() == Some(&svc::MULTIPLE_SERVICE_PACKET) {
                fault_reply(svc::MULTIPLE_SERVICE_PACKET, Fault::NOT_SUPPORTED, &mut r);
            } else {
                self.execute_into(msg, budget, &mut r);
            }
            budget = budget.saturating_sub(r.len());
            failed |= r.get(2).is_some_and(|&s| s != 0);
            replies.push(r);
        }
        let body = Multiple {
            messages: replies.iter().map(Vec::as_slice).collect(),
        }
        .to_vec()
        .map_err(|_| Fault(GeneralStatus::REPLY_DATA_TOO_LARGE, None))?;
        let status = if failed {
            GeneralStatus::EMBEDDED_SERVICE_ERROR
        } else {
            GeneralStatus::SUCCESS
        };
        let _ = Reply::new(req.service, status, &body).encode(out);
        Ok(())
    }
}

/// A Logix STRING's LEN must be 0..=82 in every element.
fn strings_valid(data: &[u8]) -> bool {
    data.chunks(enip_proto::types::LOGIX_STRING_SIZE).all(|c| {
        c.get(..4)
            .and_then(|l| <[u8; 4]>::try_from(l).ok())
            .map(i32::from_le_bytes)
            .is_some_and(|n| (0..=82).contains(&n))
    })
}

fn tag_reply(service: u8, status: GeneralStatus, data: &TagData<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(&[service | svc::REPLY, 0, status.0, 0]);
    let _ = data.encode(out);
}

/// A Get/Set Attribute List reply: status 0x0A when any attribute failed.
pub(crate) fn attribute_list_reply(
    service: u8,
    entries: Vec<AttributeEntry<'_>>,
    out: &mut Vec<u8>,
) {
    let failed = entries.iter().any(|e| e.status != Some(0));
    let mut data = Vec::new();
    let _ = AttributeList { entries }.encode(&mut data);
    let status = if failed {
        GeneralStatus::ATTRIBUTE_LIST_ERROR
    } else {
        GeneralStatus::SUCCESS
    };
    let _ = Reply::new(service, status, &data).encode(out);
}

/// A Connection Manager failure (0x01 + extended words) echoing the connection triad.
fn connection_failure(service: u8, triad: (u16, u16, u32), ext: &[u16], out: &mut Vec<u8>) {
    let data = ConnectionFailure {
        connection_serial: triad.0,
        originator_vendor: triad.1,
        originator_serial: triad.2,
        remaining_path_size: 0,
        reserved: 0,
    }
    .to_vec()
    .unwrap_or_default();
    let mut r = Reply::new(service, GeneralStatus::CONNECTION_FAILURE, &data);
    r.extended = ext.to_vec();
    let _ = r.encode(out);
}

fn ok_reply(service: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[service | svc::REPLY, 0, 0, 0]);
}

fn fault_reply(service: u8, f: Fault, out: &mut Vec<u8>) {
    let ext: &[u16] = match &f.1 {
        Some(e) => std::slice::from_ref(e),
        None => &[],
    };
    let _ = Reply::error(service, f.0, ext).encode(out);
}
