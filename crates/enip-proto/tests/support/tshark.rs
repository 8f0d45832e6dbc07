//! Test support: check EtherNet/IP encapsulation frames with Wireshark's `tshark`.
//!
//! [`dissect`] writes the frames into a classic pcap file (hand-written, Ethernet link
//! type, correct IPv4/TCP/UDP checksums), runs `tshark` over it and reports, per frame,
//! Wireshark's "Malformed" markers and expert infos of severity *error*.
//!
//! * TCP frames form one clean TCP conversation `127.0.0.1:50000 <-> 127.0.0.1:44818`:
//!   a 3-way handshake first, then one PSH|ACK segment per encapsulation frame with
//!   correct sequence/ack numbers in both directions (a pure ACK from the peer is inserted
//!   when one side sends twice in a row), so TCP reassembly and ENIP/CIP request/response
//!   matching work.
//! * UDP frames go `127.0.0.1:50001 <-> 127.0.0.1:44818`, one datagram each.
//!
//! Only std is used, so the file can be included from any integration test with
//! `#[path = "support/tshark.rs"] mod tshark;`.

// Each integration test is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Transport an encapsulation frame travels over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// One complete EtherNet/IP encapsulation frame (24-byte header + body) to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    /// Free text naming the frame in reports.
    pub label: String,
    /// `true`: client (ephemeral port) -> server (44818); `false`: the reverse.
    pub from_client: bool,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

impl WireFrame {
    /// A TCP frame.
    pub fn tcp(label: impl Into<String>, from_client: bool, bytes: Vec<u8>) -> Self {
        Self {
            label: label.into(),
            from_client,
            transport: Transport::Tcp,
            bytes,
        }
    }

    /// A UDP frame.
    pub fn udp(label: impl Into<String>, from_client: bool, bytes: Vec<u8>) -> Self {
        Self {
            label: label.into(),
            from_client,
            transport: Transport::Udp,
            bytes,
        }
    }
}

/// What Wireshark made of one [`WireFrame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameVerdict {
    /// The frame's label.
    pub label: String,
    /// "Malformed ..." markers and expert infos of severity error; empty when clean.
    pub problems: Vec<String>,
    /// tshark's Info column for the frame, followed by ` [warning: ...]` for each expert
    /// info of severity warning.
    pub summary: String,
}

impl FrameVerdict {
    /// No problems found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// TCP/UDP port of the EtherNet/IP encapsulation service.
pub const ENIP_PORT: u16 = 44818;
/// Client port of the synthetic TCP conversation.
pub const CLIENT_TCP_PORT: u16 = 50000;
/// Client port of the synthetic UDP datagrams.
pub const CLIENT_UDP_PORT: u16 = 50001;

/// Field separator for `tshark -T fields` (ASCII unit separator: never in Info or messages).
const SEP: char = '\u{1f}';
/// Separator between occurrences of one field (ASCII record separator).
const AGG: char = '\u{1e}';

/// `-e` fields, in output order; the Info column field comes last (see [`INFO_FIELDS`]).
const FIELDS: [&str; 4] = [
    "frame.number",
    "_ws.malformed",
    "_ws.expert.severity",
    "_ws.expert.message",
];

/// The Info column as a field: `_ws.col.Info` up to Wireshark 4.0, `_ws.col.info` from 4.2.
/// [`dissect`] tries them in this order (tshark rejects unknown fields with
/// "Some fields aren't valid") and remembers the first that works.
const INFO_FIELDS: [&str; 2] = ["_ws.col.Info", "_ws.col.info"];
/// Index into [`INFO_FIELDS`] of the name that worked last time.
static INFO_FIELD: AtomicUsize = AtomicUsize::new(0);

/// Wireshark's expert severity values (`PI_ERROR`, `PI_WARN`), as printed by `-T fields`.
const SEVERITY_ERROR: u64 = 0x0080_0000;
const SEVERITY_WARN: u64 = 0x0060_0000;

/// `Ok(())` if `tshark` can be run; `Err` says why not.
pub fn tshark_available() -> Result<(), String> {
    match tshark_command().arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`tshark --version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "tshark is not installed ({:?} not found; `apt-get install tshark`, or set \
             TSHARK=/path/to/tshark)",
            tshark_program()
        )),
        Err(e) => Err(format!("cannot run tshark: {e}")),
    }
}

/// For tests: `Ok(true)` if tshark is available; `Ok(false)` (after printing why) if it is
/// missing and the test should be skipped; `Err` if it is missing while env `CI=true`.
pub fn tshark_or_skip(test: &str) -> Result<bool, String> {
    match tshark_available() {
        Ok(()) => Ok(true),
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
                Err(format!("{test}: tshark is required when CI=true: {why}"))
            } else {
                eprintln!("SKIPPED {test}: {why}");
                Ok(false)
            }
        }
    }
}

/// Dissect `frames` with tshark; one verdict per frame, in order.
pub fn dissect(frames: &[WireFrame]) -> Result<Vec<FrameVerdict>, String> {
    let capture = build_capture(frames)?;
    let dir = TempDir::new()?;
    let pcap_path = dir.path().join("frames.pcap");
    std::fs::write(&pcap_path, &capture.pcap)
        .map_err(|e| format!("cannot write {}: {e}", pcap_path.display()))?;

    // With ENIP reassembly on, a TCP frame whose length field disagrees with its size makes
    // Wireshark wait for / carry over bytes and swallow the following frames. Only in that
    // case, dissect each segment on its own (request/response matching still works).
    let desegment = frames
        .iter()
        .all(|f| f.transport != Transport::Tcp || length_field_problem(&f.bytes).is_none());
    let (stdout, stderr) = run_tshark(&pcap_path, dir.path(), desegment)?;

    let mut verdicts: Vec<FrameVerdict> = frames
        .iter()
        .map(|f| FrameVerdict {
            label: f.label.clone(),
            problems: Vec::new(),
            summary: String::new(),
        })
        .collect();
    let mut seen = vec![false; frames.len()];
    let mut synthetic_noise = Vec::new();

    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let packet = parse_line(line)?;
        let owner = packet
            .number
            .checked_sub(1)
            .and_then(|i| capture.packet_owner.get(i))
            .ok_or_else(|| format!("tshark reported unknown packet {}: {line:?}", packet.number))?;
        let (problems, warnings) = packet.findings();
        match owner {
            Some(idx) => {
                let (Some(verdict), Some(seen)) = (verdicts.get_mut(*idx), seen.get_mut(*idx))
                else {
                    return Err(format!("internal: frame index {idx} out of range"));
                };
                *seen = true;
                verdict.problems = problems;
                verdict.summary.clone_from(&packet.info);
                for w in warnings {
                    let _ = write!(verdict.summary, " [warning: {w}]");
                }
            }
            None => {
                // Handshake / pure ACK written by this module: must be clean, otherwise the
                // synthetic TCP stream itself is wrong and every verdict is suspect.
                for p in problems.iter().chain(warnings.iter()) {
                    synthetic_noise.push(format!("packet {}: {p}", packet.number));
                }
            }
        }
    }

    if !synthetic_noise.is_empty() {
        return Err(format!(
            "tshark flagged the harness's own TCP packets (harness bug): {}",
            synthetic_noise.join("; ")
        ));
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(format!(
            "tshark printed no line for frame {missing} ({:?}); stderr: {}",
            frames
                .get(missing)
                .map(|f| f.label.as_str())
                .unwrap_or_default(),
            stderr.trim()
        ));
    }
    for (verdict, frame) in verdicts.iter_mut().zip(frames) {
        // Wireshark does not reliably flag this itself: over TCP with reassembly on, a frame
        // claiming more bytes than it has is held back as "segment of a reassembled PDU";
        // with reassembly off, it only gets a *note* ("Unreassembled fragment").
        if let Some(p) = length_field_problem(&frame.bytes) {
            verdict.problems.insert(0, p);
        }
    }
    Ok(verdicts)
}

/// Run tshark over `pcap`; (stdout, stderr).
///
/// Finds the Info column field name by trial: tshark 4.0 rejects an unknown field with
/// "Some fields aren't valid", but accepts any `_ws.col.<name>` and prints it empty -- so an
/// all-empty Info column also means "wrong name".
fn run_tshark(pcap: &Path, config_dir: &Path, desegment: bool) -> Result<(String, String), String> {
    let first = INFO_FIELD.load(Ordering::Relaxed);
    let mut attempt = first;
    loop {
        let info_field = INFO_FIELDS.get(attempt).copied().unwrap_or("_ws.col.info");
        let output = tshark_command()
            .args(tshark_args(pcap, info_field, desegment))
            // Keep the user's Wireshark preferences/profiles out of it.
            .env("WIRESHARK_CONFIG_DIR", config_dir)
            .output()
            .map_err(|e| format!("cannot run tshark: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let info_missing = output.status.success()
            && stdout.lines().any(|l| !l.trim().is_empty())
            && stdout.lines().all(|l| {
                l.rsplit(SEP)
                    .next()
                    .is_none_or(|info| info.trim().is_empty())
            });
        if output.status.success() && !info_missing {
            INFO_FIELD.store(attempt, Ordering::Relaxed);
            return Ok((stdout, stderr));
        }
        attempt = (attempt + 1) % INFO_FIELDS.len();
        if attempt == first {
            return Err(format!(
                "tshark gave no Info column under any of {INFO_FIELDS:?} ({}): {}",
                output.status,
                stderr.trim()
            ));
        }
        if !info_missing && !stderr.contains("aren't valid") {
            return Err(format!(
                "tshark failed ({}): {}",
                output.status,
                stderr.trim()
            ));
        }
    }
}

/// Like [`dissect`], but `Err` listing every flagged frame unless all are clean.
pub fn check_clean(frames: &[WireFrame]) -> Result<Vec<FrameVerdict>, String> {
    let verdicts = dissect(frames)?;
    let flagged: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.is_clean())
        .map(|v| {
            format!(
                "{}: {} (info: {})",
                v.label,
                v.problems.join("; "),
                v.summary
            )
        })
        .collect();
    if flagged.is_empty() {
        Ok(verdicts)
    } else {
        Err(format!(
            "tshark flagged {} frame(s):\n  {}",
            flagged.len(),
            flagged.join("\n  ")
        ))
    }
}

/// The tshark arguments [`dissect`] uses for `pcap` (`info_field`: see [`INFO_FIELDS`];
/// `enip_desegment`: keep Wireshark's ENIP-over-TCP reassembly on, its default).
pub fn tshark_args(pcap: &Path, info_field: &str, enip_desegment: bool) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-n".into(),
        "-r".into(),
        pcap.display().to_string(),
        // Validate the harness's own checksums: a mistake there shows up as an error.
        "-o".into(),
        "ip.check_checksum:TRUE".into(),
        "-o".into(),
        "tcp.check_checksum:TRUE".into(),
        "-o".into(),
        "udp.check_checksum:TRUE".into(),
        "-o".into(),
        format!(
            "enip.desegment:{}",
            if enip_desegment { "TRUE" } else { "FALSE" }
        ),
        "-d".into(),
        format!("tcp.port=={ENIP_PORT},enip"),
        "-d".into(),
        format!("udp.port=={ENIP_PORT},enip"),
        "-T".into(),
        "fields".into(),
        "-E".into(),
        "header=n".into(),
        "-E".into(),
        "quote=n".into(),
        "-E".into(),
        "occurrence=a".into(),
        "-E".into(),
        format!("separator={SEP}"),
        "-E".into(),
        format!("aggregator={AGG}"),
    ];
    for field in FIELDS.into_iter().chain([info_field]) {
        args.push("-e".into());
        args.push(field.into());
    }
    args
}

/// `$TSHARK`, else `tshark` from `PATH`.
fn tshark_program() -> std::ffi::OsString {
    std::env::var_os("TSHARK").unwrap_or_else(|| "tshark".into())
}

fn tshark_command() -> Command {
    Command::new(tshark_program())
}

/// Problem with the encapsulation header's length field, if any.
fn length_field_problem(bytes: &[u8]) -> Option<String> {
    let Some(&[lo, hi]) = bytes.get(2..4) else {
        return Some(format!(
            "harness: {} byte(s) is shorter than the 24-byte encapsulation header",
            bytes.len()
        ));
    };
    let declared = usize::from(u16::from_le_bytes([lo, hi]));
    let body = bytes.len().saturating_sub(24);
    if bytes.len() < 24 {
        Some(format!(
            "harness: {} byte(s) is shorter than the 24-byte encapsulation header",
            bytes.len()
        ))
    } else if declared != body {
        Some(format!(
            "harness: encapsulation length field says {declared} but the body has {body} byte(s)"
        ))
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// tshark output

struct Packet {
    number: usize,
    /// Occurrences of `_ws.malformed`: the bare field name, or a text such as
    /// `[Malformed Packet: CIPCM: length of contained item exceeds length of containing item]`.
    malformed: Vec<String>,
    severities: Vec<u64>,
    messages: Vec<String>,
    info: String,
}

impl Packet {
    /// (problems, warnings)
    fn findings(&self) -> (Vec<String>, Vec<String>) {
        let mut problems: Vec<String> = self
            .malformed
            .iter()
            .map(|m| {
                m.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            })
            .filter(|m| m.starts_with("Malformed"))
            .collect();
        if problems.is_empty() && !self.malformed.is_empty() {
            problems.push("Malformed Packet".to_string());
        }
        let mut warnings = Vec::new();
        for (i, sev) in self.severities.iter().enumerate() {
            let msg = self.messages.get(i).map_or("(no message)", String::as_str);
            if *sev >= SEVERITY_ERROR {
                // "Malformed Packet (Exception occurred)" repeats the marker above.
                if self.malformed.is_empty() || !msg.starts_with("Malformed Packet") {
                    problems.push(format!("expert error: {msg}"));
                }
            } else if *sev >= SEVERITY_WARN {
                warnings.push(msg.to_string());
            }
        }
        (problems, warnings)
    }
}

fn parse_line(line: &str) -> Result<Packet, String> {
    let cols: Vec<&str> = line.split(SEP).collect();
    let [number, malformed, severity, message, info] = cols.as_slice() else {
        return Err(format!(
            "unexpected tshark line ({} columns): {line:?}",
            cols.len()
        ));
    };
    let number = number
        .trim()
        .parse::<usize>()
        .map_err(|e| format!("bad frame.number in tshark line {line:?}: {e}"))?;
    let severities = split_occurrences(severity)
        .map(|s| parse_severity(s).ok_or_else(|| format!("bad expert severity {s:?} in {line:?}")))
        .collect::<Result<Vec<u64>, String>>()?;
    Ok(Packet {
        number,
        malformed: split_occurrences(malformed).map(str::to_string).collect(),
        severities,
        messages: split_occurrences(message).map(str::to_string).collect(),
        info: info.trim().to_string(),
    })
}

fn split_occurrences(field: &str) -> impl Iterator<Item = &str> {
    field.split(AGG).filter(|s| !s.is_empty())
}

/// `-T fields` prints the severity as a number (decimal, or hex `0x...` in some versions);
/// accept the names too.
fn parse_severity(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    match s.to_ascii_lowercase().as_str() {
        "error" => Some(SEVERITY_ERROR),
        "warning" | "warn" => Some(SEVERITY_WARN),
        "note" => Some(0x0040_0000),
        "chat" => Some(0x0020_0000),
        "comment" => Some(0x0010_0000),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// pcap writing

/// `LINKTYPE_ETHERNET`.
const LINKTYPE_ETHERNET: u32 = 1;
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const LOCALHOST: [u8; 4] = [127, 0, 0, 1];
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const TCP_WINDOW: u16 = 65535;
/// Largest TCP/UDP payload in one IPv4 packet without options (65535 - 20 - 20).
const MAX_PAYLOAD: usize = 65495;

struct Capture {
    pcap: Vec<u8>,
    /// For packet i (0-based), the index of the `WireFrame` it carries, if any.
    packet_owner: Vec<Option<usize>>,
}

/// One direction of the synthetic TCP conversation.
struct TcpSide {
    port: u16,
    mac: [u8; 6],
    /// Next sequence number to send.
    seq: u32,
    ip_id: u16,
}

struct PcapWriter {
    buf: Vec<u8>,
    packets: usize,
}

impl PcapWriter {
    fn new() -> Self {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes()); // magic, microseconds
        buf.extend_from_slice(&2u16.to_le_bytes()); // version major
        buf.extend_from_slice(&4u16.to_le_bytes()); // version minor
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        buf.extend_from_slice(&262_144u32.to_le_bytes()); // snaplen
        buf.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        Self { buf, packets: 0 }
    }

    fn record(&mut self, packet: &[u8]) -> Result<(), String> {
        let len = u32::try_from(packet.len()).map_err(|_| "packet too large".to_string())?;
        // 1.7e9 s (2023-11), one packet per millisecond.
        let t = u64::try_from(self.packets).map_err(|_| "too many packets".to_string())?;
        let usec_total = t.saturating_mul(1000);
        let sec = u32::try_from(1_700_000_000 + usec_total / 1_000_000)
            .map_err(|_| "too many packets".to_string())?;
        let usec = u32::try_from(usec_total % 1_000_000).unwrap_or_default();
        self.buf.extend_from_slice(&sec.to_le_bytes());
        self.buf.extend_from_slice(&usec.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes()); // incl_len
        self.buf.extend_from_slice(&len.to_le_bytes()); // orig_len
        self.buf.extend_from_slice(packet);
        self.packets += 1;
        Ok(())
    }
}

fn build_capture(frames: &[WireFrame]) -> Result<Capture, String> {
    let mut w = PcapWriter::new();
    let mut owner = Vec::new();

    let mut client = TcpSide {
        port: CLIENT_TCP_PORT,
        mac: CLIENT_MAC,
        seq: 0x1000_0000,
        ip_id: 1,
    };
    let mut server = TcpSide {
        port: ENIP_PORT,
        mac: SERVER_MAC,
        seq: 0x2000_0000,
        ip_id: 1,
    };
    let mut udp_ip_id: u16 = 0x4000;

    let tcp_frames: Vec<(usize, &WireFrame)> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.transport == Transport::Tcp)
        .collect();

    if !tcp_frames.is_empty() {
        // SYN, SYN/ACK, ACK.
        w.record(&tcp_packet(&mut client, &server, TCP_SYN, 0, &[])?)?;
        owner.push(None);
        client.seq = client.seq.wrapping_add(1);
        w.record(&tcp_packet(
            &mut server,
            &client,
            TCP_SYN | TCP_ACK,
            client.seq,
            &[],
        )?)?;
        owner.push(None);
        server.seq = server.seq.wrapping_add(1);
        w.record(&tcp_packet(&mut client, &server, TCP_ACK, server.seq, &[])?)?;
        owner.push(None);
    }

    for (idx, frame) in frames.iter().enumerate() {
        if frame.bytes.len() > MAX_PAYLOAD {
            return Err(format!(
                "frame {idx} ({:?}) has {} bytes; at most {MAX_PAYLOAD} fit in one IPv4 packet",
                frame.label,
                frame.bytes.len()
            ));
        }
        match frame.transport {
            Transport::Tcp => {
                let (sender, receiver) = if frame.from_client {
                    (&mut client, &mut server)
                } else {
                    (&mut server, &mut client)
                };
                let ack = receiver.seq;
                w.record(&tcp_packet(
                    sender,
                    receiver,
                    TCP_PSH | TCP_ACK,
                    ack,
                    &frame.bytes,
                )?)?;
                owner.push(Some(idx));
                let len = u32::try_from(frame.bytes.len()).map_err(|_| "frame too large")?;
                sender.seq = sender.seq.wrapping_add(len);

                // If the same side sends the next TCP frame too, let the peer ACK this one
                // first, so unacknowledged data never piles up to a "window full".
                let next_same_side = tcp_frames
                    .iter()
                    .find(|(i, _)| *i > idx)
                    .is_some_and(|(_, f)| f.from_client == frame.from_client);
                if next_same_side {
                    let ack = sender.seq;
                    w.record(&tcp_packet(receiver, sender, TCP_ACK, ack, &[])?)?;
                    owner.push(None);
                }
            }
            Transport::Udp => {
                let (src_mac, dst_mac, src_port, dst_port) = if frame.from_client {
                    (CLIENT_MAC, SERVER_MAC, CLIENT_UDP_PORT, ENIP_PORT)
                } else {
                    (SERVER_MAC, CLIENT_MAC, ENIP_PORT, CLIENT_UDP_PORT)
                };
                let mut udp = Vec::with_capacity(8 + frame.bytes.len());
                let udp_len =
                    u16::try_from(8 + frame.bytes.len()).map_err(|_| "frame too large")?;
                udp.extend_from_slice(&src_port.to_be_bytes());
                udp.extend_from_slice(&dst_port.to_be_bytes());
                udp.extend_from_slice(&udp_len.to_be_bytes());
                udp.extend_from_slice(&[0, 0]); // checksum, filled below
                udp.extend_from_slice(&frame.bytes);
                let mut sum = transport_checksum(IPPROTO_UDP, &udp)?;
                if sum == 0 {
                    sum = 0xffff;
                }
                set_checksum(&mut udp, 6, sum)?;
                udp_ip_id = udp_ip_id.wrapping_add(1);
                w.record(&ethernet_ipv4(
                    src_mac,
                    dst_mac,
                    IPPROTO_UDP,
                    udp_ip_id,
                    &udp,
                )?)?;
                owner.push(Some(idx));
            }
        }
    }

    // Close the TCP conversation properly (FIN/ACK both ways) so nothing looks truncated.
    if !tcp_frames.is_empty() {
        let ack = server.seq;
        w.record(&tcp_packet(
            &mut client,
            &server,
            TCP_FIN | TCP_ACK,
            ack,
            &[],
        )?)?;
        owner.push(None);
        client.seq = client.seq.wrapping_add(1);
        let ack = client.seq;
        w.record(&tcp_packet(
            &mut server,
            &client,
            TCP_FIN | TCP_ACK,
            ack,
            &[],
        )?)?;
        owner.push(None);
        server.seq = server.seq.wrapping_add(1);
        let ack = server.seq;
        w.record(&tcp_packet(&mut client, &server, TCP_ACK, ack, &[])?)?;
        owner.push(None);
    }

    Ok(Capture {
        pcap: w.buf,
        packet_owner: owner,
    })
}

/// Ethernet + IPv4 + TCP packet from `from` to `to`, with sequence number `from.seq`.
fn tcp_packet(
    from: &mut TcpSide,
    to: &TcpSide,
    flags: u8,
    ack: u32,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&from.port.to_be_bytes());
    tcp.extend_from_slice(&to.port.to_be_bytes());
    tcp.extend_from_slice(&from.seq.to_be_bytes());
    let ack = if flags & TCP_ACK != 0 { ack } else { 0 };
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.push(5 << 4); // data offset: 5 words, no options
    tcp.push(flags);
    tcp.extend_from_slice(&TCP_WINDOW.to_be_bytes());
    tcp.extend_from_slice(&[0, 0]); // checksum, filled below
    tcp.extend_from_slice(&[0, 0]); // urgent pointer
    tcp.extend_from_slice(payload);
    let sum = transport_checksum(IPPROTO_TCP, &tcp)?;
    set_checksum(&mut tcp, 16, sum)?;
    from.ip_id = from.ip_id.wrapping_add(1);
    ethernet_ipv4(from.mac, to.mac, IPPROTO_TCP, from.ip_id, &tcp)
}

fn ethernet_ipv4(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    proto: u8,
    ip_id: u16,
    l4: &[u8],
) -> Result<Vec<u8>, String> {
    let total = u16::try_from(20 + l4.len()).map_err(|_| "IPv4 packet too large".to_string())?;
    let mut ip = Vec::with_capacity(20);
    ip.push(0x45); // version 4, IHL 5
    ip.push(0); // DSCP/ECN
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&ip_id.to_be_bytes());
    ip.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, fragment offset 0
    ip.push(64); // TTL
    ip.push(proto);
    ip.extend_from_slice(&[0, 0]); // header checksum, filled below
    ip.extend_from_slice(&LOCALHOST);
    ip.extend_from_slice(&LOCALHOST);
    let sum = !ones_complement_sum(0, &ip);
    set_checksum(&mut ip, 10, sum)?;

    let mut out = Vec::with_capacity(14 + 20 + l4.len());
    out.extend_from_slice(&dst_mac);
    out.extend_from_slice(&src_mac);
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    out.extend_from_slice(&ip);
    out.extend_from_slice(l4);
    Ok(out)
}

/// TCP/UDP checksum over the IPv4 pseudo-header (127.0.0.1 -> 127.0.0.1) and `segment`.
fn transport_checksum(proto: u8, segment: &[u8]) -> Result<u16, String> {
    let len = u16::try_from(segment.len()).map_err(|_| "segment too large".to_string())?;
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&LOCALHOST);
    pseudo.extend_from_slice(&LOCALHOST);
    pseudo.push(0);
    pseudo.push(proto);
    pseudo.extend_from_slice(&len.to_be_bytes());
    let sum = ones_complement_sum(ones_complement_sum(0, &pseudo), segment);
    Ok(!sum)
}

/// 16-bit one's complement sum of `data` (odd length padded with a zero byte), added to `start`.
fn ones_complement_sum(start: u16, data: &[u8]) -> u16 {
    let mut sum = u32::from(start);
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum & 0xffff).unwrap_or_default()
}

fn set_checksum(buf: &mut [u8], at: usize, sum: u16) -> Result<(), String> {
    let slot = buf
        .get_mut(at..at + 2)
        .ok_or_else(|| format!("internal: checksum offset {at} out of range"))?;
    slot.copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// temp dir

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "enip-tshark-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create temp dir {}: {e}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ENIP_TSHARK_KEEP").is_some() {
            eprintln!("tshark harness: kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
