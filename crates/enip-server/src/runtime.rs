//! The server runtime: accept loop, one task per TCP connection, UDP discovery, and
//! the knobs the web API turns at run time.
//!
//! A [`Server`] is a cheap handle (clone it freely) to one simulator: the shared
//! controller, its [`Options`], the registry of open connections, the metrics and the
//! `disable`/`done` controls. [`Server::run`] takes the listener and a shutdown future,
//! so tests inject both (as mini-redis's `server::run` does).
//!
//! What a connection task guarantees, whatever the client does:
//! - no more than [`Options::max_connections`] connections are served; one more is
//!   accepted and closed at once, and the others carry on;
//! - a connection silent for longer than [`Options::idle_timeout`] is closed, as Logix
//!   closes sessions after its encapsulation inactivity timeout;
//! - a client that sends but never reads cannot hold the task: replies are flushed every
//!   [`FLUSH_AT`] bytes, each write has [`Options::write_timeout`] to complete, and
//!   nothing more is read from a client until its replies are written, so its memory is
//!   bounded by one read buffer plus one flush;
//! - a frame whose header declares more than [`crate::MAX_BODY`] bytes closes the
//!   connection before the body is buffered; a frame longer than [`Options::size`]
//!   (cpppo's `-s`) is answered with status 0x0065 and then closed; a whole frame whose
//!   body does not decode is answered 0x0003 and the connection carries on (its length
//!   was valid, so the stream is still in step).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use enip_proto::encap::frame_len;
use enip_proto::wire::Reader;
use enip_proto::{Body, EncapStatus, Encapsulation, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::metrics::{CloseReason, Metrics};
use crate::{list_reply, lock, Next, Session, Shared, MAX_BODY};

/// Default [`Options::idle_timeout`]: the CIP TCP/IP object's default encapsulation
/// inactivity timeout (attribute 13), 120 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default [`Options::max_connections`]: what a 1756-EN2T module accepts.
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;
/// Default [`Options::write_timeout`].
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies are written once this many bytes are waiting, even mid-batch.
pub const FLUSH_AT: usize = 64 * 1024;
/// The longest response delay accepted, in seconds.
pub const MAX_DELAY: f64 = 3600.0;
/// How long shutdown waits for connection tasks to finish.
const DRAIN: Duration = Duration::from_secs(2);
const READ_BUFFER: usize = 16 * 1024;

/// The response delay: fixed, or a range re-drawn uniformly once a second (cpppo's
/// `-d 0.5` and `-d 0.5-1.5`). Seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    Fixed(f64),
    Range(f64, f64),
}

impl Default for Delay {
    fn default() -> Self {
        Self::Fixed(0.0)
    }
}

/// Why a delay does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad delay `{0}`: expected seconds `#.#` or a range `#.#-#.#`, from 0 to 3600")]
pub struct DelayError(pub String);

impl std::str::FromStr for Delay {
    type Err = DelayError;

    fn from_str(s: &str) -> Result<Self, DelayError> {
        let bad = || DelayError(s.to_owned());
        let secs = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=MAX_DELAY).contains(v))
                .ok_or_else(bad)
        };
        match s.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (secs(lo)?, secs(hi)?);
                if lo > hi {
                    return Err(bad());
                }
                Ok(Self::Range(lo, hi))
            }
            None => Ok(Self::Fixed(secs(s)?)),
        }
    }
}

impl std::fmt::Display for Delay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(v) => write!(f, "{v:?}"),
            Self::Range(lo, hi) => write!(f, "{lo:?}-{hi:?}"),
        }
    }
}

/// How the server behaves. [`Options::default`] is what the command line gives without
/// flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Delay before each TCP reply.
    pub delay: Delay,
    /// Close a TCP connection after this long without a byte from the client; `None`
    /// never does.
    pub idle_timeout: Option<Duration>,
    /// Connections served at once; 0 for no limit.
    pub max_connections: usize,
    /// cpppo's `-s`: refuse (status 0x0065, then close) encapsulated requests whose body
    /// is longer than this.
    pub size: Option<usize>,
    /// A client has this long to take each batch of replies.
    pub write_timeout: Duration,
    /// Give the controller the wall-clock time before each request (see
    /// [`crate::Session::clock`]); off, the controller's time is left alone.
    pub clock: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            delay: Delay::default(),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            size: None,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            clock: false,
        }
    }
}

/// The delay in force, re-drawn from its range at most once a second.
#[derive(Debug)]
struct DelayState {
    setting: Delay,
    value: f64,
    drawn: Option<Instant>,
    rng: u64,
}

impl DelayState {
    fn new(setting: Delay) -> Self {
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5EED);
        let mut s = Self {
            setting,
            value: 0.0,
            drawn: None,
            rng: h.finish() | 1,
        };
        s.set(setting);
        s
    }

    fn set(&mut self, setting: Delay) {
        self.setting = setting;
        self.drawn = None;
        self.value = match setting {
            Delay::Fixed(v) => v,
            Delay::Range(lo, _) => lo,
        };
    }

    /// The delay now, drawing a new one if the range's last draw is a second old.
    fn current(&mut self, now: Instant) -> f64 {
        if let Delay::Range(lo, hi) = self.setting {
            if self
                .drawn
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
            {
                self.drawn = Some(now);
                self.value = lo + (hi - lo) * self.uniform();
            }
        }
        self.value
    }

    /// splitmix64, mapped to [0, 1).
    fn uniform(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// cpppo's `server.control` values that only report: socket poll latency and thread
/// join timeout. Accepted and shown; this server has no polling loop to tune.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tunables {
    pub latency: f64,
    pub timeout: f64,
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            latency: 0.1,
            timeout: 0.2,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Control {
    disabled: bool,
    done: bool,
}

/// One open TCP connection, as the registry holds it.
#[derive(Debug)]
struct Conn {
    peer: SocketAddr,
    local: SocketAddr,
    received: AtomicU64,
    sent: AtomicU64,
    requests: AtomicU64,
    eof: AtomicBool,
    kill: Notify,
}

impl Conn {
    fn close(&self) {
        self.eof.store(true, Ordering::Relaxed);
        self.kill.notify_one();
    }

    /// Resolves once the connection is told to close.
    async fn killed(&self) {
        loop {
            if self.eof.load(Ordering::Relaxed) {
                return;
            }
            self.kill.notified().await;
        }
    }
}

/// A snapshot of one open TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// cpppo's key: the peer's address with `.` (and `:`) as `_`, `_`, the port:
    /// `127_0_0_1_52044`.
    pub key: String,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Bytes received.
    pub received: u64,
    /// Bytes sent.
    pub sent: u64,
    /// Encapsulation requests received.
    pub requests: u64,
    /// Told to close, not yet gone.
    pub eof: bool,
}

/// cpppo's connection key for a peer.
pub fn connection_key(peer: SocketAddr) -> String {
    let ip = peer.ip().to_string().replace(['.', ':'], "_");
    format!("{ip}_{}", peer.port())
}

#[derive(Debug)]
struct Inner {
    ctrl: Shared,
    metrics: Metrics,
    options: Options,
    delay: Mutex<DelayState>,
    tunables: Mutex<Tunables>,
    conns: Mutex<std::collections::BTreeMap<u64, Arc<Conn>>>,
    next_conn: AtomicU64,
    limit: Arc<Semaphore>,
    control: watch::Sender<Control>,
    tcp_addr: Mutex<Option<SocketAddr>>,
    udp_addr: Mutex<Option<SocketAddr>>,
}

/// One simulator at run time. Clones share everything.
#[derive(Debug, Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

/// Lock a mutex whose holder may have panicked: every value kept under these locks is
/// whole after any single assignment.
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Server {
    /// A server for `ctrl`. Fails only if the metrics cannot be registered.
    pub fn new(ctrl: Shared, options: Options) -> prometheus::Result<Self> {
        let metrics = Metrics::new()?;
        let permits = match options.max_connections {
            0 => Semaphore::MAX_PERMITS,
            n => n.min(Semaphore::MAX_PERMITS),
        };
        let delay = DelayState::new(options.delay);
        metrics.delay.set(delay.value);
        Ok(Self {
            inner: Arc::new(Inner {
                ctrl,
                metrics,
                delay: Mutex::new(delay),
                tunables: Mutex::new(Tunables::default()),
                conns: Mutex::default(),
                next_conn: AtomicU64::new(1),
                limit: Arc::new(Semaphore::new(permits)),
                control: watch::Sender::new(Control::default()),
                tcp_addr: Mutex::new(None),
                udp_addr: Mutex::new(None),
                options,
            }),
        })
    }

    pub fn controller(&self) -> &Shared {
        &self.inner.ctrl
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The metrics in Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let (conns, tags) = {
            let c = lock(&self.inner.ctrl);
            (c.connections.len(), c.tags.len())
        };
        self.inner.metrics.render(conns, tags)
    }

    /// The delay setting and the value in force now (seconds).
    pub fn delay(&self) -> (Delay, f64) {
        let mut d = relock(&self.inner.delay);
        let v = d.current(Instant::now());
        self.inner.metrics.delay.set(v);
        (d.setting, v)
    }

    pub fn set_delay(&self, delay: Delay) {
        let mut d = relock(&self.inner.delay);
        d.set(delay);
        self.inner.metrics.delay.set(d.value);
    }

    pub fn tunables(&self) -> Tunables {
        *relock(&self.inner.tunables)
    }

    pub fn set_tunables(&self, t: Tunables) {
        *relock(&self.inner.tunables) = t;
    }

    /// Where TCP and UDP are served (`None` when not, or not yet).
    pub fn addresses(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        (*relock(&self.inner.tcp_addr), *relock(&self.inner.udp_addr))
    }

    /// The open TCP connections, oldest first.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        relock(&self.inner.conns)
            .values()
            .map(|c| ConnectionInfo {
                key: connection_key(c.peer),
                peer: c.peer,
                local: c.local,
                received: c.received.load(Ordering::Relaxed),
                sent: c.sent.load(Ordering::Relaxed),
                requests: c.requests.load(Ordering::Relaxed),
                eof: c.eof.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Close the connection with cpppo key `key`; false if there is none.
    pub fn close_connection(&self, key: &str) -> bool {
        let conns = relock(&self.inner.conns);
        let mut found = false;
        for c in conns.values().filter(|c| connection_key(c.peer) == key) {
            c.close();
            found = true;
        }
        found
    }

    /// Close every TCP connection.
    pub fn close_all(&self) {
        for c in relock(&self.inner.conns).values() {
            c.close();
        }
    }

    /// Wait (up to `max`) until no connection told to close is still open.
    pub async fn closed(&self, max: Duration) {
        let until = Instant::now() + max;
        while Instant::now() < until
            && relock(&self.inner.conns)
                .values()
                .any(|c| c.eof.load(Ordering::Relaxed))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Disable (close the listener and every connection; UDP stops answering) or
    /// re-enable (listen again on the same address).
    pub fn set_disabled(&self, disabled: bool) {
        self.inner.control.send_modify(|c| c.disabled = disabled);
    }

    pub fn is_disabled(&self) -> bool {
        self.inner.control.borrow().disabled
    }

    /// Stop: [`Server::run`], [`Server::run_udp`] and the web listener return.
    pub fn set_done(&self) {
        self.inner.control.send_modify(|c| c.done = true);
    }

    pub fn is_done(&self) -> bool {
        self.inner.control.borrow().done
    }

    /// Resolves once [`Server::set_done`] is called.
    pub async fn done(&self) {
        let mut rx = self.inner.control.subscribe();
        let _ = rx.wait_for(|c| c.done).await;
    }

    /// Serve TCP on `listener` until `shutdown` resolves or the server is done; then
    /// close every connection and wait (briefly) for their tasks.
    pub async fn run(&self, listener: TcpListener, shutdown: impl Future) -> io::Result<()> {
        let addr = listener.local_addr()?;
        *relock(&self.inner.tcp_addr) = Some(addr);
        let mut listener = Some(listener);
        let mut control = self.inner.control.subscribe();
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let c = *control.borrow_and_update();
            if c.done {
                break;
            }
            let mut retry = false;
            if c.disabled {
                if listener.take().is_some() {
                    tracing::info!(%addr, "disabled: listener and connections closed");
                    self.close_all();
                }
            } else if listener.is_none() {
                match TcpListener::bind(addr).await {
                    Ok(l) => {
                        tracing::info!(%addr, "enabled: listening again");
                        listener = Some(l);
                    }
                    Err(e) => {
                        tracing::warn!(%addr, %e, "cannot listen again; retrying");
                        retry = true;
                    }
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                r = control.changed() => if r.is_err() { break },
                Some(r) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = r {
                        tracing::error!(%e, "a connection task failed");
                    }
                }
                () = tokio::time::sleep(Duration::from_secs(1)), if retry => {}
                a = accept(listener.as_ref()) => match a {
                    Ok((stream, peer)) => self.admit(&mut tasks, stream, peer),
                    Err(e) => {
                        tracing::warn!(%e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        self.close_all();
        let _ =
            tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
        Ok(())
    }

    /// Serve one accepted connection, or close it at once when the limit is reached.
    fn admit(&self, tasks: &mut JoinSet<()>, stream: TcpStream, peer: SocketAddr) {
        let m = &self.inner.metrics;
        let Ok(permit) = self.inner.limit.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection refused: limit reached");
            m.tcp_refused.with_label_values(&["limit"]).inc();
            drop(stream);
            return;
        };
        let Ok(local) = stream.local_addr() else {
            return;
        };
        let conn = Arc::new(Conn {
            peer,
            local,
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            eof: AtomicBool::new(false),
            kill: Notify::new(),
        });
        let id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        relock(&self.inner.conns).insert(id, conn.clone());
        m.tcp_accepted.inc();
        m.tcp_open.inc();
        let registered = Registered {
            server: self.clone(),
            id,
        };
        let span = tracing::info_span!("connection", %peer);
        tasks.spawn(
            async move {
                let why = registered.server.serve(stream, &conn, permit).await;
                tracing::debug!(reason = why.label(), "connection closed");
                registered.server.inner.metrics.closed(why);
            }
            .instrument(span),
        );
    }

    /// Serve one TCP connection outside any accept loop (limits and registry apply).
    pub async fn serve_stream(&self, stream: TcpStream) {
        let Ok(peer) = stream.peer_addr() else {
            return;
        };
        let mut tasks = JoinSet::new();
        self.admit(&mut tasks, stream, peer);
        while tasks.join_next().await.is_some() {}
    }

    async fn serve(
        &self,
        mut stream: TcpStream,
        conn: &Conn,
        _permit: OwnedSemaphorePermit,
    ) -> CloseReason {
        let mut session = Session {
            clock: self.inner.options.clock,
            ..Session::default()
        };
        let why = self.serve_frames(&mut stream, conn, &mut session).await;
        if session.registered().is_some() {
            self.inner.metrics.sessions.dec();
        }
        session.end(&self.inner.ctrl);
        why
    }

    async fn serve_frames(
        &self,
        stream: &mut TcpStream,
        conn: &Conn,
        session: &mut Session,
    ) -> CloseReason {
        let _ = stream.set_nodelay(true);
        let opts = &self.inner.options;
        let mut buf = vec![0u8; READ_BUFFER];
        let mut pending: Vec<u8> = Vec::new();
        let mut out: Vec<u8> = Vec::with_capacity(4096);
        loop {
            let read = async {
                match opts.idle_timeout {
                    Some(t) => tokio::time::timeout(t, stream.read(&mut buf)).await.ok(),
                    None => Some(stream.read(&mut buf).await),
                }
            };
            let n = tokio::select! {
                r = read => match r {
                    None => return CloseReason::Idle,
                    Some(Ok(0)) => return CloseReason::Eof,
                    Some(Err(_)) => return CloseReason::Error,
                    Some(Ok(n)) => n,
                },
                () = conn.killed() => return CloseReason::Killed,
            };
            conn.received.fetch_add(n as u64, Ordering::Relaxed);
            self.inner.metrics.bytes("tcp", n, 0);
            pending.extend_from_slice(buf.get(..n).unwrap_or_default());
            let mut at = 0;
            loop {
                let rest = pending.get(at..).unwrap_or_default();
                let len = match frame_len(rest, MAX_BODY) {
                    Ok(Some(len)) => len,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(%e, "closing: declared length too long");
                        self.inner.metrics.encap_error("too_long");
                        let _ = self.write(stream, conn, &mut out).await;
                        return CloseReason::TooLong;
                    }
                };
                let frame = rest.get(..len).unwrap_or_default();
                at += len;
                let started = Instant::now();
                let (next, command) = self.frame(frame, conn, session, &mut out);
                let delay = self.delay().1;
                if delay > 0.0 && !out.is_empty() {
                    let sleep = tokio::time::sleep(Duration::from_secs_f64(delay));
                    tokio::select! {
                        () = sleep => {}
                        () = conn.killed() => return CloseReason::Killed,
                    }
                }
                self.inner
                    .metrics
                    .observe_duration(command, started.elapsed().as_secs_f64());
                if delay > 0.0 || out.len() >= FLUSH_AT || next != Ok(Next::Continue) {
                    if let Err(why) = self.write(stream, conn, &mut out).await {
                        return why;
                    }
                }
                match next {
                    Ok(Next::Continue) => {}
                    Ok(Next::Close) => return CloseReason::Unregistered,
                    Err(why) => return why,
                }
            }
            pending.drain(..at.min(pending.len()));
            if let Err(why) = self.write(stream, conn, &mut out).await {
                return why;
            }
        }
    }

    /// Handle one whole frame, appending its reply to `out`.
    fn frame(
        &self,
        frame: &[u8],
        conn: &Conn,
        session: &mut Session,
        out: &mut Vec<u8>,
    ) -> (Result<Next, CloseReason>, enip_proto::Command) {
        let m = &self.inner.metrics;
        conn.requests.fetch_add(1, Ordering::Relaxed);
        // A whole frame always holds a header.
        let Ok(header) = Header::decode(&mut Reader::new(frame)) else {
            return (Err(CloseReason::Error), enip_proto::Command::Nop);
        };
        m.encap_request(header.command);
        let start = out.len();
        if self
            .inner
            .options
            .size
            .is_some_and(|max| usize::from(header.length) > max)
        {
            // cpppo: "exceeds specified size limit", status 0x65, session ended.
            bare_reply(&header, EncapStatus::InvalidLength, out);
            m.encap_replies(out.get(start..).unwrap_or_default());
            return (Err(CloseReason::SizeLimit), header.command);
        }
        let next = match Encapsulation::decode(frame) {
            Ok(e) => {
                let before = session.registered().is_some();
                let next =
                    session.handle_observed(&e, &self.inner.ctrl, conn.local, out, &mut |q, r| {
                        m.observe_cip(q, r)
                    });
                if !before && session.registered().is_some() {
                    m.sessions.inc();
                }
                next
            }
            Err(e) => {
                tracing::debug!(%e, "incorrect data in a whole frame");
                bare_reply(&header, EncapStatus::IncorrectData, out);
                Next::Continue
            }
        };
        m.encap_replies(out.get(start..).unwrap_or_default());
        (Ok(next), header.command)
    }

    /// Write and clear `out`, within the write timeout.
    async fn write(
        &self,
        stream: &mut TcpStream,
        conn: &Conn,
        out: &mut Vec<u8>,
    ) -> Result<(), CloseReason> {
        if out.is_empty() {
            return Ok(());
        }
        let n = out.len();
        let w = tokio::time::timeout(self.inner.options.write_timeout, stream.write_all(out));
        let r = tokio::select! {
            r = w => match r {
                Err(_) => Err(CloseReason::WriteTimeout),
                Ok(Err(_)) => Err(CloseReason::Error),
                Ok(Ok(())) => Ok(()),
            },
            () = conn.killed() => Err(CloseReason::Killed),
        };
        out.clear();
        if r.is_ok() {
            conn.sent.fetch_add(n as u64, Ordering::Relaxed);
            self.inner.metrics.bytes("tcp", 0, n);
        }
        r
    }

    /// Answer List* requests over UDP (anything else: status 0x0001) until `shutdown`
    /// resolves or the server is done. Nothing is answered while disabled.
    pub async fn run_udp(&self, sock: UdpSocket, shutdown: impl Future) -> io::Result<()> {
        let local = sock.local_addr()?;
        *relock(&self.inner.udp_addr) = Some(local);
        let mut control = self.inner.control.subscribe();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut buf = vec![0u8; 1500];
        let m = &self.inner.metrics;
        loop {
            if control.borrow_and_update().done {
                return Ok(());
            }
            let (n, peer) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                r = control.changed() => {
                    if r.is_err() { return Ok(()) }
                    continue;
                }
                r = sock.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(_) => continue,
                },
            };
            m.bytes("udp", n, 0);
            if control.borrow().disabled {
                continue;
            }
            let Ok(frame) = Encapsulation::decode(buf.get(..n).unwrap_or_default()) else {
                m.encap_error("malformed_udp");
                continue;
            };
            m.encap_request(frame.header.command);
            let mut out = Vec::new();
            if frame.header.command.allowed_on_udp() {
                // Bound to every interface, the socket does not say which one the
                // request came in on; the one this host would answer from is the one a
                // client can reach (and what a controller puts in ListIdentity).
                let at = match local.ip().is_unspecified() {
                    true => {
                        local_toward(peer).map_or(local, |ip| SocketAddr::new(ip, local.port()))
                    }
                    false => local,
                };
                list_reply(&frame.header, &self.inner.ctrl, at, &mut out);
            } else {
                bare_reply(&frame.header, EncapStatus::InvalidCommand, &mut out);
                m.encap_replies(&out);
            }
            if sock.send_to(&out, peer).await.is_ok() {
                m.bytes("udp", 0, out.len());
            }
        }
    }
}

/// A connection's place in the registry and the open-connections gauge, given back
/// however its task ends.
struct Registered {
    server: Server,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        relock(&self.server.inner.conns).remove(&self.id);
        self.server.inner.metrics.tcp_open.dec();
    }
}

/// `accept` on the listener, or never when there is none (disabled).
async fn accept(l: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// A reply that is only a header: the request's command, session and context.
fn bare_reply(h: &Header, status: EncapStatus, out: &mut Vec<u8>) {
    let e = Encapsulation {
        header: h.reply(status),
        body: Body::Raw(&[]),
    };
    let _ = e.encode(out);
}

/// The address this host would send to `peer` from: a UDP socket connected to it learns
/// that from the routing table, without sending a packet.
fn local_toward(peer: SocketAddr) -> Option<std::net::IpAddr> {
    let any: SocketAddr = match peer {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(peer).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}
