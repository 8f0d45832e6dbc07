//! Running a list of [`Operation`]s: pipelined, up to `depth` requests in flight, and
//! with `multiple` packed into Multiple Service Packets that fit the connection. Results
//! come back in operation order whatever order the replies arrive in.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use enip_proto::mr::service as svc;
use enip_proto::services::{
    Body as _, Multiple, ReadTag, ReadTagFragmented, WriteTag, WriteTagFragmented,
};
use enip_proto::types::{DataType, LogixString, LOGIX_STRING_CHARS, LOGIX_STRING_HANDLE};
use enip_proto::Reply;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use crate::client::{
    describe, mr_request, mr_request_with, whole_data, CipReply, Client, FrameTemplate, Reading,
    TagPath,
};
use crate::conn::{FastHash, Key, Sink};
use crate::error::{Error, Result};
use crate::ops::{encode_values, Operation};
use crate::value::WireType;

/// How to run operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exec {
    /// Requests in flight at once (at least 1).
    pub depth: usize,
    /// Pack operations into Multiple Service Packets (cpppo's `-m`).
    pub multiple: bool,
    /// Always use Read/Write Tag Fragmented (cpppo's `-f`).
    pub fragment: bool,
    /// When a read returns a structure whose template is unknown, upload the tag list
    /// and templates so it decodes (once per client).
    pub structs: bool,
}

impl Default for Exec {
    fn default() -> Self {
        Self {
            depth: 1,
            multiple: false,
            fragment: false,
            structs: false,
        }
    }
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpValue {
    Read(Reading),
    Written,
}

/// One operation's result.
#[derive(Debug, Clone)]
pub struct OpResult {
    /// Position in the operation list.
    pub index: usize,
    pub result: Result<OpValue>,
    /// From sending the request that carried it to its last reply.
    pub latency: Duration,
}

/// Totals of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub operations: usize,
    /// CIP requests sent: packets, fragments and single requests, each once.
    pub requests: u64,
}

impl Operation {
    /// Whether this operation uses the fragmented services: a byte offset, or `-f`.
    pub fn fragmented(&self, exec: &Exec) -> bool {
        self.offset.is_some() || exec.fragment
    }

    /// The element count a write sends: the range, or one per value.
    pub fn write_elements(&self) -> u16 {
        match &self.write {
            Some(w) => self
                .count
                .unwrap_or_else(|| u16::try_from(w.values.len()).unwrap_or(u16::MAX)),
            None => self.elements(),
        }
    }

    fn service(&self, exec: &Exec) -> u8 {
        match (&self.write, self.fragmented(exec)) {
            (None, false) => svc::READ_TAG,
            (None, true) => svc::READ_TAG_FRAGMENTED,
            (Some(_), false) => svc::WRITE_TAG,
            (Some(_), true) => svc::WRITE_TAG_FRAGMENTED,
        }
    }

    /// The operation's request as one Message Router message.
    fn request(&self, exec: &Exec) -> Result<Vec<u8>> {
        let service = self.service(exec);
        let body = match &self.write {
            None if self.fragmented(exec) => {
                let body = ReadTagFragmented {
                    elements: self.elements(),
                    offset: self.offset.unwrap_or(0),
                };
                return mr_request_with(service, &self.path, &body);
            }
            None => {
                let body = ReadTag {
                    elements: self.elements(),
                };
                return mr_request_with(service, &self.path, &body);
            }
            Some(w) => {
                let data = encode_values(w);
                let type_tag = WireType::Atomic(w.data_type).to_tag();
                if self.fragmented(exec) {
                    WriteTagFragmented {
                        type_tag,
                        elements: self.write_elements(),
                        offset: self.offset.unwrap_or(0),
                        data: &data,
                    }
                    .to_vec()?
                } else {
                    WriteTag {
                        type_tag,
                        elements: self.write_elements(),
                        data: &data,
                    }
                    .to_vec()?
                }
            }
        };
        mr_request(service, &self.path, &body)
    }

    /// The reply's size, guessed: type and data for reads — the element size from an
    /// earlier reply to the same path, else 4 bytes as cpppo assumes — status for writes.
    fn reply_estimate(&self, known: Option<WireType>) -> usize {
        match &self.write {
            Some(_) => 4,
            None => {
                let (tag, size) = match known {
                    Some(t) => (t.to_tag().encoded_len(), t.element_size().unwrap_or(4)),
                    None => (2, 4),
                };
                let first = self.offset.unwrap_or(0) as usize;
                4 + tag + (usize::from(self.elements()) * size).saturating_sub(first)
            }
        }
    }
}

/// Bytes of a Multiple Service Packet request around its messages: service, path size,
/// the Message Router path, count.
const MSP_REQUEST: usize = 1 + 1 + 4 + 2;
/// Bytes of its reply around the embedded replies: reply header, count.
const MSP_REPLY: usize = 4 + 2;

type Unit = Vec<(usize, Arc<Operation>)>;
type Done = Vec<(Arc<Operation>, OpResult)>;

/// Units finished but not yet handed out (an earlier one is still running) are held at
/// most this many times `depth`: a stalled request holds the pipeline back for at most
/// its timeout, without the held results growing with the request rate.
const ORDER_WINDOW: usize = 64;

/// Cuts the operation stream into units: one operation each, or with `multiple` as many
/// as fit one Multiple Service Packet (request and estimated reply) within the limit.
struct Packer<'c, I> {
    client: &'c Client,
    exec: Exec,
    limit: usize,
    ops: I,
    /// The operation that did not fit the last packet: it starts the next one.
    carry: Option<(usize, Arc<Operation>)>,
    count: usize,
    cache: Cache,
}

/// What a run keeps per operation, by the operation's address: a run that repeats a
/// few operations (`-r`) encodes each once. An entry holds its operation, so the address
/// cannot be reused while the entry is there.
struct Cached {
    _op: Arc<Operation>,
    /// The Message Router request; `None` if it cannot be encoded (the operation then
    /// goes alone, the general way, and fails there with the reason).
    request: Option<Arc<[u8]>>,
    /// The fast lane's frame, built on its first sending.
    template: Option<FrameTemplate>,
    /// The type its last read returned (or the client knew at first).
    ty: Option<WireType>,
}

type Cache = HashMap<usize, Cached, FastHash>;

/// Entries kept at most; a run over more distinct operations starts over.
const CACHE_KEPT: usize = 1024;

fn cached<'c>(
    cache: &'c mut Cache,
    client: &Client,
    op: &Arc<Operation>,
    exec: &Exec,
) -> &'c mut Cached {
    let id = Arc::as_ptr(op) as usize;
    if cache.len() >= CACHE_KEPT && !cache.contains_key(&id) {
        cache.clear();
    }
    cache.entry(id).or_insert_with(|| Cached {
        _op: op.clone(),
        request: op.request(exec).ok().map(Arc::from),
        template: None,
        ty: client.known_type(&op.path),
    })
}

impl<I: Iterator<Item = (usize, Arc<Operation>)>> Packer<'_, I> {
    fn pull(&mut self) -> Option<(usize, Arc<Operation>)> {
        let next = self.carry.take().or_else(|| self.ops.next());
        if next.is_some() {
            self.count += 1;
        }
        next
    }

    /// A read of `op` returned `ty`: the client's type cache (shared, behind a lock) is
    /// told when that changes, and packets are sized by it.
    fn learned(&mut self, op: &Arc<Operation>, ty: WireType) {
        match self.cache.get_mut(&(Arc::as_ptr(op) as usize)) {
            Some(c) if c.ty == Some(ty) => {}
            Some(c) => {
                c.ty = Some(ty);
                self.client.remember_type(&op.path, ty);
            }
            None => self.client.remember_type(&op.path, ty),
        }
    }

    /// The next unit, and for a packet of several its encoded Multiple Service Packet
    /// body.
    fn next_unit(&mut self) -> Option<(Unit, Option<Vec<u8>>)> {
        if !self.exec.multiple {
            return self.pull().map(|o| (vec![o], None));
        }
        let limit = self.limit;
        let mut group: Unit = Vec::with_capacity(16);
        let mut messages: Vec<Arc<[u8]>> = Vec::with_capacity(16);
        let (mut req_sum, mut rep_sum) = (0usize, 0usize);
        while let Some((index, op)) = self.pull() {
            let c = cached(&mut self.cache, self.client, &op, &self.exec);
            let request = c.request.clone();
            let req = request.as_ref().map_or(usize::MAX, |r| r.len());
            let rep = op.reply_estimate(c.ty);
            let alone = MSP_REQUEST.saturating_add(2).saturating_add(req) > limit
                || MSP_REPLY + 2 + rep > limit;
            let n = group.len() + 1;
            let fits = (MSP_REQUEST + 2 * n + req_sum).saturating_add(req) <= limit
                && MSP_REPLY + 2 * n + rep_sum + rep <= limit;
            if alone && group.is_empty() {
                return Some((vec![(index, op)], None));
            }
            if alone || !fits {
                // Counted again when it is pulled for the next unit.
                self.count -= 1;
                self.carry = Some((index, op));
                break;
            }
            req_sum += req;
            rep_sum += rep;
            group.push((index, op));
            messages.extend(request);
        }
        let packet = (group.len() > 1).then(|| {
            let mut body = Vec::with_capacity(2 + 2 * messages.len() + req_sum);
            Multiple {
                messages: messages.iter().map(|m| &m[..]).collect(),
            }
            .encode(&mut body)
            .ok()
            .map(|()| body)
        });
        (!group.is_empty()).then_some((group, packet.flatten()))
    }
}

/// Where a unit stands, by unit number.
enum Slot {
    /// A general unit: its future is in the pipeline's set.
    Running,
    /// A plain read in flight on the fast lane: its reply comes through the sink.
    Fast {
        index: usize,
        op: Arc<Operation>,
        sent: Instant,
    },
    /// Finished, waiting for the units before it to be handed out.
    Done(Done),
}

/// Units by number, from the first not yet handed out, with what the pipeline derives
/// from them: how many are on the fast lane, and which one later units wait for.
#[derive(Default)]
struct Held {
    slots: VecDeque<Slot>,
    /// The number of the unit at the front.
    handed: usize,
    /// Units in flight on the fast lane.
    fast: usize,
    /// A unit the operations after it must wait for (see `Client::needs_barrier`).
    barrier: Option<usize>,
}

impl Held {
    fn push(&mut self, slot: Slot) {
        self.fast += usize::from(matches!(slot, Slot::Fast { .. }));
        self.slots.push_back(slot);
    }

    fn slot(&mut self, n: usize) -> Option<&mut Slot> {
        n.checked_sub(self.handed)
            .and_then(|i| self.slots.get_mut(i))
    }

    /// Unit `n` is finished.
    fn finish(&mut self, n: usize, done: Done) {
        if self.barrier == Some(n) {
            self.barrier = None;
        }
        if let Some(slot) = self.slot(n) {
            *slot = Slot::Done(done);
        }
    }

    /// Unit `n` off the fast lane, if it is on it: it is `Running` until finished.
    fn take_fast(&mut self, n: usize) -> Option<(usize, Arc<Operation>, Instant)> {
        let slot = self.slot(n)?;
        match std::mem::replace(slot, Slot::Running) {
            Slot::Fast { index, op, sent } => {
                self.fast -= 1;
                Some((index, op, sent))
            }
            other => {
                *slot = other;
                None
            }
        }
    }

    /// The front unit's results, once it is finished.
    fn pop_done(&mut self) -> Option<Done> {
        if !matches!(self.slots.front(), Some(Slot::Done(_))) {
            return None;
        }
        self.handed += 1;
        match self.slots.pop_front() {
            Some(Slot::Done(done)) => Some(done),
            _ => None,
        }
    }
}

/// A unit that is one plain read (not fragmented by request): the fast lane's.
fn plain_read(unit: &Unit, exec: &Exec) -> Option<(usize, Arc<Operation>)> {
    match unit.as_slice() {
        [(index, op)] if op.write.is_none() && !op.fragmented(exec) => Some((*index, op.clone())),
        _ => None,
    }
}

type UnitFuture = Pin<Box<dyn Future<Output = (usize, Done)> + Send>>;

impl Client {
    /// Run `ops` and hand each result to `each`, in operation order.
    ///
    /// Up to `exec.depth` requests are in flight, all driven from the caller's task (no
    /// task per request); a unit whose reply comes early waits, finished, until those
    /// before it are handed out. `ops` is pulled as the pipeline drains, so a long run
    /// (`-r 1000000`) need not exist as a list: pass `Arc<Operation>`s cycled from a few.
    ///
    /// Plain reads take a fast lane: their frame is built once per operation and
    /// stamped with a fresh sender context (or sequence count) per sending, every
    /// request added at once goes in one write, and replies come back through one
    /// channel instead of a future per request. A reply that is not the whole answer
    /// (a partial transfer, an error, a structure whose template is unknown) goes on
    /// the general way.
    pub async fn execute<I, F>(&self, ops: I, exec: Exec, mut each: F) -> Stats
    where
        I: IntoIterator,
        I::Item: Into<Arc<Operation>>,
        F: FnMut(&Operation, OpResult),
    {
        let before = self.requests_sent();
        let depth = exec.depth.max(1);
        let window = depth.saturating_mul(ORDER_WINDOW);
        let mut packer = Packer {
            client: self,
            exec,
            limit: self.message_limit(),
            ops: ops.into_iter().map(Into::into).enumerate(),
            carry: None,
            count: 0,
            cache: Cache::default(),
        };
        let mut running: FuturesUnordered<UnitFuture> = FuturesUnordered::new();
        let (sink, mut replies) = mpsc::unbounded_channel();
        let mut keys = Vec::new();
        let mut frames = Vec::new();
        let mut held = Held::default();
        let mut launched = 0usize;
        let mut exhausted = false;
        loop {
            let sent = Instant::now();
            while !exhausted
                && held.barrier.is_none()
                && running.len() + held.fast < depth
                && held.slots.len() < window
            {
                let Some((unit, packet)) = packer.next_unit() else {
                    exhausted = true;
                    break;
                };
                let n = launched;
                launched += 1;
                let Some((index, op)) = plain_read(&unit, &exec) else {
                    // Requests go in operation order (a read after a write sees it): the
                    // fast frames before this unit go first, then its request, which its
                    // first poll sends, then the fast frames after it.
                    self.flush(&mut keys, &mut frames, &sink, &mut held);
                    if self.needs_barrier(&unit) {
                        held.barrier = Some(n);
                    }
                    held.push(Slot::Running);
                    let c = self.clone();
                    running.push(Box::pin(async move {
                        (n, c.run_unit(unit, packet, exec).await)
                    }));
                    while let Poll::Ready(Some((n, done))) =
                        std::future::poll_fn(|cx| Poll::Ready(running.poll_next_unpin(cx))).await
                    {
                        held.finish(n, done);
                    }
                    continue;
                };
                match self.fast_template(&mut packer.cache, &op, &exec) {
                    Ok(t) => {
                        keys.push((t.stamp(self, &mut frames), n));
                        held.push(Slot::Fast { index, op, sent });
                    }
                    Err(e) => held.push(Slot::Done(failed(index, op, e))),
                }
            }
            self.flush(&mut keys, &mut frames, &sink, &mut held);
            while let Some(results) = held.pop_done() {
                for (op, r) in results {
                    if let Ok(OpValue::Read(reading)) = &r.result {
                        packer.learned(&op, reading.ty);
                    }
                    each(&op, r);
                }
            }
            if running.is_empty() && held.fast == 0 {
                if exhausted && held.slots.is_empty() {
                    break;
                }
                continue;
            }
            tokio::select! {
                Some((n, done)) = running.next(), if !running.is_empty() => held.finish(n, done),
                Some(first) = replies.recv() => {
                    // Everything that has come, before the pipeline is refilled: the
                    // new requests then go in one write.
                    let mut next = Some(first);
                    while let Some((n, reply)) = next {
                        if let Some((index, op, sent)) = held.take_fast(n) {
                            match self.fast_reply(index, op, sent, reply, &exec) {
                                Ok(done) => held.finish(n, done),
                                Err(more) => {
                                    running.push(Box::pin(async move { (n, more.await) }));
                                }
                            }
                        }
                        next = replies.try_recv().ok();
                    }
                }
            }
        }
        Stats {
            operations: packer.count,
            requests: self.requests_sent() - before,
        }
    }

    /// Send the fast lane's frames stamped so far, in one write; if the connection is
    /// gone, their operations fail with the reason.
    fn flush(
        &self,
        keys: &mut Vec<(Key, usize)>,
        frames: &mut Vec<u8>,
        sink: &Sink,
        held: &mut Held,
    ) {
        if keys.is_empty() {
            return;
        }
        if let Err(e) = self.submit(keys, std::mem::take(frames), sink) {
            for &(_, n) in keys.iter() {
                if let Some((index, op, _)) = held.take_fast(n) {
                    held.finish(n, failed(index, op, e.clone()));
                }
            }
        }
        keys.clear();
    }

    /// Whether the operations after `unit` must wait until it is done: a `(STRING)` write
    /// to a tag not known to be a Logix STRING may take a second request (the value again
    /// as the Logix STRING structure, see `write_logix_strings`), and a read after it in
    /// the pipeline would otherwise be sent before that and miss the write.
    fn needs_barrier(&self, unit: &Unit) -> bool {
        unit.iter().any(|(_, op)| {
            op.write
                .as_ref()
                .is_some_and(|w| w.data_type == DataType::String)
                && self.known_type(&op.path) != Some(LOGIX_STRING)
        })
    }

    /// The frame template of a plain read, built on its first sending.
    fn fast_template<'t>(
        &self,
        cache: &'t mut Cache,
        op: &Arc<Operation>,
        exec: &Exec,
    ) -> Result<&'t FrameTemplate> {
        let c = cached(cache, self, op, exec);
        let template = match c.template.take() {
            Some(t) => t,
            None => match &c.request {
                Some(r) => self.frame_template(r)?,
                // Encoding failed before: again, for the reason.
                None => self.frame_template(&op.request(exec)?)?,
            },
        };
        Ok(c.template.insert(template))
    }

    /// A fast-lane read's reply: its result, or (not the whole answer) the future that
    /// finishes it the general way.
    fn fast_reply(
        &self,
        index: usize,
        op: Arc<Operation>,
        sent: Instant,
        reply: Result<bytes::Bytes>,
        exec: &Exec,
    ) -> std::result::Result<Done, Pin<Box<dyn Future<Output = Done> + Send>>> {
        let service = svc::READ_TAG;
        let reply = match reply {
            Ok(frame) => self.parse(&frame, service),
            Err(Error::Timeout { .. }) => Err(Error::Timeout {
                what: describe(service, &op.path),
                after: self.options().timeout,
            }),
            Err(e) => Err(e),
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return Ok(vec![(op, result(index, Err(e), sent))]),
        };
        match self.whole_reading(&op.path, &reply, service) {
            Some(Ok(r))
                if !exec.structs
                    || !matches!(r.ty, WireType::Struct(h) if !self.structure_settled(h)) =>
            {
                Ok(vec![(op, result(index, Ok(OpValue::Read(r)), sent))])
            }
            Some(Err(e)) => Ok(vec![(op, result(index, Err(e), sent))]),
            _ => {
                let c = self.clone();
                let exec = *exec;
                Err(Box::pin(async move {
                    let r = c
                        .finish_read(&op.path, op.elements(), 0, reply, service)
                        .await
                        .map(OpValue::Read);
                    let latency = sent.elapsed();
                    c.settle_structures(std::slice::from_ref(&r), &exec).await;
                    vec![(
                        op,
                        OpResult {
                            index,
                            result: r,
                            latency,
                        },
                    )]
                }))
            }
        }
    }

    /// With `exec.structs`, make sure structures read can be decoded (see
    /// [`Client::learn_structure`]).
    async fn settle_structures(&self, results: &[Result<OpValue>], exec: &Exec) {
        if !exec.structs {
            return;
        }
        for r in results {
            if let Ok(OpValue::Read(Reading {
                ty: WireType::Struct(h),
                ..
            })) = r
            {
                Box::pin(self.learn_structure(*h)).await;
            }
        }
    }

    async fn run_unit(self, unit: Unit, packet: Option<Vec<u8>>, exec: Exec) -> Done {
        let start = Instant::now();
        let results: Vec<Result<OpValue>> = match unit.as_slice() {
            [(_, op)] => vec![self.run_one(op, &exec).await],
            // Boxed, like every path but a single read: each unit's future is moved into
            // the pipeline, and the rare paths would make every one of them large.
            ops => Box::pin(self.run_multiple(ops, packet, &exec)).await,
        };
        let latency = start.elapsed();
        self.settle_structures(&results, &exec).await;
        unit.into_iter()
            .zip(results)
            .map(|((index, op), result)| {
                (
                    op,
                    OpResult {
                        index,
                        result,
                        latency,
                    },
                )
            })
            .collect()
    }

    async fn run_one(&self, op: &Operation, exec: &Exec) -> Result<OpValue> {
        // An operation's path was encoded by its parser: reads use it as it is.
        let Some(w) = &op.write else {
            let reading = if op.fragmented(exec) {
                self.read_tag_fragmented_at(&op.path, op.elements(), op.offset.unwrap_or(0))
                    .await
            } else {
                self.read_tag_at(&op.path, op.elements()).await
            };
            return reading.map(OpValue::Read);
        };
        Box::pin(self.run_write(op, w, exec)).await
    }

    async fn run_write(
        &self,
        op: &Operation,
        w: &crate::ops::WriteValues,
        exec: &Exec,
    ) -> Result<OpValue> {
        let path = TagPath::from_bytes(op.path.clone())?;
        match w {
            w if w.data_type == DataType::String
                && self.known_type(&op.path) == Some(LOGIX_STRING) =>
            {
                self.write_logix_strings(&path, op, exec).await
            }
            w => {
                let data = encode_values(w);
                let ty = WireType::Atomic(w.data_type);
                let r = if op.fragmented(exec) {
                    self.write_tag_fragmented(
                        &path,
                        ty,
                        op.write_elements(),
                        op.offset.unwrap_or(0),
                        &data,
                    )
                    .await
                } else {
                    self.write_tag(&path, ty, op.write_elements(), &data).await
                };
                match r {
                    Ok(()) => Ok(OpValue::Written),
                    Err(e) if string_mismatch(&e, op) => {
                        self.write_logix_strings(&path, op, exec).await
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// cpppo's `(STRING)` is the CIP STRING; a Logix STRING tag refuses it as a type
    /// mismatch. The values go again as the Logix STRING structure (LEN, DATA[82]).
    async fn write_logix_strings(
        &self,
        path: &TagPath,
        op: &Operation,
        exec: &Exec,
    ) -> Result<OpValue> {
        let mut data = Vec::new();
        for v in op.write.iter().flat_map(|w| &w.values) {
            let crate::ops::Scalar::Str(s) = v else {
                return Err(Error::Invalid("STRING values must be text".into()));
            };
            LogixString(s.as_bytes().to_vec())
                .encode(&mut data)
                .map_err(|_| {
                    Error::Invalid(format!(
                        "{s:?} is longer than a STRING's {LOGIX_STRING_CHARS} characters"
                    ))
                })?;
        }
        if op.fragmented(exec) {
            self.write_tag_fragmented(path, LOGIX_STRING, op.write_elements(), 0, &data)
                .await?;
        } else {
            self.write_tag(path, LOGIX_STRING, op.write_elements(), &data)
                .await?;
        }
        self.remember_type(&op.path, LOGIX_STRING);
        Ok(OpValue::Written)
    }

    /// A Multiple Service Packet of `ops`, whose body the packer may have encoded.
    async fn run_multiple(
        &self,
        ops: &[(usize, Arc<Operation>)],
        packet: Option<Vec<u8>>,
        exec: &Exec,
    ) -> Vec<Result<OpValue>> {
        let all = |e: Error| ops.iter().map(|_| Err(e.clone())).collect();
        let body = match packet {
            Some(b) => b,
            None => {
                let mut messages = Vec::with_capacity(ops.len());
                for (_, op) in ops {
                    match op.request(exec) {
                        Ok(m) => messages.push(m),
                        Err(e) => return all(e),
                    }
                }
                match (Multiple {
                    messages: messages.iter().map(Vec::as_slice).collect(),
                })
                .to_vec()
                {
                    Ok(b) => b,
                    Err(e) => return all(e.into()),
                }
            }
        };
        let reply = match self
            .request(
                svc::MULTIPLE_SERVICE_PACKET,
                &crate::client::MESSAGE_ROUTER_PATH,
                &body,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return all(e),
        };
        if !reply.status.is_success()
            && reply.status != enip_proto::GeneralStatus::EMBEDDED_SERVICE_ERROR
        {
            return all(reply.error("Multiple Service Packet".into()));
        }
        let replies = match Multiple::from_bytes(&reply.data) {
            Ok(m) if m.messages.len() == ops.len() => m,
            Ok(m) => {
                return all(Error::Protocol(format!(
                    "Multiple Service Packet: {} replies to {} requests",
                    m.messages.len(),
                    ops.len()
                )))
            }
            Err(e) => return all(e.into()),
        };
        let mut out = Vec::with_capacity(ops.len());
        for ((_, op), raw) in ops.iter().zip(replies.messages) {
            out.push(self.embedded(op, exec, raw).await);
        }
        out
    }

    /// One embedded reply of a Multiple Service Packet; a read that did not fit goes on
    /// with Read Tag Fragmented by itself.
    async fn embedded(&self, op: &Operation, exec: &Exec, raw: &[u8]) -> Result<OpValue> {
        let service = op.service(exec);
        let r = Reply::decode(raw)?;
        if r.service != service | svc::REPLY {
            return Err(Error::Protocol(format!(
                "embedded reply for service 0x{:02X} to a request for 0x{service:02X}",
                r.service & !svc::REPLY
            )));
        }
        if op.write.is_none() && r.status.is_success() {
            // The whole answer in the packet (the usual case): no request to make. The
            // type is remembered as results are handed out.
            return whole_data(&op.path, service, r.data).map(OpValue::Read);
        }
        let reply = CipReply {
            service: r.service,
            status: r.status,
            extended: r.extended,
            data: r.data.to_vec(),
        };
        match &op.write {
            None => self
                .finish_read(
                    &op.path,
                    op.elements(),
                    if op.fragmented(exec) {
                        op.offset.unwrap_or(0)
                    } else {
                        0
                    },
                    reply,
                    service,
                )
                .await
                .map(OpValue::Read),
            Some(_) => match reply.into_data(|| describe(service, &op.path)) {
                Ok(_) => Ok(OpValue::Written),
                Err(e) if string_mismatch(&e, op) => {
                    let path = TagPath::from_bytes(op.path.clone())?;
                    self.write_logix_strings(&path, op, exec).await
                }
                Err(e) => Err(e),
            },
        }
    }
}

const LOGIX_STRING: WireType = WireType::Struct(LOGIX_STRING_HANDLE);

fn result(index: usize, result: Result<OpValue>, sent: Instant) -> OpResult {
    OpResult {
        index,
        result,
        latency: sent.elapsed(),
    }
}

/// An operation that failed before anything was sent.
fn failed(index: usize, op: Arc<Operation>, e: Error) -> Done {
    vec![(
        op,
        OpResult {
            index,
            result: Err(e),
            latency: Duration::ZERO,
        },
    )]
}

/// A `(STRING)` write refused as a type mismatch (0xFF / 0x2107).
fn string_mismatch(e: &Error, op: &Operation) -> bool {
    op.write
        .as_ref()
        .is_some_and(|w| w.data_type == DataType::String)
        && matches!(e, Error::Cip { status, extended, .. }
            if status.0 == 0xFF && extended.first() == Some(&enip_proto::status::logix::TYPE_MISMATCH))
}

/// How many elements a read returned: whole elements of a fixed-size type, else the
/// decoded count (strings vary in size).
pub fn elements_read(r: &Reading, decoded: usize) -> usize {
    match r.ty {
        WireType::Atomic(t) if t != DataType::String && t != DataType::ShortString => {
            t.size().map_or(decoded, |s| r.data.len() / s.max(1))
        }
        _ => decoded,
    }
}
