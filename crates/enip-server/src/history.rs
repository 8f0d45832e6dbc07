//! Tag history: `--history FILE` records every tag read and write in cpppo's line format,
//! and `--replay FILE` plays a recording (or a CSV of timestamped values) back into the
//! tags.
//!
//! A record is one line, tab-separated, exactly as cpppo's `history.logger` writes it:
//!
//! ```text
//! 2026-11-24 19:50:01.123<TAB>["SCADA", [2, 4]]<TAB>{"read": [0, 7, 0]}
//! ```
//!
//! The time is UTC (cpppo's convention, stated in the file's first comment line), so a
//! file means the same everywhere; people are shown local time with the zone's
//! abbreviation. `#` lines are comments. When a file passes its size limit it is
//! gzipped to `FILE.1.gz` (older ones shift to `.2.gz`, …) and a fresh file is started.
//! Records pass to the writer thread through a bounded queue, and a full queue makes the
//! server wait rather than drop a record: nothing recorded is lost.
//!
//! A file that cannot be written (a full disk) never ends the recording and never loses a
//! record silently: the batch that failed is cut off the file again (so it only ever
//! holds whole lines), its records are counted as lost ([`HistoryStats`], and
//! `enip_history_records_lost_total` on /metrics), the failure is logged when it starts,
//! and when writing works again the file itself gets a `#` line saying how many records
//! were lost and why.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use enip_device::Literal;

/// One read or write of a run of elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// µs since 1970 UTC.
    pub at_us: u64,
    pub tag: String,
    pub first: usize,
    pub last: usize,
    pub write: bool,
    pub values: Vec<Literal>,
}

/// A history or CSV file that does not parse: which file, which line, and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC, as cpppo stores times.
pub fn format_utc(at_us: u64) -> String {
    let ts = jiff::Timestamp::from_microsecond(at_us as i64).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// `YYYY-MM-DD HH:MM:SS.mmm ZONE` in the local time zone, for people.
pub fn format_local(at_us: u64) -> String {
    let ts = jiff::Timestamp::from_microsecond(at_us as i64).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S%.3f %Z")
        .to_string()
}

/// A time as a history or CSV file may give it: cpppo's `YYYY-MM-DD HH:MM:SS[.fff]`
/// (UTC unless a zone follows: `Z`, `UTC`, `+01:00`), RFC 3339, or Unix seconds.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad =
        || format!("`{t}` is not a time (expected e.g. 2026-11-24 19:50:01.123 or 1700000000.5)");
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok((secs * 1e6).round() as u64);
        }
        return Err(bad());
    }
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return u64::try_from(ts.as_microsecond()).map_err(|_| bad());
    }
    let plain = t
        .strip_suffix(" UTC")
        .or_else(|| t.strip_suffix('Z'))
        .unwrap_or(t)
        .replace(' ', "T");
    let civil: jiff::civil::DateTime = plain.parse().map_err(|_| bad())?;
    let ts = civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|_| bad())?
        .timestamp();
    u64::try_from(ts.as_microsecond()).map_err(|_| bad())
}

fn json_value(v: &Literal) -> String {
    match v {
        Literal::Bool(b) => b.to_string(),
        Literal::Int(i) => i.to_string(),
        // As Python's json.dumps writes them.
        Literal::Float(x) if x.is_nan() => "NaN".into(),
        Literal::Float(x) if x.is_infinite() => {
            if *x > 0.0 { "Infinity" } else { "-Infinity" }.into()
        }
        Literal::Float(x) if x.fract() == 0.0 && x.abs() < 1e16 => format!("{x:.1}"),
        Literal::Float(x) => x.to_string(),
        Literal::Text(s) => serde_json::Value::String(s.clone()).to_string(),
    }
}

/// `[1, 2, 3]`, as cpppo prints values.
pub fn list(values: &[Literal]) -> String {
    let items: Vec<String> = values.iter().map(json_value).collect();
    format!("[{}]", items.join(", "))
}

impl Record {
    /// The record as one history line (with its newline).
    pub fn to_line(&self) -> String {
        format!(
            "{}\t[{}, [{}, {}]]\t{{\"{}\": {}}}\n",
            format_utc(self.at_us),
            serde_json::Value::String(self.tag.clone()),
            self.first,
            self.last,
            if self.write { "write" } else { "read" },
            list(&self.values)
        )
    }

    /// cpppo's `--print` line: `                Tag[    2-4    ] <= [0, 7, 0]`.
    pub fn to_print_line(&self) -> String {
        format!(
            "{:>20}[{:>5}-{:<5}] {} {}",
            self.tag,
            self.first,
            self.last,
            if self.write { "<=" } else { "==" },
            list(&self.values)
        )
    }
}

fn literal(v: &serde_json::Value) -> Result<Literal, String> {
    Ok(match v {
        serde_json::Value::Bool(b) => Literal::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) if !n.is_f64() => Literal::Int(i.into()),
            (_, Some(u), _) if !n.is_f64() => Literal::Int(u.into()),
            (_, _, Some(x)) => Literal::Float(x),
            _ => return Err(format!("number {n} out of range")),
        },
        serde_json::Value::String(s) => match s.as_str() {
            // Python's non-finite floats, quoted on the way in (see parse_line).
            "\u{0}NaN" => Literal::Float(f64::NAN),
            "\u{0}Infinity" => Literal::Float(f64::INFINITY),
            "\u{0}-Infinity" => Literal::Float(f64::NEG_INFINITY),
            _ => Literal::Text(s.clone()),
        },
        other => return Err(format!("{other} is not a tag value")),
    })
}

/// Parse one history line; `Ok(None)` for a blank or comment line.
pub fn parse_line(line: &str) -> Result<Option<Record>, String> {
    let l = line.trim_start();
    if l.is_empty() || l.starts_with('#') {
        return Ok(None);
    }
    let mut parts = l.trim_end_matches(['\n', '\r']).splitn(3, '\t');
    let (Some(time), Some(serial), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(
            "expected TIME<tab>[\"Tag\", [first, last]]<tab>{\"read\"|\"write\": [...]}".into(),
        );
    };
    let at_us = parse_time(time)?;
    let (tag, (first, last)): (String, (usize, usize)) = serde_json::from_str(serial)
        .map_err(|e| format!("bad [\"Tag\", [first, last]] `{serial}`: {e}"))?;
    let data = quote_non_finite(data);
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&data)
        .map_err(|e| format!("bad {{\"read\"|\"write\": [...]}}: {e}"))?;
    let (kind, values) = map
        .iter()
        .next()
        .ok_or("empty {\"read\"|\"write\": [...]}")?;
    let write = match kind.as_str() {
        "write" => true,
        "read" => false,
        k => return Err(format!("`{k}` is neither read nor write")),
    };
    let values = match values {
        serde_json::Value::Array(a) => a.iter().map(literal).collect::<Result<Vec<_>, _>>()?,
        one => vec![literal(one)?],
    };
    Ok(Some(Record {
        at_us,
        tag,
        first,
        last,
        write,
        values,
    }))
}

/// Python's json.dumps writes non-finite floats as bare NaN, Infinity and -Infinity,
/// which JSON lacks: quote them (outside strings) with a marker `literal` recognises.
fn quote_non_finite(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = data;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
            continue;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        match token {
            Some(t) => {
                out.push_str(&format!("\"\\u0000{t}\""));
                rest = rest.get(t.len()..).unwrap_or_default();
            }
            None => {
                in_string = c == '"';
                out.push(c);
                rest = rest.get(c.len_utf8()..).unwrap_or_default();
            }
        }
    }
    out
}

fn open_text(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let f = File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            f,
        ))))
    } else {
        Ok(Box::new(BufReader::new(f)))
    }
}

/// Load a history file (plain or `.gz`), or a CSV (`.csv`, `.csv.gz`), in time order.
pub fn load(path: &Path) -> Result<Vec<Record>, ParseError> {
    let file = path.display().to_string();
    let err = |line, message| ParseError {
        file: file.clone(),
        line,
        message,
    };
    let reader = open_text(path).map_err(|e| err(0, format!("cannot read: {e}")))?;
    let name = path.to_string_lossy().to_ascii_lowercase();
    let csv = name.ends_with(".csv") || name.ends_with(".csv.gz");
    let mut records = Vec::new();
    let mut header: Option<Vec<(String, usize)>> = None;
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| err(n + 1, format!("cannot read: {e}")))?;
        if csv {
            csv_line(&line, &mut header, &mut records).map_err(|m| err(n + 1, m))?;
        } else if let Some(r) = parse_line(&line).map_err(|m| err(n + 1, m))? {
            records.push(r);
        }
    }
    // Stable: records at the same time keep their file order.
    records.sort_by_key(|r| r.at_us);
    Ok(records)
}

/// A CSV: a header `time,Tag,Other[3],...`, then rows of a time and values; an empty
/// cell leaves that tag alone.
fn csv_line(
    line: &str,
    header: &mut Option<Vec<(String, usize)>>,
    out: &mut Vec<Record>,
) -> Result<(), String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(());
    }
    let cells: Vec<&str> = t.split(',').map(str::trim).collect();
    let Some(columns) = header else {
        let mut cols = Vec::new();
        for c in cells.iter().skip(1) {
            let (tag, index) = match c.split_once('[') {
                Some((tag, rest)) => {
                    let i = rest
                        .strip_suffix(']')
                        .and_then(|i| i.parse().ok())
                        .ok_or_else(|| format!("bad column `{c}` (expected Tag or Tag[index])"))?;
                    (tag.to_owned(), i)
                }
                None => ((*c).to_owned(), 0),
            };
            if tag.is_empty() {
                return Err("an empty column name".into());
            }
            cols.push((tag, index));
        }
        if cols.is_empty() {
            return Err("the header needs a time column and at least one tag".into());
        }
        *header = Some(cols);
        return Ok(());
    };
    if cells.len() != columns.len() + 1 {
        return Err(format!(
            "{} cells, but the header has {}",
            cells.len(),
            columns.len() + 1
        ));
    }
    let at_us = parse_time(cells.first().copied().unwrap_or_default())?;
    for ((tag, index), cell) in columns.iter().zip(cells.iter().skip(1)) {
        if cell.is_empty() {
            continue;
        }
        let value = match cell.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
            Some(text) => Literal::Text(text.to_owned()),
            None => Literal::parse(cell),
        };
        out.push(Record {
            at_us,
            tag: tag.clone(),
            first: *index,
            last: *index,
            write: true,
            values: vec![value],
        });
    }
    Ok(())
}

/// When to start a new file, and how many old ones to keep.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            keep: 10,
        }
    }
}

enum Msg {
    Line(String),
    Flush(SyncSender<()>),
}

/// What the writer did: records on disk, records lost (with an error logged), failures.
/// The counters are Prometheus ones, so a server can register them on its /metrics.
#[derive(Debug, Clone)]
pub struct HistoryStats {
    pub written: prometheus::IntCounter,
    pub lost: prometheus::IntCounter,
    pub errors: prometheus::IntCounter,
}

impl HistoryStats {
    pub fn new() -> prometheus::Result<Self> {
        Ok(Self {
            written: prometheus::IntCounter::new(
                "enip_history_records_total",
                "Tag reads and writes written to the --history file",
            )?,
            lost: prometheus::IntCounter::new(
                "enip_history_records_lost_total",
                "History records that could not be written (each loss is logged)",
            )?,
            errors: prometheus::IntCounter::new(
                "enip_history_write_errors_total",
                "Failed writes (or rotations) of the --history file",
            )?,
        })
    }

    /// Put the counters on `registry` (e.g. the server's /metrics).
    pub fn register(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.written.clone()))?;
        registry.register(Box::new(self.lost.clone()))?;
        registry.register(Box::new(self.errors.clone()))
    }
}

/// The history file's writer: a thread fed through a bounded queue.
#[derive(Debug)]
pub struct HistoryWriter {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<HistoryStats>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl HistoryWriter {
    /// Open (append to) `path`; the header comment is written at once.
    pub fn open(path: &Path, rotation: Rotation, now_us: u64) -> io::Result<Self> {
        let stats = HistoryStats::new().map_err(io::Error::other)?;
        Self::open_with(path, rotation, now_us, stats)
    }

    /// [`Self::open`], counting into `stats`.
    pub fn open_with(
        path: &Path,
        rotation: Rotation,
        now_us: u64,
        stats: HistoryStats,
    ) -> io::Result<Self> {
        let stats = Arc::new(stats);
        let mut file = Sink::open(path, rotation, stats.clone())?;
        file.buf.extend_from_slice(
            format!(
                "# {}: enip-server started recording ({} local); times are UTC\n",
                format_utc(now_us),
                format_local(now_us)
            )
            .as_bytes(),
        );
        // The file must be writable now; later failures are survived and counted.
        file.commit()?;
        let (tx, rx) = sync_channel::<Msg>(65_536);
        let thread = std::thread::Builder::new()
            .name("history".into())
            .spawn(move || file.run(rx))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        })
    }

    /// Queue records; waits while the queue is full (never drops one).
    pub fn write(&self, records: &[Record]) {
        if let Some(tx) = &self.tx {
            for r in records {
                if tx.send(Msg::Line(r.to_line())).is_err() {
                    // The writer is gone (it cannot be, short of a panic): say so.
                    self.stats.lost.inc();
                }
            }
        }
    }

    /// Wait until everything queued so far is on disk (or counted as lost).
    pub fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done_tx, done_rx) = sync_channel(1);
            if tx.send(Msg::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv_timeout(Duration::from_secs(30));
            }
        }
    }

    pub fn stats(&self) -> &HistoryStats {
        &self.stats
    }
}

impl Drop for HistoryWriter {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Lines gathered before they are written in one go.
const BATCH_BYTES: usize = 64 * 1024;

struct Sink {
    path: PathBuf,
    rotation: Rotation,
    out: File,
    /// Bytes of whole lines on disk.
    size: u64,
    /// Lines not yet written, and how many of them are records (not `#` lines).
    buf: Vec<u8>,
    pending: u64,
    stats: Arc<HistoryStats>,
    /// Since when writing fails, why, and how many records were lost since.
    failing: Option<(u64, String, u64)>,
    /// The rotation failed: retry after this size.
    rotate_after: u64,
}

impl Sink {
    fn open(path: &Path, rotation: Rotation, stats: Arc<HistoryStats>) -> io::Result<Self> {
        let out = OpenOptions::new().create(true).append(true).open(path)?;
        let size = out.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            rotation,
            out,
            size,
            buf: Vec::with_capacity(BATCH_BYTES),
            pending: 0,
            stats,
            failing: None,
            rotate_after: 0,
        })
    }

    /// Write the gathered lines; on failure cut the file back to whole lines and return
    /// the error (the caller counts the loss).
    fn commit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        match self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush())
        {
            Ok(()) => {
                self.size += self.buf.len() as u64;
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                // Whatever part of the batch made it is cut off again.
                let _ = self.out.set_len(self.size);
                Err(e)
            }
        }
    }

    /// Write what was gathered, counting it as written or as lost.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.pending);
        if let Some((since, why, lost)) = &self.failing {
            // If writing works again, the file says first what was lost.
            let note = format!(
                "# {}: {lost} record(s) lost since {} ({why})\n",
                format_utc(crate::now_us()),
                format_utc(*since)
            );
            self.buf.splice(0..0, note.into_bytes());
        }
        match self.commit() {
            Ok(()) => {
                if let Some((_, why, lost)) = self.failing.take() {
                    eprintln!(
                        "enip-server: history {}: writing again; {lost} record(s) were lost ({why})",
                        self.path.display()
                    );
                }
                self.stats.written.inc_by(records);
                self.maybe_rotate();
            }
            Err(e) => {
                self.buf.clear();
                self.stats.errors.inc();
                self.stats.lost.inc_by(records);
                match &mut self.failing {
                    Some((_, _, lost)) => *lost += records,
                    None => {
                        eprintln!(
                            "enip-server: history {}: {e}; records are being lost ({records} so \
                             far) and counted in enip_history_records_lost_total; writing is \
                             retried",
                            self.path.display()
                        );
                        self.failing = Some((crate::now_us(), e.to_string(), records));
                    }
                }
            }
        }
    }

    fn maybe_rotate(&mut self) {
        if self.size < self.rotation.max_bytes || self.size < self.rotate_after {
            return;
        }
        if let Err(e) = self.rotate() {
            self.stats.errors.inc();
            // Keep writing to the current file; try again after another tenth of the limit.
            self.rotate_after = self.size + (self.rotation.max_bytes / 10).max(4096);
            eprintln!(
                "enip-server: history {}: cannot rotate: {e}; still writing to it",
                self.path.display()
            );
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Line(l) => {
                self.buf.extend_from_slice(l.as_bytes());
                self.pending += 1;
                let due = self.size + self.buf.len() as u64 >= self.rotation.max_bytes
                    && self.size + self.buf.len() as u64 >= self.rotate_after;
                if self.buf.len() >= BATCH_BYTES || due {
                    self.flush();
                }
            }
            Msg::Flush(done) => {
                self.flush();
                let _ = done.send(());
            }
        }
    }

    fn run(mut self, rx: Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            self.handle(msg);
            while let Ok(m) = rx.try_recv() {
                self.handle(m);
            }
            // The queue ran dry: write, so the file is current whenever we are idle.
            self.flush();
        }
        self.flush();
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.as_os_str().to_owned();
        p.push(format!(".{n}.gz"));
        PathBuf::from(p)
    }

    /// FILE → FILE.1.gz, FILE.1.gz → FILE.2.gz, …, dropping the oldest past `keep`.
    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.rotation.keep.max(1);
        let tmp = {
            let mut p = self.path.as_os_str().to_owned();
            p.push(".1.gz.tmp");
            PathBuf::from(p)
        };
        // Compress first: if that fails (a full disk) nothing has moved yet.
        let gz = (|| -> io::Result<()> {
            let mut src = File::open(&self.path)?;
            let mut gz =
                flate2::write::GzEncoder::new(File::create(&tmp)?, flate2::Compression::default());
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                gz.write_all(buf.get(..n).unwrap_or_default())?;
            }
            gz.finish()?.sync_all()
        })();
        if let Err(e) = gz {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let _ = fs::remove_file(self.rotated(keep));
        for n in (1..keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        fs::rename(&tmp, self.rotated(1))?;
        self.out = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.size = 0;
        self.rotate_after = 0;
        Ok(())
    }
}

/// Drain the controller's journal into records (tag names and values resolved).
pub fn drain(c: &mut enip_device::Controller) -> Vec<Record> {
    let journal = c.take_journal();
    journal
        .into_iter()
        .filter_map(|a| {
            let tag = c.tags.get(a.tag)?;
            let size = a.elem.size().max(1);
            let count = (a.len / size).max(1);
            let (name, first) = match a.member {
                Some((path, first)) => (path, first),
                None => (tag.name.clone(), a.offset / size),
            };
            let values = match (a.bit, a.data.first()) {
                (Some(bit), Some(byte)) => vec![Literal::Bool(byte >> bit & 1 == 1)],
                _ => enip_device::literals(a.elem, &a.data),
            };
            Some(Record {
                at_us: a.at_us,
                tag: name,
                first,
                last: first + count - 1,
                write: a.write,
                values,
            })
        })
        .collect()
}

/// Play `records` into the tags in real time scaled by `speed` (2.0 is twice as fast),
/// from the first record's time; again and again with `looped`. A record for a tag the
/// controller lacks, or a value that does not fit, is reported once and skipped.
pub async fn replay(ctrl: crate::Shared, records: Vec<Record>, speed: f64, looped: bool) {
    let Some(t0) = records.first().map(|r| r.at_us) else {
        return;
    };
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    let mut reported = std::collections::HashSet::new();
    loop {
        let start = tokio::time::Instant::now();
        tracing::info!(from = %format_local(t0), records = records.len(), speed, "replaying");
        for r in &records {
            let due = Duration::from_secs_f64((r.at_us - t0) as f64 / 1e6 / speed);
            tokio::time::sleep_until(start + due).await;
            let result = crate::lock(&ctrl).set_values(&r.tag, r.first, &r.values);
            if let Err(e) = result {
                if reported.insert(r.tag.to_ascii_lowercase()) {
                    eprintln!(
                        "enip-server: replay at {}: {e} (further errors for this tag not shown)",
                        format_local(r.at_us)
                    );
                }
            }
        }
        if !looped {
            break;
        }
        // The next pass starts one average gap after the last record, so the last
        // values hold as long as the others did (a single record holds for a second).
        let span = records.last().map_or(0, |r| r.at_us - t0);
        let gap = match records.len() {
            0 | 1 => 1_000_000,
            n => span / (n as u64 - 1),
        };
        let period = Duration::from_secs_f64((span + gap.max(1_000)) as f64 / 1e6 / speed);
        tokio::time::sleep_until(start + period).await;
    }
    tracing::info!("replay finished");
}
