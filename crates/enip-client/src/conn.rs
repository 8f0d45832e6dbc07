//! One TCP connection carrying many requests at once.
//!
//! A writer task sends frames in the order they were submitted (batching what is queued
//! into one write); a reader task cuts the byte stream into frames and hands each to the
//! request waiting for it — by sender context, or for connected data by the CIP sequence
//! count, because Logix does not echo the context on a connection. Replies may come in
//! any order. A reply nobody waits for (its request timed out) is dropped. When the
//! connection breaks — closed, reset, or a frame that does not decode — every request in
//! flight fails with that reason, and so does every later one.
//!
//! Timeouts cost no timer per request: each waiting request carries its deadline, and one
//! task per connection sleeps until the earliest of them (a pipelined run wakes it about
//! once per timeout, not once per request). Replies are cut out of the receive buffer
//! without copying.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use enip_proto::cpf::Item;
use enip_proto::encap::{frame_len, Command};
use enip_proto::{Body, Encapsulation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// How a reply finds its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Context([u8; 8]),
    Sequence(u16),
}

/// Where a reply goes: to the one request waiting for it, or into a pipeline's shared
/// channel with the tag the pipeline gave it (see [`Conn::submit`]).
#[derive(Debug)]
enum Waiter {
    One(oneshot::Sender<Result<Bytes>>),
    Sink(Sink, usize),
}

/// The channel a pipeline takes its replies from: `(tag, reply)`.
pub(crate) type Sink = mpsc::UnboundedSender<(usize, Result<Bytes>)>;

impl Waiter {
    fn send(self, reply: Result<Bytes>) {
        match self {
            Waiter::One(tx) => {
                let _ = tx.send(reply);
            }
            Waiter::Sink(tx, tag) => {
                let _ = tx.send((tag, reply));
            }
        }
    }
}

/// Keys are counters, sequence numbers and request paths this client chose, not a
/// server's: a multiply-rotate hash is enough, and far cheaper per request than SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

pub(crate) type FastHash = BuildHasherDefault<KeyHasher>;

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(16) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[derive(Debug)]
struct Waiting {
    waiter: Waiter,
    deadline: Instant,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<Key, Waiting, FastHash>,
    /// When the timeout task next looks at the table: `None` while it sleeps for want of
    /// anything to time.
    sweep_at: Option<Instant>,
    /// Why the connection is unusable, once it is.
    dead: Option<Error>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the timeout task: a request waits with a deadline before its next look.
    sweep: Notify,
}

/// What the timeout task hands a request it gave up on; [`Conn::transact`] names it.
fn expired() -> Error {
    Error::Timeout {
        what: String::new(),
        after: Duration::ZERO,
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail_all(&self, why: Error) {
        let mut st = self.lock();
        let why = st.dead.get_or_insert(why).clone();
        for (_, w) in st.pending.drain() {
            w.waiter.send(Err(why.clone()));
        }
    }

    fn deliver(&self, key: Key, frame: Bytes) -> bool {
        let waiting = self.lock().pending.remove(&key);
        match waiting {
            Some(w) => {
                w.waiter.send(Ok(frame));
                true
            }
            None => false,
        }
    }

    /// Fail what is past its deadline; the earliest deadline left, if any.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut st = self.lock();
        let mut earliest: Option<Instant> = None;
        let mut late = Vec::new();
        for (key, w) in &st.pending {
            if w.deadline <= now {
                late.push(*key);
            } else {
                earliest = Some(earliest.map_or(w.deadline, |e| e.min(w.deadline)));
            }
        }
        for key in late {
            if let Some(w) = st.pending.remove(&key) {
                w.waiter.send(Err(expired()));
            }
        }
        st.sweep_at = earliest;
        earliest
    }
}

/// Sleeps until the earliest deadline of a waiting request (or until told of an earlier
/// one), fails what has expired, and sleeps again; with nothing waiting, until woken.
async fn timeout_loop(shared: Arc<Shared>) {
    let mut next = None;
    loop {
        match next {
            None => shared.sweep.notified().await,
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = shared.sweep.notified() => {}
                }
            }
        }
        next = shared.expire(Instant::now());
    }
}

/// Removes a request from the pending table when its caller stops waiting (timeout or a
/// dropped future), so a late reply is dropped instead of leaking an entry.
struct Pending<'a> {
    shared: &'a Shared,
    key: Key,
    armed: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.lock().pending.remove(&self.key);
        }
    }
}

/// Largest encapsulation body accepted from a server (the length field's maximum).
const MAX_BODY: usize = 65_535;

#[derive(Debug)]
pub(crate) struct Conn {
    shared: Arc<Shared>,
    writer: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    write_task: Mutex<Option<JoinHandle<()>>>,
    read_task: JoinHandle<()>,
    timeout_task: JoinHandle<()>,
    next_context: AtomicU64,
    next_sequence: AtomicU16,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.read_task.abort();
        self.timeout_task.abort();
        if let Some(w) = self
            .write_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            w.abort();
        }
    }
}

impl Conn {
    /// Connect within `timeout`, with Nagle off: a pipelined client wants each request on
    /// the wire at once.
    pub(crate) async fn open(addr: SocketAddr, timeout: Duration) -> Result<Self> {
        let connect = |message: String| Error::Connect {
            addr: addr.to_string(),
            message,
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect(format!("no answer within {timeout:?}")))?
            .map_err(|e| connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().unwrap_or(addr);
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (rd, wr) = stream.into_split();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let write_task = tokio::spawn(write_loop(wr, rx, shared.clone()));
        let read_task = tokio::spawn(read_loop(rd, shared.clone()));
        let timeout_task = tokio::spawn(timeout_loop(shared.clone()));
        Ok(Self {
            shared,
            writer: Mutex::new(Some(tx)),
            write_task: Mutex::new(Some(write_task)),
            read_task,
            timeout_task,
            // Any start works; a per-connection counter keeps contexts unique in flight.
            next_context: AtomicU64::new(1),
            next_sequence: AtomicU16::new(1),
            peer,
            local,
        })
    }

    pub(crate) fn context(&self) -> [u8; 8] {
        self.next_context
            .fetch_add(1, Ordering::Relaxed)
            .to_le_bytes()
    }

    pub(crate) fn sequence(&self) -> u16 {
        self.next_sequence.fetch_add(1, Ordering::Relaxed)
    }

    /// Why the connection is unusable, if it is.
    pub(crate) fn broken(&self) -> Option<Error> {
        self.shared.lock().dead.clone()
    }

    fn send_frame(&self, frame: Vec<u8>) -> Result<()> {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        match w.as_ref().map(|w| w.send(frame)) {
            Some(Ok(())) => Ok(()),
            _ => Err(self
                .broken()
                .unwrap_or_else(|| Error::Closed("the client closed the connection".into()))),
        }
    }

    /// Send `frame` and wait up to `timeout` for the reply matched by `key`.
    pub(crate) async fn transact(
        &self,
        key: Key,
        frame: Vec<u8>,
        timeout: Duration,
        what: impl FnOnce() -> String,
    ) -> Result<Bytes> {
        let (tx, rx) = oneshot::channel();
        self.wait_for([(key, Waiter::One(tx))], timeout)?;
        let mut guard = Pending {
            shared: &self.shared,
            key,
            armed: true,
        };
        self.send_frame(frame)?;
        let reply = rx.await;
        guard.armed = false;
        match reply {
            Ok(Err(Error::Timeout { .. })) => Err(Error::Timeout {
                what: what(),
                after: timeout,
            }),
            Ok(reply) => reply,
            Err(_) => Err(self
                .broken()
                .unwrap_or_else(|| Error::Closed("reply channel dropped".into()))),
        }
    }

    /// Register what waits for replies, each `timeout` from now.
    fn wait_for(
        &self,
        waiters: impl IntoIterator<Item = (Key, Waiter)>,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let wake = {
            let mut st = self.shared.lock();
            if let Some(e) = &st.dead {
                return Err(e.clone());
            }
            for (key, waiter) in waiters {
                st.pending.insert(key, Waiting { waiter, deadline });
            }
            // The timeout task needs telling only of a deadline before its next look.
            let earlier = st.sweep_at.is_none_or(|at| deadline < at);
            if earlier {
                st.sweep_at = Some(deadline);
            }
            earlier
        };
        if wake {
            self.shared.sweep.notify_one();
        }
        Ok(())
    }

    /// Send `frames` (several requests, one write) whose replies go to `sink`: each as
    /// `(tag, reply)` for its `(key, tag)` in `keys`, or `(tag, Err(timeout))` once
    /// `timeout` has passed (an error without its `what`: the pipeline names it). A
    /// broken connection is an error here, for all of them.
    pub(crate) fn submit(
        &self,
        keys: &[(Key, usize)],
        frames: Vec<u8>,
        timeout: Duration,
        sink: &Sink,
    ) -> Result<()> {
        self.wait_for(
            keys.iter()
                .map(|&(key, tag)| (key, Waiter::Sink(sink.clone(), tag))),
            timeout,
        )?;
        self.send_frame(frames).inspect_err(|_| {
            let mut st = self.shared.lock();
            for (key, _) in keys {
                st.pending.remove(key);
            }
        })
    }

    /// Send a frame that has no reply (UnRegisterSession).
    pub(crate) fn send_only(&self, frame: Vec<u8>) -> Result<()> {
        self.send_frame(frame)
    }

    /// Flush what is queued and close the sending side, within `timeout`.
    pub(crate) async fn shutdown(&self, timeout: Duration) {
        drop(self.writer.lock().unwrap_or_else(|p| p.into_inner()).take());
        let task = self
            .write_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = task {
            let abort = t.abort_handle();
            if tokio::time::timeout(timeout, t).await.is_err() {
                abort.abort();
            }
        }
        self.shared
            .fail_all(Error::Closed("the client closed the connection".into()));
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    let mut batch = Vec::with_capacity(16 * 1024);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(f) => batch.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        if let Err(e) = wr.write_all(&batch).await {
            shared.fail_all(Error::Closed(format!("sending failed: {e}")));
            return;
        }
    }
    let _ = wr.shutdown().await;
}

/// Receive-buffer growth: a read has at least this much room, and a new buffer is this
/// large (frames cut from the old one keep it alive until their requests are done).
const READ_CHUNK: usize = 64 * 1024;

async fn read_loop(mut rd: OwnedReadHalf, shared: Arc<Shared>) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let why = loop {
        let mut garbage = None;
        loop {
            match frame_len(&buf, MAX_BODY) {
                Ok(Some(n)) if n <= buf.len() => {
                    let frame = buf.split_to(n).freeze();
                    if let Err(e) = dispatch(&shared, frame) {
                        garbage = Some(e);
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    garbage = Some(Error::Closed(format!("garbage from the server: {e}")));
                    break;
                }
            }
        }
        if let Some(e) = garbage {
            break e;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => break Error::Closed("closed by the server".into()),
            Ok(0) => {
                break Error::Closed(format!(
                    "closed by the server in the middle of a frame ({} bytes of it received)",
                    buf.len()
                ))
            }
            Ok(_) => {}
            Err(e) => break Error::Closed(format!("receiving failed: {e}")),
        }
    };
    shared.fail_all(why);
}

/// The sender context of a connected request: it names the sequence count, so an
/// error reply without connected data (a bare header with a non-zero encapsulation status)
/// still finds its request, from servers that echo the context.
pub(crate) fn connected_context(sequence: u16) -> [u8; 8] {
    let [lo, hi] = sequence.to_le_bytes();
    [b'S', b'Q', lo, hi, 0, 0, 0, 0]
}

fn sequence_context(ctx: [u8; 8]) -> Key {
    match ctx {
        [b'S', b'Q', lo, hi, 0, 0, 0, 0] => Key::Sequence(u16::from_le_bytes([lo, hi])),
        _ => Key::Context(ctx),
    }
}

/// Hand a frame to its request. A frame that does not decode breaks the connection: the
/// stream cannot be trusted after it.
fn dispatch(shared: &Shared, frame: Bytes) -> Result<()> {
    let key = key_of(&frame)?;
    if !shared.deliver(key, frame) {
        tracing::debug!(?key, "a reply no request waits for (timed out?); dropped");
    }
    Ok(())
}

/// Which request a frame answers. Only the header has to make sense here: a body that
/// does not decode is that request's problem (reported to it), not the connection's.
fn key_of(frame: &[u8]) -> Result<Key> {
    let header = enip_proto::Header::decode(&mut enip_proto::wire::Reader::new(frame))
        .map_err(|e| Error::Closed(format!("garbage from the server: {e}")))?;
    if header.command != Command::SendUnitData {
        return Ok(Key::Context(header.context));
    }
    let sequence = Encapsulation::decode(frame)
        .ok()
        .and_then(|enc| match &enc.body {
            Body::SendData(sd) => sd.cpf.items.iter().find_map(|i| match i {
                Item::ConnectedData { sequence, .. } => Some(*sequence),
                _ => None,
            }),
            _ => None,
        });
    Ok(sequence.map_or_else(|| sequence_context(header.context), Key::Sequence))
}
