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
use tokio::task::JoinHandle;

use crate::client::{describe, mr_request, CipReply, Client, Reading, TagPath};
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
        let body = match &self.write {
            None if self.fragmented(exec) => ReadTagFragmented {
                elements: self.elements(),
                offset: self.offset.unwrap_or(0),
            }
            .to_vec()?,
            None => ReadTag {
                elements: self.elements(),
            }
            .to_vec()?,
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
        mr_request(self.service(exec), &self.path, &body)
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

impl Client {
    /// Run `ops` and hand each result to `each`, in operation order.
    pub async fn execute<I, F>(&self, ops: I, exec: Exec, mut each: F) -> Stats
    where
        I: IntoIterator<Item = Operation>,
        F: FnMut(&Operation, OpResult),
    {
        let before = self.requests_sent();
        let depth = exec.depth.max(1);
        let limit = self.message_limit();
        let mut inflight: VecDeque<(Unit, JoinHandle<Done>)> = VecDeque::new();
        let mut group: Unit = Vec::new();
        let (mut req_sum, mut rep_sum) = (0usize, 0usize);
        let mut count = 0usize;

        let mut emit = |unit: Unit, done: std::result::Result<Done, tokio::task::JoinError>| {
            match done {
                Ok(results) => {
                    for (op, r) in results {
                        each(&op, r);
                    }
                }
                // A unit's task cannot panic by design; if one does, its operations fail
                // rather than vanish.
                Err(e) => {
                    for (index, op) in unit {
                        each(
                            &op,
                            OpResult {
                                index,
                                result: Err(Error::Protocol(format!("internal error: {e}"))),
                                latency: Duration::ZERO,
                            },
                        );
                    }
                }
            }
        };

        macro_rules! launch {
            ($unit:expr) => {{
                let unit: Unit = $unit;
                if inflight.len() >= depth {
                    if let Some((u, h)) = inflight.pop_front() {
                        let r = h.await;
                        emit(u, r);
                    }
                }
                let c = self.clone();
                let u = unit.clone();
                inflight.push_back((unit, tokio::spawn(async move { c.run_unit(u, exec).await })));
            }};
        }

        for (index, op) in ops.into_iter().enumerate() {
            count += 1;
            let op = Arc::new(op);
            if !exec.multiple {
                launch!(vec![(index, op)]);
                continue;
            }
            let req = op.request(&exec).map_or(usize::MAX, |r| r.len());
            let rep = op.reply_estimate(self.known_type(&op.path));
            let alone = MSP_REQUEST + 2 + req > limit || MSP_REPLY + 2 + rep > limit;
            let n = group.len() + 1;
            let fits = MSP_REQUEST + 2 * n + req_sum + req <= limit
                && MSP_REPLY + 2 * n + rep_sum + rep <= limit;
            if alone || !fits {
                if !group.is_empty() {
                    launch!(std::mem::take(&mut group));
                    (req_sum, rep_sum) = (0, 0);
                }
                if alone {
                    launch!(vec![(index, op)]);
                    continue;
                }
            }
            req_sum += req;
            rep_sum += rep;
            group.push((index, op));
        }
        if !group.is_empty() {
            launch!(group);
        }
        while let Some((u, h)) = inflight.pop_front() {
            let r = h.await;
            emit(u, r);
        }
        Stats {
            operations: count,
            requests: self.requests_sent() - before,
        }
    }

    async fn run_unit(self, unit: Unit, exec: Exec) -> Done {
        let start = Instant::now();
        let results: Vec<Result<OpValue>> = match unit.as_slice() {
            [(_, op)] => vec![self.run_one(op, &exec).await],
            ops => self.run_multiple(ops, &exec).await,
        };
        let latency = start.elapsed();
        if exec.structs {
            for r in &results {
                if let Ok(OpValue::Read(Reading {
                    ty: WireType::Struct(h),
                    ..
                })) = r
                {
                    self.learn_structure(*h).await;
                }
            }
        }
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
        let path = TagPath::from_bytes(op.path.clone())?;
        match &op.write {
            None if op.fragmented(exec) => self
                .read_tag_fragmented(&path, op.elements(), op.offset.unwrap_or(0))
                .await
                .map(OpValue::Read),
            None => self.read_tag(&path, op.elements()).await.map(OpValue::Read),
            Some(w)
                if w.data_type == DataType::String
                    && self.known_type(&op.path) == Some(LOGIX_STRING) =>
            {
                self.write_logix_strings(&path, op, exec).await
            }
            Some(w) => {
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

    async fn run_multiple(
        &self,
        ops: &[(usize, Arc<Operation>)],
        exec: &Exec,
    ) -> Vec<Result<OpValue>> {
        let all = |e: Error| ops.iter().map(|_| Err(e.clone())).collect();
        let mut messages = Vec::with_capacity(ops.len());
        for (_, op) in ops {
            match op.request(exec) {
                Ok(m) => messages.push(m),
                Err(e) => return all(e),
            }
        }
        let body = match (Multiple {
            messages: messages.iter().map(Vec::as_slice).collect(),
        })
        .to_vec()
        {
            Ok(b) => b,
            Err(e) => return all(e.into()),
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
        let reply = CipReply {
            service: r.service,
            status: r.status,
            extended: r.extended,
            data: r.data.to_vec(),
        };
        let path = TagPath::from_bytes(op.path.clone())?;
        match &op.write {
            None => self
                .finish_read(
                    &path,
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
                    self.write_logix_strings(&path, op, exec).await
                }
                Err(e) => Err(e),
            },
        }
    }
}

const LOGIX_STRING: WireType = WireType::Struct(LOGIX_STRING_HANDLE);

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
