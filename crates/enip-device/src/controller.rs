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
use crate::tag::{ElementType, SpecError, TagSpec, Tags, SSTRING_SIZE};
use crate::udt::{MemberKind, StructType, UdtDef, Udts};

/// The largest Message Router reply sent without a connection (cpppo and Logix use
/// about 500 bytes).
pub const UNCONNECTED_REPLY_LIMIT: usize = 504;
/// The sequence count that starts every connected (class 3) data item.
const SEQUENCE_COUNT: usize = 2;

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
pub(crate) struct Span {
    pub(crate) tag: usize,
    /// Byte offset of the first element in the tag's data.
    pub(crate) from: usize,
    /// Bytes of the requested elements.
    pub(crate) len: usize,
    size: usize,
    pub(crate) elem: ElementType,
    /// A BOOL member: its bit of the byte at `from`.
    pub(crate) bit: Option<u8>,
}

/// Where a tag path leads: an element of a tag, or of a member of one.
#[derive(Debug, Clone, Copy)]
struct Target {
    tag: usize,
    /// Byte offset of the element in the tag's data.
    from: usize,
    elem: ElementType,
    /// Elements from this one to the end of its array (1 outside arrays).
    room: usize,
    /// A BOOL member: its bit of the byte at `from`.
    bit: Option<u8>,
}

/// The array shape at one step of a path: up to 3 dimensions.
#[derive(Debug, Clone, Copy, Default)]
struct Shape {
    dims: [u32; 3],
    n: usize,
}

impl Shape {
    fn of(dims: &[u32]) -> Self {
        let mut s = Self::default();
        for (slot, d) in s.dims.iter_mut().zip(dims) {
            *slot = *d;
        }
        s.n = dims.len().min(3);
        s
    }

    fn dims(&self) -> &[u32] {
        self.dims.get(..self.n).unwrap_or_default()
    }

    fn elements(&self) -> usize {
        self.dims().iter().map(|&d| d as usize).product()
    }

    /// The row-major index of `indexes`, if they fit this shape.
    fn flat(&self, indexes: &[u32]) -> Option<usize> {
        let mut flat = 0usize;
        for (&i, &d) in indexes.iter().zip(self.dims()) {
            if i >= d {
                return None;
            }
            flat = flat * d as usize + i as usize;
        }
        Some(flat)
    }
}

/// The controller.
#[derive(Debug, Default)]
pub struct Controller {
    pub tags: Tags,
    /// Structure types: the builtin STRING and those [`Controller::define_udt`] added.
    pub udts: Udts,
    pub identity: Identity,
    pub connections: Connections,
    pub network: crate::network::Network,
    /// The time now, in µs since 1970 UTC, set by the I/O layer (this crate has no clock).
    pub now_us: u64,
    /// What a client's Set Attribute List on the wall clock moved it by.
    pub clock_offset_us: i64,
    /// Tags that also live at a CIP address (`NAME@cls/ins/att=TYPE`).
    pub attribute_tags: crate::attributes::AttributeMap,
    /// Which Unconnected Send route paths reach this controller.
    pub route: crate::route::RoutePolicy,
    /// Tag accesses since the I/O layer last looked, when it asked for them.
    pub(crate) journal: Option<Vec<crate::observe::Access>>,
    /// Custom behaviour by tag id.
    pub(crate) hooks: std::collections::HashMap<usize, Box<dyn crate::observe::TagHook>>,
    /// Statuses injected per tag (the web API's `tags/<tag>/error=N`).
    pub tag_errors: crate::inject::TagErrors,
    /// While a connected request runs: a plain Read Tag's data may then fill the whole
    /// connection size (see `read`).
    connected: bool,
}

impl Controller {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a tag from a cpppo-style spec, `SCADA=INT[1000]`; the type may be a structure
    /// defined before, `Motors=Motor[4]`.
    pub fn add_tag(&mut self, spec: &str) -> Result<usize, SpecError> {
        self.tags.insert(&TagSpec::parse_with(spec, &self.udts)?)
    }

    /// Define a structure type, for tags and later structures to use.
    pub fn define_udt(&mut self, def: &UdtDef) -> Result<StructType, SpecError> {
        self.udts.define(def)
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
        if let Some(f) = self.injected_fault(&req) {
            return fault_reply(req.service, f, out);
        }
        let body = match RequestBody::decode(&req) {
            Ok(b) => b,
            Err(_) => {
                // A Forward Open that does not decode still gets the failure fields a
                // client expects (rseip's Large Forward Open sends a 0x54 with 0x5B's
                // parameters, and then fails to parse a bare status).
                let fo = matches!(
                    req.kind(),
                    ServiceKind::ForwardOpen | ServiceKind::LargeForwardOpen
                );
                if let (true, Some(triad)) = (fo, raw_triad(req.data)) {
                    return connection_failure_with(
                        req.service,
                        GeneralStatus::NOT_ENOUGH_DATA,
                        triad,
                        &[],
                        out,
                    );
                }
                return fault_reply(req.service, Fault::NOT_ENOUGH_DATA, out);
            }
        };
        let access = match self.before_tag_service(&req, &body) {
            Ok(a) => a,
            Err(f) => return fault_reply(req.service, f, out),
        };
        let at = out.len();
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
            RequestBody::Empty => match self.tag_attribute(&req, None, out) {
                Some(r) => r,
                None => self.get_attributes(&req, out),
            },
            RequestBody::Values(v) if req.kind() == ServiceKind::SetAttributeSingle => {
                match self.tag_attribute(&req, Some(v), out) {
                    Some(r) => r,
                    None => self.set_attributes(&req),
                }
            }
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
        if let Some(a) = access {
            self.after_tag_service(a, out.get(at..).unwrap_or_default());
        }
    }

    /// Execute a request that arrived on connection `ot_id` (SendUnitData). `None` when
    /// no such connection is open: the request is dropped unanswered, as OpENer does.
    pub fn execute_connected(&mut self, ot_id: u32, request: &[u8]) -> Option<(u32, Vec<u8>)> {
        let c = *self.connections.get(ot_id)?;
        // The connection size counts the connected data item's 2-byte sequence count, so
        // the Message Router reply gets the rest: libplctag sizes its receive buffer that
        // way and drops a 4002-byte reply on a 4002-byte connection as too large.
        self.connected = true;
        let reply = self.execute(request, usize::from(c.size).saturating_sub(SEQUENCE_COUNT));
        self.connected = false;
        Some((c.to_id, reply))
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

    /// Unconnected Send: run the embedded request and answer with its bare reply. By
    /// default any route path is accepted, empty included (rseip), or a whole connection
    /// path (libplctag): this controller is the only target. [`RoutePolicy`] narrows it.
    ///
    /// [`RoutePolicy`]: crate::RoutePolicy
    fn unconnected_send(
        &mut self,
        u: &UnconnectedSend<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        if let Some(ext) = self.route.refuse(&u.route) {
            return Err(Fault(GeneralStatus::CONNECTION_FAILURE, Some(ext)));
        }
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

    /// Resolve a tag path: `[Program:X] Name [i[,j[,k]]]` or a symbol instance, then any
    /// members, each with its own indexes: `Motors[2].Hist[3]`, `Cell.Pos.X`.
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
            // cpppo's numeric addressing of a `NAME@cls/ins/att` tag: 20 cc 24 ii 30 aa.
            Some(seg) if seg.logical_value(LogicalKind::Class).is_some() => {
                let class = seg.logical_value(LogicalKind::Class).unwrap_or_default();
                let inst = segs
                    .next()
                    .and_then(|s| s.logical_value(LogicalKind::Instance));
                let attr = segs
                    .next()
                    .and_then(|s| s.logical_value(LogicalKind::Attribute));
                match (inst, attr) {
                    (Some(i), Some(a)) => *self
                        .attribute_tags
                        .get(&(class, i, a))
                        .ok_or(Fault::UNKNOWN_TAG)?,
                    _ => return Err(Fault::UNKNOWN_TAG),
                }
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
        let t = self.tags.get(tag).ok_or(Fault::UNKNOWN_TAG)?;
        let mut at = Target {
            tag,
            from: 0,
            elem: t.elem,
            room: t.elements(),
            bit: None,
        };
        let mut shape = Shape::of(&t.dims);
        loop {
            let mut indexes = [0u32; 3];
            let mut n = 0;
            while let Some(i) = segs
                .peek()
                .and_then(|s| s.logical_value(LogicalKind::Element))
            {
                *indexes.get_mut(n).ok_or(Fault::UNKNOWN_TAG)? = i;
                n += 1;
                segs.next();
            }
            if n > 0 {
                if n != shape.n {
                    return Err(Fault::UNKNOWN_TAG);
                }
                let flat = shape
                    .flat(indexes.get(..n).unwrap_or_default())
                    .ok_or(Fault::BEYOND_END)?;
                at.from += flat * at.elem.size();
                at.room = shape.elements() - flat;
            }
            let name = match segs.next() {
                None => return Ok(at),
                Some(Segment::Symbolic(name)) => name,
                Some(_) => return Err(Fault::UNKNOWN_TAG),
            };
            // A member belongs to one element: an array needs its index first.
            if at.bit.is_some() || (shape.n > 0 && n == 0) {
                return Err(Fault::UNKNOWN_TAG);
            }
            let member = self
                .udts
                .layout(at.elem)
                .and_then(|u| u.member(name))
                .ok_or(Fault::UNKNOWN_TAG)?;
            at.from += member.offset as usize;
            match member.kind {
                MemberKind::Data { elem, count } => {
                    at.elem = elem;
                    shape = Shape::of(count.map(u32::from).as_slice());
                    at.room = usize::from(count.unwrap_or(1));
                }
                MemberKind::Bit(b) => {
                    at.elem = ElementType::Atomic(DataType::Bool);
                    at.bit = Some(b);
                    shape = Shape::default();
                    at.room = 1;
                }
            }
        }
    }

    /// The bytes `elements` elements from the path's element occupy, checked against the
    /// array they are in.
    pub(crate) fn span(&self, path: &EPath<'_>, elements: u16) -> Result<Span, Fault> {
        let at = self.resolve(path)?;
        let size = at.elem.size();
        let count = usize::from(elements.max(1));
        if count > at.room {
            return Err(Fault::BEYOND_END);
        }
        Ok(Span {
            tag: at.tag,
            from: at.from,
            len: count * size,
            size,
            elem: at.elem,
            bit: at.bit,
        })
    }

    /// `len` bytes of the span from `offset`; a BOOL member reads as one byte, 0 or 1.
    fn bytes<'a>(
        &'a self,
        s: &Span,
        offset: usize,
        len: usize,
        bit: &'a mut [u8; 1],
    ) -> Result<&'a [u8], Fault> {
        let t = self.tags.get(s.tag).ok_or(Fault::UNKNOWN_TAG)?;
        let from = s.from + offset;
        let data = t.data.get(from..from + len).ok_or(Fault::BEYOND_END)?;
        match (s.bit, data.first()) {
            (Some(b), Some(host)) if len == 1 => {
                bit[0] = (host >> b) & 1;
                Ok(&bit[..])
            }
            _ => Ok(data),
        }
    }

    /// Store `src` at `offset` in the span; a BOOL member sets or clears its bit only.
    fn store(&mut self, s: &Span, offset: usize, src: &[u8]) -> Result<(), Fault> {
        let t = self.tags.get_mut(s.tag).ok_or(Fault::UNKNOWN_TAG)?;
        let from = s.from + offset;
        let dst = t
            .data
            .get_mut(from..from + src.len())
            .ok_or(Fault::BEYOND_END)?;
        match (s.bit, dst.first_mut(), src.first()) {
            (Some(b), Some(host), Some(&v)) => {
                if v != 0 {
                    *host |= 1 << b;
                } else {
                    *host &= !(1 << b);
                }
            }
            _ => dst.copy_from_slice(src),
        }
        Ok(())
    }

    fn read(
        &self,
        req: &Request<'_>,
        r: ReadTag,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let s = self.span(&req.path, r.elements)?;
        if s.elem == ElementType::ShortString {
            return self.read_short_strings(req, &s, limit, out);
        }
        // pycomm3 sends a plain Read Tag whenever the data alone fits the connection size
        // (DINT[1000] on a 4000-byte connection), so the data, not the whole reply, is
        // measured against that size here. Fragmented reads keep the strict budget.
        let room = if self.connected {
            limit + SEQUENCE_COUNT
        } else {
            limit
        };
        let (status, len) = if s.len <= room {
            (GeneralStatus::SUCCESS, s.len)
        } else {
            // Too large for one reply: what fits, in whole elements where one fits, and
            // 0x06; the client goes on with Read Tag Fragmented.
            (
                GeneralStatus::PARTIAL_TRANSFER,
                whole_elements(limit, s.size),
            )
        };
        let mut bit = [0];
        let data = self.bytes(&s, 0, len, &mut bit)?;
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
        // SSTRINGs are as long as they are on the wire: offsets into them mean nothing.
        if s.elem == ElementType::ShortString {
            return Err(Fault::NOT_SUPPORTED);
        }
        let offset = r.offset as usize;
        if offset > s.len {
            return Err(Fault::BEYOND_END);
        }
        let tt = s.elem.type_tag();
        let room = whole_elements(
            limit.saturating_sub(REPLY_HEADER + tt.encoded_len()),
            s.size,
        );
        let chunk = (s.len - offset).min(room);
        let mut bit = [0];
        let data = self.bytes(&s, offset, chunk, &mut bit)?;
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
        if s.elem == ElementType::ShortString {
            let stored = short_strings_stored(w.data, s.len / SSTRING_SIZE)?;
            self.store(&s, 0, &stored)?;
            ok_reply(req.service, out);
            return Ok(());
        }
        // Exactly count x size bytes; anything after them (pycomm3's doubled value,
        // libplctag's pad) is ignored.
        let src = w.data.get(..s.len).ok_or(Fault::NOT_ENOUGH_DATA)?;
        // Checked whole before anything is stored: a refused write changes nothing.
        if !self.udts.strings_valid(s.elem, src) {
            return Err(Fault::BAD_DATA);
        }
        self.store(&s, 0, src)?;
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
        if s.elem == ElementType::ShortString {
            return Err(Fault::NOT_SUPPORTED);
        }
        let offset = w.offset as usize;
        if offset >= s.len {
            return Err(Fault::OUT_OF_RANGE);
        }
        // The chunk runs to the end of the data item, bounded by the declared total;
        // a pad byte past the total is ignored.
        let chunk = w.data.len().min(s.len - offset);
        let src = w.data.get(..chunk).unwrap_or_default();
        if s.elem == ElementType::LogixString && !string_lens_valid(offset, src) {
            return Err(Fault::BAD_DATA);
        }
        self.store(&s, offset, src)?;
        ok_reply(req.service, out);
        Ok(())
    }

    fn read_modify_write(
        &mut self,
        req: &Request<'_>,
        m: &ReadModifyWrite<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let at = self.resolve(&req.path)?;
        let size = at.elem.size();
        let integer = at.bit.is_none()
            && matches!(at.elem, ElementType::Atomic(d) if d.is_integer() && d != DataType::Bool);
        if !integer || m.or_mask.len() > size {
            return Err(Fault::TYPE_MISMATCH);
        }
        let t = self.tags.get_mut(at.tag).ok_or(Fault::UNKNOWN_TAG)?;
        let dst = t
            .data
            .get_mut(at.from..at.from + m.or_mask.len())
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

/// The bytes of whole `size`-byte elements that fit in `room`, or all of `room` when not
/// even one element fits (a large structure goes out in byte-sized fragments).
fn whole_elements(room: usize, size: usize) -> usize {
    if size > 0 && room >= size {
        room / size * size
    } else {
        room
    }
}

impl Controller {
    /// SSTRINGs go on the wire as long as they are: length byte and characters each.
    fn read_short_strings(
        &self,
        req: &Request<'_>,
        s: &Span,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let t = self.tags.get(s.tag).ok_or(Fault::UNKNOWN_TAG)?;
        let stored = t
            .data
            .get(s.from..s.from + s.len)
            .ok_or(Fault::BEYOND_END)?;
        let mut data = Vec::with_capacity(s.len / SSTRING_SIZE * 16);
        let mut status = GeneralStatus::SUCCESS;
        for e in stored.chunks(SSTRING_SIZE) {
            let n = e.first().map_or(0, |&n| usize::from(n));
            let one = e.get(..1 + n).unwrap_or_default();
            if data.len() + one.len() > limit {
                status = GeneralStatus::PARTIAL_TRANSFER;
                break;
            }
            data.extend_from_slice(one);
        }
        tag_reply(
            req.service,
            status,
            &TagData {
                type_tag: s.elem.type_tag(),
                data: &data,
            },
            out,
        );
        Ok(())
    }
}

/// Every STRING LEN wholly inside a fragment (at `offset` into the STRING elements) is
/// 0..=82; a LEN split across fragments is not checked.
fn string_lens_valid(offset: usize, chunk: &[u8]) -> bool {
    let size = enip_proto::types::LOGIX_STRING_SIZE;
    let first = offset.div_ceil(size) * size;
    (first..offset + chunk.len())
        .step_by(size)
        .filter_map(|at| chunk.get(at - offset..at - offset + 4))
        .all(|len| {
            <[u8; 4]>::try_from(len)
                .map(i32::from_le_bytes)
                .is_ok_and(|n| (0..=82).contains(&n))
        })
}

/// `count` SSTRINGs from the wire (length byte + characters each) as stored.
fn short_strings_stored(mut wire: &[u8], count: usize) -> Result<Vec<u8>, Fault> {
    let mut stored = Vec::with_capacity(count * SSTRING_SIZE);
    for _ in 0..count {
        let (&n, rest) = wire.split_first().ok_or(Fault::NOT_ENOUGH_DATA)?;
        let chars = rest.get(..usize::from(n)).ok_or(Fault::NOT_ENOUGH_DATA)?;
        stored.push(n);
        stored.extend_from_slice(chars);
        stored.resize(stored.len() + SSTRING_SIZE - 1 - chars.len(), 0);
        wire = rest.get(usize::from(n)..).unwrap_or_default();
    }
    Ok(stored)
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
    connection_failure_with(service, GeneralStatus::CONNECTION_FAILURE, triad, ext, out);
}

/// The connection triad at its fixed place in a Forward Open body (after priority,
/// timeout and the two connection ids), if the body reaches it.
fn raw_triad(body: &[u8]) -> Option<(u16, u16, u32)> {
    let b = body.get(10..18)?;
    Some((
        u16::from_le_bytes([*b.first()?, *b.get(1)?]),
        u16::from_le_bytes([*b.get(2)?, *b.get(3)?]),
        u32::from_le_bytes([*b.get(4)?, *b.get(5)?, *b.get(6)?, *b.get(7)?]),
    ))
}

fn connection_failure_with(
    service: u8,
    status: GeneralStatus,
    triad: (u16, u16, u32),
    ext: &[u16],
    out: &mut Vec<u8>,
) {
    let data = ConnectionFailure {
        connection_serial: triad.0,
        originator_vendor: triad.1,
        originator_serial: triad.2,
        remaining_path_size: 0,
        reserved: 0,
    }
    .to_vec()
    .unwrap_or_default();
    let mut r = Reply::new(service, status, &data);
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
