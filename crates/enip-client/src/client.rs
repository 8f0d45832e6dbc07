//! The client: a registered session, optionally a CIP connection, and the services on
//! top — tag reads and writes that fragment themselves, Read-Modify-Write, the attribute
//! services, identity and the List* commands.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use enip_proto::mr::{class, service as svc, ServiceKind};
use enip_proto::path::{parse_text, LogicalKind, Segment};
use enip_proto::services::{
    Body as _, ForwardClose, ForwardOpen, ForwardOpenReply, NetParams, ReadModifyWrite, ReadTag,
    ReadTagFragmented, TagData, UnconnectedSend, WriteTag, WriteTagFragmented,
};
use enip_proto::types::DataType;
use enip_proto::{Command, Cpf, EPath, EncapStatus, Encapsulation, GeneralStatus, Header, Reply};

use crate::conn::{connected_context, Conn, Key};
use crate::discover::{decode_list, list_request, Identity, ListReply};
use crate::error::{Error, Result};
use crate::value::{Templates, WireType};

/// How requests reach the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// Requests go bare in SendRRData: a device that does not route (cpppo's `-S`).
    Direct,
    /// Each request is wrapped in an Unconnected Send to `send_path` (the Connection
    /// Manager, `@6/1`) with `route` (port segments; `1/0` is the backplane, slot 0).
    Routed { send_path: Vec<u8>, route: Vec<u8> },
}

impl Routing {
    /// Through the backplane to `slot`: route `1/<slot>` via the Connection Manager.
    pub fn backplane(slot: u8) -> Self {
        Self::Routed {
            send_path: CONNECTION_MANAGER.to_vec(),
            route: vec![0x01, slot],
        }
    }
}

impl Default for Routing {
    fn default() -> Self {
        Self::backplane(0)
    }
}

const CONNECTION_MANAGER: [u8; 4] = [0x20, 0x06, 0x24, 0x01];
pub(crate) const MESSAGE_ROUTER_PATH: [u8; 4] = [0x20, 0x02, 0x24, 0x01];

/// Largest request or reply a controller handles without a connection.
pub const UNCONNECTED_LIMIT: usize = 504;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connect, and every request, must complete within this.
    pub timeout: Duration,
    pub routing: Routing,
    /// Open a CIP connection (Large Forward Open, falling back to Forward Open) and send
    /// everything over it.
    pub connected: bool,
    /// Connection size asked of Large Forward Open; Forward Open asks 504.
    pub connection_size: u16,
    /// Unconnected Send and Forward Open timing: tick 2^n ms, and ticks.
    pub priority_tick: u8,
    pub timeout_ticks: u8,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            routing: Routing::default(),
            connected: false,
            connection_size: 4002,
            priority_tick: 5,
            timeout_ticks: 157,
        }
    }
}

/// A CIP (class 3) connection opened by Forward Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipConnection {
    /// The id this client sends with (chosen by the target).
    pub ot_id: u32,
    /// The id the target sends with (chosen by this client).
    pub to_id: u32,
    pub serial: u16,
    pub vendor: u16,
    pub originator_serial: u32,
    /// The connection size granted, in bytes.
    pub size: u16,
    /// Whether Large Forward Open opened it.
    pub large: bool,
}

/// A Message Router reply, owned: any status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipReply {
    pub service: u8,
    pub status: GeneralStatus,
    pub extended: Vec<u16>,
    pub data: Vec<u8>,
}

impl CipReply {
    /// The data of a successful reply, or the status as an error.
    pub fn into_data(self, what: impl FnOnce() -> String) -> Result<Vec<u8>> {
        if self.status.is_success() {
            Ok(self.data)
        } else {
            Err(self.error(what()))
        }
    }

    pub fn error(&self, what: String) -> Error {
        Error::Cip {
            service: what,
            status: self.status,
            extended: self.extended.clone(),
        }
    }
}

/// The bytes of a tag read, and their type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub ty: WireType,
    pub data: Vec<u8>,
}

/// A request path in its encoded (padded EPATH) form, with its text for messages.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TagPath {
    bytes: Vec<u8>,
}

impl TagPath {
    /// Parse `Tag.Member[1,2]`, `Program:Main.X`, `@1/1/7`.
    pub fn parse(text: &str) -> Result<Self> {
        let p = parse_text(text).map_err(|e| Error::Invalid(e.pointer(text)))?;
        Ok(Self {
            bytes: p.to_bytes()?,
        })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        EPath::new(&bytes, 0)?;
        if bytes.len() % 2 == 1 || bytes.len() > 510 {
            return Err(Error::Invalid(format!(
                "a path of {} bytes is not a padded EPATH",
                bytes.len()
            )));
        }
        Ok(Self { bytes })
    }

    /// `@class/instance[/attribute]`.
    pub fn object(class: u32, instance: u32, attribute: Option<u32>) -> Self {
        let mut bytes = Vec::new();
        let _ = enip_proto::Path::object(class, instance, attribute).encode(&mut bytes);
        Self { bytes }
    }

    /// This path with one more index (`Tag` → `Tag[i]`).
    pub fn element(&self, index: u32) -> Self {
        let mut bytes = self.bytes.clone();
        let _ = Segment::logical(LogicalKind::Element, index).encode(&mut bytes);
        Self { bytes }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Display for TagPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match EPath::new(&self.bytes, 0) {
            Ok(p) => write!(f, "{p}"),
            Err(_) => write!(f, "<bad path>"),
        }
    }
}

impl fmt::Debug for TagPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TagPath({self})")
    }
}

/// A connected, registered client. Cheap to clone: clones share the session, and any
/// number of requests may be in flight on it at once.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: Conn,
    session: u32,
    opts: Options,
    cip: Option<CipConnection>,
    templates: Mutex<Templates>,
    /// Whether the tag list was uploaded for templates, once: `None` until tried.
    learned: tokio::sync::Mutex<Option<bool>>,
    /// Types seen in read replies, by request path: they size Multiple Service Packet
    /// replies better than a guess.
    types: Mutex<HashMap<Vec<u8>, WireType, crate::conn::FastHash>>,
    requests: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Connection serial numbers: unique per client process, and different between runs so
/// a controller never mistakes a new connection for a stale duplicate.
fn next_serial() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    let _ = NEXT.compare_exchange(0, (seed as u16) | 1, Ordering::Relaxed, Ordering::Relaxed);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What a request asks, for messages: `Read Tag SCADA[3]`.
pub(crate) fn describe(service: u8, path: &[u8]) -> String {
    let p = EPath::new(path, 0).unwrap_or_default();
    let kind = ServiceKind::resolve(service, p.target().class);
    let name = match kind {
        ServiceKind::Other(s) => format!("service 0x{s:02X}"),
        k => k.name().to_string(),
    };
    if p.is_empty() {
        name
    } else {
        format!("{name} {p}")
    }
}

/// `service, path size, path`, with room for `body` more bytes.
fn mr_head(service: u8, path: &[u8], body: usize) -> Result<Vec<u8>> {
    let words = u8::try_from(path.len() / 2)
        .map_err(|_| Error::Invalid(format!("a path of {} bytes is too long", path.len())))?;
    let mut out = Vec::with_capacity(2 + path.len() + body);
    out.push(service);
    out.push(words);
    out.extend_from_slice(path);
    Ok(out)
}

/// `service, path size, path, body`, the body encoded in place: one allocation.
pub(crate) fn mr_request_with<'a>(
    service: u8,
    path: &[u8],
    body: &impl enip_proto::services::Body<'a>,
) -> Result<Vec<u8>> {
    let mut out = mr_head(service, path, 64)?;
    body.encode(&mut out)?;
    Ok(out)
}

/// `service, path size, path, body`.
pub(crate) fn mr_request(service: u8, path: &[u8], body: &[u8]) -> Result<Vec<u8>> {
    let mut out = mr_head(service, path, body.len())?;
    out.extend_from_slice(body);
    Ok(out)
}

impl Client {
    /// Connect, register a session and, with `connected`, open a CIP connection.
    pub async fn connect(addr: SocketAddr, opts: Options) -> Result<Self> {
        let (conn, session) = register(addr, opts.timeout).await?;
        let (conn, session, cip) = if opts.connected {
            open_connection(addr, conn, session, &opts).await?
        } else {
            (conn, session, None)
        };
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                session,
                opts,
                cip,
                templates: Mutex::new(Templates::default()),
                learned: tokio::sync::Mutex::new(None),
                types: Mutex::new(HashMap::default()),
                requests: AtomicU64::new(0),
            }),
        })
    }

    pub fn session(&self) -> u32 {
        self.inner.session
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    pub fn connection(&self) -> Option<CipConnection> {
        self.inner.cip
    }

    pub fn peer(&self) -> SocketAddr {
        self.inner.conn.peer
    }

    /// This end of the TCP connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.conn.local
    }

    /// CIP requests sent so far (fragments and packets each count once).
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Why the connection is unusable, if it is.
    pub fn broken(&self) -> Option<Error> {
        self.inner.conn.broken()
    }

    /// The largest Message Router request or reply this session carries: the connection
    /// size (less the sequence count), or what controllers accept unconnected.
    pub fn message_limit(&self) -> usize {
        match self.inner.cip {
            Some(c) => usize::from(c.size).saturating_sub(2),
            None => UNCONNECTED_LIMIT,
        }
    }

    /// Send a Message Router request (`service`, `path`, `body`) and return the reply,
    /// whatever its status.
    pub async fn request(&self, service: u8, path: &[u8], body: &[u8]) -> Result<CipReply> {
        let mr = mr_request(service, path, body)?;
        self.send_message(mr, service, || describe(service, path))
            .await
    }

    /// Send a request and return the data of a successful reply.
    pub async fn call(&self, service: u8, path: &[u8], body: &[u8]) -> Result<Vec<u8>> {
        self.request(service, path, body)
            .await?
            .into_data(|| describe(service, path))
    }

    /// Send an encoded Message Router request the way this session sends everything.
    pub(crate) async fn send_message(
        &self,
        mr: Vec<u8>,
        service: u8,
        what: impl FnOnce() -> String,
    ) -> Result<CipReply> {
        let i = &self.inner;
        i.requests.fetch_add(1, Ordering::Relaxed);
        let (key, frame) = match i.cip {
            Some(_) => {
                let seq = i.conn.sequence();
                (
                    Key::Sequence(seq),
                    self.encode_frame(&mr, connected_context(seq), seq)?,
                )
            }
            None => {
                let ctx = i.conn.context();
                (Key::Context(ctx), self.encode_frame(&mr, ctx, 0)?)
            }
        };
        let bytes = i.conn.transact(key, frame, i.opts.timeout, what).await?;
        self.parse(&bytes, service)
    }

    /// The encapsulation frame that carries `mr` on this session: SendUnitData with
    /// sequence count `seq` on a CIP connection, else SendRRData (wrapped in Unconnected
    /// Send when routed), with sender context `ctx`.
    fn encode_frame(&self, mr: &[u8], ctx: [u8; 8], seq: u16) -> Result<Vec<u8>> {
        let i = &self.inner;
        match (&i.cip, &i.opts.routing) {
            (Some(c), _) => send_data_frame(
                Command::SendUnitData,
                i.session,
                ctx,
                0,
                Cpf::connected(c.ot_id, seq, mr),
            ),
            (None, Routing::Direct) => send_data_frame(
                Command::SendRRData,
                i.session,
                ctx,
                self.rr_timeout(),
                Cpf::unconnected(mr),
            ),
            (None, Routing::Routed { send_path, route }) => {
                let wrapped = wrap_unconnected(&i.opts, send_path, route, mr)?;
                send_data_frame(
                    Command::SendRRData,
                    i.session,
                    ctx,
                    self.rr_timeout(),
                    Cpf::unconnected(&wrapped),
                )
            }
        }
    }

    /// SendRRData's timeout field: the request timeout in whole seconds, at least 1.
    fn rr_timeout(&self) -> u16 {
        u16::try_from(self.inner.opts.timeout.as_secs().max(1)).unwrap_or(u16::MAX)
    }

    /// A reply frame to `service`, decoded the way this session sent the request.
    pub(crate) fn parse(&self, frame: &[u8], service: u8) -> Result<CipReply> {
        let i = &self.inner;
        let routed = i.cip.is_none() && matches!(i.opts.routing, Routing::Routed { .. });
        parse_reply(frame, service, routed)
    }

    /// The frame that carries `mr`, built once to be stamped for each sending (see
    /// [`FrameTemplate::stamp`]).
    pub(crate) fn frame_template(&self, mr: &[u8]) -> Result<FrameTemplate> {
        let frame = self.encode_frame(mr, [0; 8], 0)?;
        // The sequence count leads the connected data item, the frame's last: it is
        // followed by the message and nothing else.
        let sequence_at = self
            .inner
            .cip
            .map(|_| frame.len().saturating_sub(mr.len() + 2));
        Ok(FrameTemplate { frame, sequence_at })
    }

    /// Send frames stamped from templates (`frames`, in order, one write) whose replies
    /// go to `sink`, tagged as `keys` says; they time out after the session's timeout.
    pub(crate) fn submit(
        &self,
        keys: &[(Key, usize)],
        frames: Vec<u8>,
        sink: &crate::conn::Sink,
    ) -> Result<()> {
        self.inner
            .conn
            .submit(keys, frames, self.inner.opts.timeout, sink)
    }

    /// Whether a structure's decoding needs nothing more from the controller: its
    /// template is known, or the tag list was already tried.
    pub(crate) fn structure_settled(&self, handle: u16) -> bool {
        handle == enip_proto::types::LOGIX_STRING_HANDLE
            || lock(&self.inner.templates).by_handle(handle).is_some()
            || self
                .inner
                .learned
                .try_lock()
                .is_ok_and(|tried| tried.is_some())
    }

    // ----------------------------------------------------------------------------------
    // Tag services

    /// Read Tag `elements` elements; a reply too large for one message comes back with
    /// partial-transfer status (0x06) and the rest is fetched with Read Tag Fragmented.
    pub async fn read_tag(&self, path: &TagPath, elements: u16) -> Result<Reading> {
        self.read_tag_at(&path.bytes, elements).await
    }

    /// [`Client::read_tag`] of an encoded path already known to be well-formed.
    pub(crate) async fn read_tag_at(&self, path: &[u8], elements: u16) -> Result<Reading> {
        let mr = mr_request_with(svc::READ_TAG, path, &ReadTag { elements })?;
        let reply = self
            .send_message(mr, svc::READ_TAG, || describe(svc::READ_TAG, path))
            .await?;
        self.finish_read(path, elements, 0, reply, svc::READ_TAG)
            .await
    }

    /// Read Tag Fragmented from byte `offset` to the end of the `elements` elements,
    /// as many requests as it takes.
    pub async fn read_tag_fragmented(
        &self,
        path: &TagPath,
        elements: u16,
        offset: u32,
    ) -> Result<Reading> {
        self.read_tag_fragmented_at(&path.bytes, elements, offset)
            .await
    }

    /// [`Client::read_tag_fragmented`] of an encoded path known to be well-formed.
    pub(crate) async fn read_tag_fragmented_at(
        &self,
        path: &[u8],
        elements: u16,
        offset: u32,
    ) -> Result<Reading> {
        let service = svc::READ_TAG_FRAGMENTED;
        let mr = mr_request_with(service, path, &ReadTagFragmented { elements, offset })?;
        let reply = self
            .send_message(mr, service, || describe(service, path))
            .await?;
        self.finish_read(path, elements, offset, reply, service)
            .await
    }

    /// Take a first read reply (from a single request or a Multiple Service Packet) and
    /// fetch whatever remains.
    pub(crate) async fn finish_read(
        &self,
        path: &[u8],
        elements: u16,
        offset: u32,
        mut reply: CipReply,
        service: u8,
    ) -> Result<Reading> {
        /// A hostile server could promise more data forever.
        const MAX_READ: usize = 16 << 20;
        let mut ty = None;
        let mut data = Vec::new();
        let mut service = service;
        loop {
            let (done, got) = take_fragment(path, service, &reply, &mut ty, &mut data)?;
            if done {
                break;
            }
            if got == 0 || data.len() > MAX_READ {
                return Err(Error::Protocol(format!(
                    "{}: partial transfer that makes no progress ({} bytes so far)",
                    describe(service, path),
                    data.len()
                )));
            }
            let next = u32::try_from(data.len())
                .ok()
                .and_then(|n| n.checked_add(offset))
                .ok_or_else(|| Error::Protocol("read offset beyond 4 GiB".into()))?;
            service = svc::READ_TAG_FRAGMENTED;
            let mr = mr_request_with(
                service,
                path,
                &ReadTagFragmented {
                    elements,
                    offset: next,
                },
            )?;
            // Boxed: a partial transfer is rare, and its future would otherwise make
            // every read's future larger.
            reply = Box::pin(self.send_message(mr, service, || describe(service, path))).await?;
        }
        Ok(self.reading(path, ty, data))
    }

    /// A single read reply that is the whole answer, as a [`Reading`]; `None` if it is
    /// not (a partial transfer, or an error status): [`Client::finish_read`] takes those.
    /// The caller remembers the type (see [`Client::remember_type`]).
    pub(crate) fn whole_reading(
        &self,
        path: &[u8],
        reply: &CipReply,
        service: u8,
    ) -> Option<Result<Reading>> {
        reply
            .status
            .is_success()
            .then(|| whole_data(path, service, &reply.data))
    }

    fn reading(&self, path: &[u8], ty: Option<WireType>, data: Vec<u8>) -> Reading {
        let ty = ty.unwrap_or(WireType::Other(0));
        self.remember_type(path, ty);
        Reading { ty, data }
    }

    /// Read and decode: atomics, STRINGs, and structures whose templates were uploaded.
    pub async fn read(&self, path: &TagPath, elements: u16) -> Result<Vec<crate::TagValue>> {
        let r = self.read_tag(path, elements).await?;
        Ok(self.decode(&r))
    }

    /// Decode a reading with the templates known to this client.
    pub fn decode(&self, r: &Reading) -> Vec<crate::TagValue> {
        crate::value::decode(r.ty, &r.data, &lock(&self.inner.templates))
    }

    pub(crate) fn remember_type(&self, path: &[u8], ty: WireType) {
        let mut types = lock(&self.inner.types);
        // The same path read again (a repeated run) costs a lookup, not a key copy.
        match types.get_mut(path) {
            Some(t) => *t = ty,
            None => {
                types.insert(path.to_vec(), ty);
            }
        }
    }

    /// The type last seen in a read reply for this path.
    pub fn known_type(&self, path: &[u8]) -> Option<WireType> {
        lock(&self.inner.types).get(path).copied()
    }

    /// Make sure a structure with this handle can be decoded: if its template is not
    /// known, upload the tag list and templates (once per client; a controller without
    /// a Symbol object leaves structures raw).
    pub async fn learn_structure(&self, handle: u16) {
        if handle == enip_proto::types::LOGIX_STRING_HANDLE
            || lock(&self.inner.templates).by_handle(handle).is_some()
        {
            return;
        }
        let mut tried = self.inner.learned.lock().await;
        if tried.is_none() {
            let r = self.tag_list().await;
            if let Err(e) = &r {
                tracing::debug!("no templates for structure 0x{handle:04X}: {e}");
            }
            *tried = Some(r.is_ok());
        }
    }

    pub(crate) fn add_templates(&self, t: &Templates) {
        let mut mine = lock(&self.inner.templates);
        for tpl in t.iter() {
            mine.insert(tpl.clone());
        }
    }

    /// Write Tag; data too large for one message goes as Write Tag Fragmented pieces.
    pub async fn write_tag(
        &self,
        path: &TagPath,
        ty: WireType,
        elements: u16,
        data: &[u8],
    ) -> Result<()> {
        let tag = ty.to_tag();
        let size = 2 + path.bytes.len() + tag.encoded_len() + 2 + data.len();
        if size > self.message_limit() {
            return self.write_tag_fragmented(path, ty, elements, 0, data).await;
        }
        let body = WriteTag {
            type_tag: tag,
            elements,
            data,
        }
        .to_vec()?;
        self.call(svc::WRITE_TAG, &path.bytes, &body).await?;
        Ok(())
    }

    /// Write Tag Fragmented: `data` from byte `offset` of the `elements` elements, in
    /// pieces that fit a message, each a whole number of elements where the size is known.
    pub async fn write_tag_fragmented(
        &self,
        path: &TagPath,
        ty: WireType,
        elements: u16,
        offset: u32,
        data: &[u8],
    ) -> Result<()> {
        let tag = ty.to_tag();
        let overhead = 2 + path.bytes.len() + tag.encoded_len() + 2 + 4;
        let room = self.message_limit().saturating_sub(overhead);
        let elem = ty
            .element_size()
            .or_else(|| {
                (offset == 0 && elements > 0 && data.len() % usize::from(elements) == 0)
                    .then(|| data.len() / usize::from(elements))
            })
            .unwrap_or(1)
            .max(1);
        let chunk = if room >= elem {
            room - room % elem
        } else {
            room
        };
        if chunk == 0 {
            return Err(Error::Invalid(format!(
                "the path leaves no room for data in a {}-byte message",
                self.message_limit()
            )));
        }
        let mut at = 0usize;
        loop {
            let piece = data
                .get(at..(at + chunk).min(data.len()))
                .unwrap_or_default();
            let off = u32::try_from(at)
                .ok()
                .and_then(|a| a.checked_add(offset))
                .ok_or_else(|| Error::Invalid("write offset beyond 4 GiB".into()))?;
            let body = WriteTagFragmented {
                type_tag: tag,
                elements,
                offset: off,
                data: piece,
            }
            .to_vec()?;
            self.call(svc::WRITE_TAG_FRAGMENTED, &path.bytes, &body)
                .await?;
            at += piece.len();
            if at >= data.len() {
                return Ok(());
            }
        }
    }

    /// Read-Modify-Write: `new = (old & and_mask) | or_mask`, masks 1 to 8 bytes.
    pub async fn read_modify_write(
        &self,
        path: &TagPath,
        or_mask: &[u8],
        and_mask: &[u8],
    ) -> Result<()> {
        let body = ReadModifyWrite {
            or_mask,
            and_mask,
            extra: &[],
        }
        .to_vec()?;
        self.call(svc::READ_MODIFY_WRITE, &path.bytes, &body)
            .await?;
        Ok(())
    }

    /// Set or clear one bit of an integer tag element with Read-Modify-Write, leaving the
    /// other bits as they are even if something else writes them at the same time.
    pub async fn write_bit(
        &self,
        path: &TagPath,
        ty: DataType,
        bit: u32,
        value: bool,
    ) -> Result<()> {
        let size = match ty.size() {
            Some(s) if ty.is_integer() && ty != DataType::Bool => s,
            _ => return Err(Error::Invalid(format!("{ty} has no bits to set"))),
        };
        if bit as usize >= size * 8 {
            return Err(Error::Invalid(format!("{ty} has no bit {bit}")));
        }
        let mut or_mask = vec![0u8; size];
        let mut and_mask = vec![0xFFu8; size];
        let (byte, mask) = ((bit / 8) as usize, 1u8 << (bit % 8));
        if let (Some(o), Some(a)) = (or_mask.get_mut(byte), and_mask.get_mut(byte)) {
            if value {
                *o = mask;
            } else {
                *a = !mask;
            }
        }
        self.read_modify_write(path, &or_mask, &and_mask).await
    }

    /// One bit of an integer tag element.
    pub async fn read_bit(&self, path: &TagPath, bit: u32) -> Result<bool> {
        let r = self.read_tag(path, 1).await?;
        let byte = r
            .data
            .get((bit / 8) as usize)
            .copied()
            .ok_or_else(|| Error::Invalid(format!("{} has no bit {bit}", r.ty.name())))?;
        Ok(byte & (1 << (bit % 8)) != 0)
    }

    /// Bits `first..first+count` of a BOOL array, which Logix serves as DWORDs.
    pub async fn read_bools(&self, tag: &TagPath, first: u32, count: u32) -> Result<Vec<bool>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let last = first
            .checked_add(count - 1)
            .ok_or_else(|| Error::Invalid("bit index beyond 2^32".into()))?;
        let words = u16::try_from(last / 32 - first / 32 + 1)
            .map_err(|_| Error::Invalid(format!("{count} bits is more than a read")))?;
        let r = self.read_tag(&tag.element(first / 32), words).await?;
        if r.ty != WireType::Atomic(DataType::Dword) {
            return Err(Error::Invalid(format!(
                "{tag} is {}, not a BOOL array (DWORD)",
                r.ty.name()
            )));
        }
        let base = (first / 32) * 32;
        (first..=last)
            .map(|b| {
                let i = (b - base) as usize;
                r.data
                    .get(i / 8)
                    .map(|byte| byte & (1 << (i % 8)) != 0)
                    .ok_or_else(|| Error::Protocol(format!("{tag}: short BOOL array reply")))
            })
            .collect()
    }

    /// Set one BOOL of a BOOL array: Read-Modify-Write on the DWORD that holds it.
    pub async fn write_bool(&self, tag: &TagPath, index: u32, value: bool) -> Result<()> {
        self.write_bit(&tag.element(index / 32), DataType::Dword, index % 32, value)
            .await
    }

    // ----------------------------------------------------------------------------------
    // Attribute services

    pub async fn get_attribute_single(
        &self,
        class: u32,
        instance: u32,
        attribute: u32,
    ) -> Result<Vec<u8>> {
        let p = TagPath::object(class, instance, Some(attribute));
        self.call(svc::GET_ATTRIBUTE_SINGLE, &p.bytes, &[]).await
    }

    pub async fn set_attribute_single(
        &self,
        class: u32,
        instance: u32,
        attribute: u32,
        value: &[u8],
    ) -> Result<()> {
        let p = TagPath::object(class, instance, Some(attribute));
        self.call(svc::SET_ATTRIBUTE_SINGLE, &p.bytes, value)
            .await?;
        Ok(())
    }

    pub async fn get_attributes_all(&self, class: u32, instance: u32) -> Result<Vec<u8>> {
        let p = TagPath::object(class, instance, None);
        self.call(svc::GET_ATTRIBUTES_ALL, &p.bytes, &[]).await
    }

    pub async fn set_attributes_all(&self, class: u32, instance: u32, data: &[u8]) -> Result<()> {
        let p = TagPath::object(class, instance, None);
        self.call(svc::SET_ATTRIBUTES_ALL, &p.bytes, data).await?;
        Ok(())
    }

    /// Get Attribute List: `(id, status, value)` per attribute, in request order. The
    /// reply does not say how long each value is: `size_of` does.
    pub async fn get_attribute_list(
        &self,
        path: &TagPath,
        ids: &[u16],
        size_of: fn(u16) -> Option<usize>,
    ) -> Result<Vec<(u16, u16, Vec<u8>)>> {
        use enip_proto::services::{AttributeIds, AttributeList, AttributeListForm};
        let body = AttributeIds(ids.to_vec()).to_vec()?;
        let data = self
            .call(svc::GET_ATTRIBUTE_LIST, &path.bytes, &body)
            .await?;
        let mut r = enip_proto::wire::Reader::new(&data);
        let list = AttributeList::decode_with(&mut r, AttributeListForm::GetReply, size_of)?;
        Ok(list
            .entries
            .iter()
            .map(|e| (e.id, e.status.unwrap_or(0), e.value.to_vec()))
            .collect())
    }

    /// The Identity object (class 1, instance 1), Get Attributes All.
    pub async fn identity(&self) -> Result<Identity> {
        let data = self.get_attributes_all(class::IDENTITY, 1).await?;
        Identity::from_attributes(&data)
    }

    // ----------------------------------------------------------------------------------
    // List* over the session

    pub async fn list_identity(&self) -> Result<ListReply> {
        self.list(Command::ListIdentity).await
    }

    pub async fn list_services(&self) -> Result<ListReply> {
        self.list(Command::ListServices).await
    }

    pub async fn list_interfaces(&self) -> Result<ListReply> {
        self.list(Command::ListInterfaces).await
    }

    async fn list(&self, command: Command) -> Result<ListReply> {
        let i = &self.inner;
        let ctx = i.conn.context();
        let frame = list_request(command, i.session, ctx)?;
        let bytes = i
            .conn
            .transact(Key::Context(ctx), frame, i.opts.timeout, || {
                command.name().to_string()
            })
            .await?;
        decode_list(command, i.conn.peer, &bytes)
    }

    // ----------------------------------------------------------------------------------

    /// Close the CIP connection (Forward Close), unregister the session, and close the
    /// socket, all within the timeout. Requests still in flight fail.
    pub async fn close(&self) -> Result<()> {
        let i = &self.inner;
        let mut result = Ok(());
        if let Some(c) = i.cip {
            let path = connection_path(&i.opts.routing);
            let body = ForwardClose {
                priority_tick: i.opts.priority_tick,
                timeout_ticks: i.opts.timeout_ticks,
                connection_serial: c.serial,
                originator_vendor: c.vendor,
                originator_serial: c.originator_serial,
                reserved: 0,
                path: EPath::new(&path, 0)?,
            }
            .to_vec()?;
            let mr = mr_request(svc::FORWARD_CLOSE, &CONNECTION_MANAGER, &body)?;
            result = unconnected_bare(&i.conn, i.session, &i.opts, mr, svc::FORWARD_CLOSE)
                .await
                .and_then(|r| r.into_data(|| "Forward Close".into()))
                .map(|_| ());
        }
        let unregister = Encapsulation {
            header: Header::new(Command::UnRegisterSession, i.session, [0; 8]),
            body: enip_proto::Body::Raw(&[]),
        }
        .to_vec()?;
        let _ = i.conn.send_only(unregister);
        i.conn.shutdown(i.opts.timeout).await;
        result
    }
}

/// One read reply's data appended to `data`, its type checked against the earlier
/// fragments': whether the read is complete, and how many bytes this reply brought.
fn take_fragment(
    path: &[u8],
    service: u8,
    reply: &CipReply,
    ty: &mut Option<WireType>,
    data: &mut Vec<u8>,
) -> Result<(bool, usize)> {
    if !reply.status.carries_data() {
        return Err(reply.error(describe(service, path)));
    }
    let got = take_data(path, service, &reply.data, ty, data)?;
    Ok((reply.status.is_success(), got))
}

/// A read reply's data (type, then values) appended to `data`, its type checked against
/// the earlier fragments': how many bytes of values it brought.
fn take_data(
    path: &[u8],
    service: u8,
    reply_data: &[u8],
    ty: &mut Option<WireType>,
    data: &mut Vec<u8>,
) -> Result<usize> {
    let t = TagData::from_bytes(reply_data)?;
    let wt = WireType::from_tag(&t.type_tag);
    if *ty.get_or_insert(wt) != wt {
        return Err(Error::Protocol(format!(
            "{}: a fragment of type {} after {}",
            describe(service, path),
            wt.name(),
            ty.map(WireType::name).unwrap_or_default()
        )));
    }
    data.extend_from_slice(t.data);
    Ok(t.data.len())
}

/// The data of a successful read reply that is the whole answer, as a [`Reading`]. The
/// caller remembers the type (see [`Client::remember_type`]).
pub(crate) fn whole_data(path: &[u8], service: u8, reply_data: &[u8]) -> Result<Reading> {
    let (mut ty, mut data) = (None, Vec::new());
    take_data(path, service, reply_data, &mut ty, &mut data)?;
    Ok(Reading {
        ty: ty.unwrap_or(WireType::Other(0)),
        data,
    })
}

/// A request frame built once; each sending copies it and writes in a fresh sender
/// context (and, on a CIP connection, sequence count).
#[derive(Debug, Clone)]
pub(crate) struct FrameTemplate {
    frame: Vec<u8>,
    /// Where the sequence count goes, on a connection.
    sequence_at: Option<usize>,
}

impl FrameTemplate {
    /// Append a sending of this frame to `out`; the key its reply will come back with.
    pub(crate) fn stamp(&self, client: &Client, out: &mut Vec<u8>) -> Key {
        let i = &client.inner;
        i.requests.fetch_add(1, Ordering::Relaxed);
        let start = out.len();
        out.extend_from_slice(&self.frame);
        let (key, ctx) = match self.sequence_at {
            Some(at) => {
                let seq = i.conn.sequence();
                if let Some(b) = out.get_mut(start + at..start + at + 2) {
                    b.copy_from_slice(&seq.to_le_bytes());
                }
                (Key::Sequence(seq), connected_context(seq))
            }
            None => {
                let ctx = i.conn.context();
                (Key::Context(ctx), ctx)
            }
        };
        // The sender context: bytes 12..20 of the encapsulation header.
        if let Some(b) = out.get_mut(start + 12..start + 20) {
            b.copy_from_slice(&ctx);
        }
        key
    }
}

fn send_data_frame(
    command: Command,
    session: u32,
    context: [u8; 8],
    timeout: u16,
    cpf: Cpf<'_>,
) -> Result<Vec<u8>> {
    Ok(Encapsulation {
        header: Header::new(command, session, context),
        body: enip_proto::Body::SendData(enip_proto::encap::SendData {
            interface_handle: 0,
            timeout,
            cpf,
        }),
    }
    .to_vec()?)
}

fn wrap_unconnected(opts: &Options, send_path: &[u8], route: &[u8], mr: &[u8]) -> Result<Vec<u8>> {
    let body = UnconnectedSend {
        priority_tick: opts.priority_tick,
        timeout_ticks: opts.timeout_ticks,
        message: mr,
        route: EPath::new(route, 0)?,
        reserved: 0,
    };
    mr_request_with(svc::UNCONNECTED_SEND, send_path, &body)
}

/// Decode a SendRRData / SendUnitData reply to `service`.
fn parse_reply(frame: &[u8], service: u8, routed: bool) -> Result<CipReply> {
    let enc = Encapsulation::decode(frame)?;
    if enc.header.status != EncapStatus::Success {
        return Err(Error::Encapsulation {
            status: enc.header.status.code(),
        });
    }
    let sd = enc.send_data().ok_or_else(|| {
        Error::Protocol(format!(
            "{} reply where SendRRData/SendUnitData was expected",
            enc.header.command.name()
        ))
    })?;
    let msg = sd
        .cpf
        .message()
        .ok_or_else(|| Error::Protocol("reply without a data item".into()))?;
    let r = Reply::decode(msg.data)?;
    let expected = service | svc::REPLY;
    if r.service != expected {
        // The Unconnected Send itself failed (a bad route): its own reply, not the
        // embedded one's.
        if routed && r.service == svc::UNCONNECTED_SEND | svc::REPLY && !r.status.is_success() {
            return Err(Error::Cip {
                service: "Unconnected Send".into(),
                status: r.status,
                extended: r.extended,
            });
        }
        return Err(Error::Protocol(format!(
            "reply for service 0x{:02X} to a request for 0x{service:02X}",
            r.service & !svc::REPLY
        )));
    }
    Ok(CipReply {
        service: r.service,
        status: r.status,
        extended: r.extended,
        data: r.data.to_vec(),
    })
}

async fn register(addr: SocketAddr, timeout: Duration) -> Result<(Conn, u32)> {
    let conn = Conn::open(addr, timeout).await?;
    let ctx = conn.context();
    let frame = Encapsulation {
        header: Header::new(Command::RegisterSession, 0, ctx),
        body: enip_proto::Body::RegisterSession(Default::default()),
    }
    .to_vec()?;
    let bytes = conn
        .transact(Key::Context(ctx), frame, timeout, || {
            "RegisterSession".into()
        })
        .await?;
    let enc = Encapsulation::decode(&bytes)?;
    if enc.header.status != EncapStatus::Success {
        return Err(Error::Encapsulation {
            status: enc.header.status.code(),
        });
    }
    if enc.header.command != Command::RegisterSession || enc.header.session == 0 {
        return Err(Error::Protocol(format!(
            "RegisterSession answered by {} with session handle {:#x}",
            enc.header.command.name(),
            enc.header.session
        )));
    }
    Ok((conn, enc.header.session))
}

/// The connection path: the route, then the Message Router.
fn connection_path(routing: &Routing) -> Vec<u8> {
    let mut p = match routing {
        Routing::Direct => Vec::new(),
        Routing::Routed { route, .. } => route.clone(),
    };
    p.extend_from_slice(&MESSAGE_ROUTER_PATH);
    p
}

/// Send a Connection Manager request bare in SendRRData, as Logix clients send Forward
/// Open and Forward Close: the connection path carries the route.
async fn unconnected_bare(
    conn: &Conn,
    session: u32,
    opts: &Options,
    mr: Vec<u8>,
    service: u8,
) -> Result<CipReply> {
    let ctx = conn.context();
    let secs = u16::try_from(opts.timeout.as_secs().max(1)).unwrap_or(u16::MAX);
    let frame = send_data_frame(
        Command::SendRRData,
        session,
        ctx,
        secs,
        Cpf::unconnected(&mr),
    )?;
    let bytes = conn
        .transact(Key::Context(ctx), frame, opts.timeout, || {
            describe(service, &CONNECTION_MANAGER)
        })
        .await?;
    parse_reply(&bytes, service, false)
}

async fn forward_open(
    conn: &Conn,
    session: u32,
    opts: &Options,
    large: bool,
    size: u16,
) -> Result<CipConnection> {
    let serial = next_serial();
    let originator_serial = 0x454E_4950 ^ std::process::id();
    let vendor = 0x1337;
    let path = connection_path(&opts.routing);
    let params = NetParams::point_to_point(size, large);
    let fo = ForwardOpen {
        large,
        priority_tick: opts.priority_tick,
        timeout_ticks: opts.timeout_ticks,
        ot_connection_id: 0,
        to_connection_id: 0x4000_0000 | u32::from(serial),
        connection_serial: serial,
        originator_vendor: vendor,
        originator_serial,
        // An idle connection lasts RPI × 4 × 2^5 = 256 s before the target drops it.
        timeout_multiplier: 5,
        reserved: [0; 3],
        ot_rpi: 2_000_000,
        ot_params: params,
        to_rpi: 2_000_000,
        to_params: params,
        transport: 0xA3,
        path: EPath::new(&path, 0)?,
    };
    let mut body = Vec::new();
    fo.encode(&mut body)?;
    let service = fo.service();
    let mr = mr_request(service, &CONNECTION_MANAGER, &body)?;
    let reply = unconnected_bare(conn, session, opts, mr, service).await?;
    let data = reply.into_data(|| {
        if large {
            "Large Forward Open".into()
        } else {
            "Forward Open".into()
        }
    })?;
    let r = ForwardOpenReply::from_bytes(&data).or_else(|_| {
        // Trailing bytes after the reply are tolerated: only the ids matter.
        let mut rd = enip_proto::wire::Reader::new(&data);
        ForwardOpenReply::decode(&mut rd)
    })?;
    Ok(CipConnection {
        ot_id: r.ot_connection_id,
        to_id: r.to_connection_id,
        serial,
        vendor,
        originator_serial,
        size,
        large,
    })
}

/// Large Forward Open at the configured size; on any failure, Forward Open at 504 (on a
/// fresh session if the server dropped the first, as cpppo does on services it lacks);
/// if that is refused as too large with a supported size, once more at that size.
async fn open_connection(
    addr: SocketAddr,
    conn: Conn,
    session: u32,
    opts: &Options,
) -> Result<(Conn, u32, Option<CipConnection>)> {
    let large_err = match forward_open(&conn, session, opts, true, opts.connection_size).await {
        Ok(c) => return Ok((conn, session, Some(c))),
        Err(e) => e,
    };
    tracing::debug!("Large Forward Open failed ({large_err}); trying Forward Open");
    let (conn, session) = if conn.broken().is_some() {
        register(addr, opts.timeout).await?
    } else {
        (conn, session)
    };
    let small = opts.connection_size.min(504);
    match forward_open(&conn, session, opts, false, small).await {
        Ok(c) => Ok((conn, session, Some(c))),
        Err(Error::Cip {
            status, extended, ..
        }) if status == GeneralStatus::CONNECTION_FAILURE
            && extended.first() == Some(&enip_proto::status::cm::INVALID_CONNECTION_SIZE) =>
        {
            let supported = extended.get(1).copied().unwrap_or(0);
            if supported == 0 || supported > 511 {
                return Err(Error::Cip {
                    service: "Forward Open".into(),
                    status,
                    extended,
                });
            }
            let c = forward_open(&conn, session, opts, false, supported).await?;
            Ok((conn, session, Some(c)))
        }
        Err(Error::Cip {
            service,
            status,
            extended,
        }) => Err(Error::Cip {
            service: format!("{service}, after Large Forward Open failed ({large_err})"),
            status,
            extended,
        }),
        Err(e) => Err(e),
    }
}
