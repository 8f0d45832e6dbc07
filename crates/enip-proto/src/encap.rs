//! The EtherNet/IP encapsulation layer: the 24-byte header, its commands and status codes,
//! and the command-specific bodies.

use crate::cpf::Cpf;
use crate::error::{DecodeError, DecodeResult, EncodeResult, ErrorKind};
use crate::wire::{Reader, Writer};

/// Size of the encapsulation header.
pub const HEADER_LEN: usize = 24;
/// The registered TCP and UDP port.
pub const PORT: u16 = 44818;

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident($repr:ty) { $($(#[$vm:meta])* $variant:ident = $value:expr, $text:expr;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
            /// A code this codec has no name for, kept as sent.
            Other($repr),
        }

        impl $name {
            pub const fn code(self) -> $repr {
                match self {
                    $(Self::$variant => $value,)*
                    Self::Other(v) => v,
                }
            }

            pub const fn from_code(v: $repr) -> Self {
                match v {
                    $($value => Self::$variant,)*
                    other => Self::Other(other),
                }
            }

            /// The name used in the specification and by Wireshark.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(_) => "unknown",
                }
            }
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                Self::from_code(v)
            }
        }
    };
}

code_enum! {
    /// Encapsulation command (header offset 0).
    Command(u16) {
        Nop = 0x0000, "NOP";
        ListTargets = 0x0001, "ListTargets";
        ListServices = 0x0004, "ListServices";
        ListIdentity = 0x0063, "ListIdentity";
        ListInterfaces = 0x0064, "ListInterfaces";
        RegisterSession = 0x0065, "RegisterSession";
        UnRegisterSession = 0x0066, "UnRegisterSession";
        SendRRData = 0x006F, "SendRRData";
        SendUnitData = 0x0070, "SendUnitData";
        StartDtls = 0x00C8, "StartDTLS";
    }
}

code_enum! {
    /// Encapsulation status (header offset 8).
    EncapStatus(u32) {
        Success = 0x0000, "success";
        InvalidCommand = 0x0001, "invalid or unsupported command";
        InsufficientMemory = 0x0002, "insufficient memory";
        IncorrectData = 0x0003, "poorly formed or incorrect data";
        InvalidSession = 0x0064, "invalid session handle";
        InvalidLength = 0x0065, "invalid length";
        UnsupportedProtocol = 0x0069, "unsupported encapsulation protocol revision";
        HeaderError = 0x006A, "encapsulation header error";
    }
}

impl Command {
    /// Commands that may arrive over UDP.
    pub fn allowed_on_udp(self) -> bool {
        matches!(
            self,
            Self::ListServices | Self::ListIdentity | Self::ListInterfaces
        )
    }
}

/// The 24-byte encapsulation header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command: Command,
    /// Bytes after the header. Filled in by [`Encapsulation::encode`].
    pub length: u16,
    pub session: u32,
    pub status: EncapStatus,
    pub context: [u8; 8],
    pub options: u32,
}

impl Header {
    pub fn new(command: Command, session: u32, context: [u8; 8]) -> Self {
        Self {
            command,
            length: 0,
            session,
            status: EncapStatus::Success,
            context,
            options: 0,
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Self {
            command: Command::from_code(r.u16("encapsulation command")?),
            length: r.u16("encapsulation length")?,
            session: r.u32("session handle")?,
            status: EncapStatus::from_code(r.u32("encapsulation status")?),
            context: r.array("sender context")?,
            options: r.u32("encapsulation options")?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.command.code());
        out.put_u16(self.length);
        out.put_u32(self.session);
        out.put_u32(self.status.code());
        out.put_bytes(&self.context);
        out.put_u32(self.options);
    }

    /// The header of a reply to this request: same command, session and context.
    pub fn reply(&self, status: EncapStatus) -> Self {
        Self {
            length: 0,
            status,
            options: 0,
            ..*self
        }
    }
}

/// How many bytes the first frame in `buf` occupies: `Ok(None)` when more bytes are
/// needed, an error when the header declares a body longer than `max_body` — before
/// anything is allocated for it.
pub fn frame_len(buf: &[u8], max_body: usize) -> DecodeResult<Option<usize>> {
    let Some(&[lo, hi]) = buf.get(2..4) else {
        return Ok(None);
    };
    let body = usize::from(u16::from_le_bytes([lo, hi]));
    if body > max_body {
        return Err(DecodeError::new(
            ErrorKind::TooLong {
                what: "encapsulation body",
                declared: body,
                max: max_body,
            },
            2,
        ));
    }
    let total = HEADER_LEN + body;
    Ok((buf.len() >= total).then_some(total))
}

/// RegisterSession body (request and reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterSession {
    pub protocol_version: u16,
    pub options: u16,
}

impl Default for RegisterSession {
    fn default() -> Self {
        Self {
            protocol_version: 1,
            options: 0,
        }
    }
}

/// SendRRData / SendUnitData body: interface handle, timeout, CPF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendData<'a> {
    pub interface_handle: u32,
    pub timeout: u16,
    pub cpf: Cpf<'a>,
}

/// The command-specific part of a frame, typed by command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// NOP carries arbitrary bytes that are ignored; also UnRegisterSession's (empty) body
    /// and the empty body of an error reply.
    Raw(&'a [u8]),
    /// ListIdentity, ListServices, ListInterfaces, ListTargets: `None` is the empty request,
    /// `Some` an item list (a reply).
    List(Option<Cpf<'a>>),
    RegisterSession(RegisterSession),
    SendData(SendData<'a>),
}

/// One encapsulation frame: header plus typed body, borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encapsulation<'a> {
    pub header: Header,
    pub body: Body<'a>,
}

impl<'a> Encapsulation<'a> {
    /// Decode exactly one complete frame; `buf` must hold the frame and nothing more.
    pub fn decode(buf: &'a [u8]) -> DecodeResult<Self> {
        let mut r = Reader::new(buf);
        let header = Header::decode(&mut r)?;
        let mut body = r.sub(usize::from(header.length), "encapsulation body")?;
        r.finish("encapsulation frame")?;
        let decoded = Self::decode_body(&header, &mut body)?;
        Ok(Self {
            header,
            body: decoded,
        })
    }

    fn decode_body(header: &Header, r: &mut Reader<'a>) -> DecodeResult<Body<'a>> {
        use Command::*;
        let body = match header.command {
            // An error reply is a bare header, whatever the command.
            _ if r.is_empty() && header.status != EncapStatus::Success => Body::Raw(r.rest()),
            ListIdentity | ListServices | ListInterfaces | ListTargets => {
                if r.is_empty() {
                    Body::List(None)
                } else {
                    Body::List(Some(Cpf::decode(r)?))
                }
            }
            RegisterSession => {
                let b = Body::RegisterSession(self::RegisterSession {
                    protocol_version: r.u16("protocol version")?,
                    options: r.u16("session options")?,
                });
                r.finish("RegisterSession body")?;
                b
            }
            SendRRData | SendUnitData => {
                let interface_handle = r.u32("interface handle")?;
                let timeout = r.u16("timeout")?;
                let cpf = Cpf::decode(r)?;
                Body::SendData(SendData {
                    interface_handle,
                    timeout,
                    cpf,
                })
            }
            Nop | UnRegisterSession | StartDtls | Other(_) => Body::Raw(r.rest()),
        };
        Ok(body)
    }

    /// Append the frame to `out`, computing the header's length field.
    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        let start = out.len();
        self.header.encode(out);
        let body_start = out.len();
        match &self.body {
            Body::Raw(b) => out.put_bytes(b),
            Body::List(None) => {}
            Body::List(Some(cpf)) => cpf.encode(out)?,
            Body::RegisterSession(rs) => {
                out.put_u16(rs.protocol_version);
                out.put_u16(rs.options);
            }
            Body::SendData(sd) => {
                out.put_u32(sd.interface_handle);
                out.put_u16(sd.timeout);
                sd.cpf.encode(out)?;
            }
        }
        let len = out.len() - body_start;
        out.patch_u16(start + 2, "encapsulation length", len)
    }

    pub fn to_vec(&self) -> EncodeResult<Vec<u8>> {
        // Room for a typical request frame: growing a Vec three times costs more than
        // the frame's encoding.
        let mut v = Vec::with_capacity(256);
        self.encode(&mut v)?;
        Ok(v)
    }

    /// The SendRRData / SendUnitData body, if this is one.
    pub fn send_data(&self) -> Option<&SendData<'a>> {
        match &self.body {
            Body::SendData(sd) => Some(sd),
            _ => None,
        }
    }
}

/// Reassembles frames from a byte stream fed in arbitrary chunks (one byte at a time
/// included). Short input is never an error; a declared length above the maximum is,
/// before the body is buffered.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as a frame, dropped on the next call.
    consumed: usize,
    max_body: usize,
    /// Bytes of the stream consumed before `buf[0]`, for error offsets.
    stream_offset: usize,
}

impl FrameDecoder {
    /// `max_body`: the largest encapsulation body accepted (at most 65,535 fits the field).
    pub fn new(max_body: usize) -> Self {
        Self {
            buf: Vec::new(),
            consumed: 0,
            max_body,
            stream_offset: 0,
        }
    }

    /// Append received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    fn compact(&mut self) {
        if self.consumed > 0 {
            self.buf.drain(..self.consumed);
            self.stream_offset += self.consumed;
            self.consumed = 0;
        }
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// The next complete frame, if one has arrived. Errors carry stream offsets; after an
    /// error the stream cannot be resynchronised and the connection should be closed.
    pub fn next_frame(&mut self) -> DecodeResult<Option<Encapsulation<'_>>> {
        self.compact();
        let base = self.stream_offset;
        let Some(len) = frame_len(&self.buf, self.max_body).map_err(|e| e.at(base))? else {
            return Ok(None);
        };
        self.consumed = len;
        let frame = self.buf.get(..len).unwrap_or_default();
        Encapsulation::decode(frame)
            .map(Some)
            .map_err(|e| e.at(base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_waits_for_the_whole_frame() {
        let mut f = vec![0x65, 0, 4, 0];
        f.extend_from_slice(&[0; 20]);
        assert_eq!(frame_len(&f[..1], 100), Ok(None));
        assert_eq!(frame_len(&f, 100), Ok(None));
        f.extend_from_slice(&[1, 0, 0, 0]);
        assert_eq!(frame_len(&f, 100), Ok(Some(28)));
        assert!(frame_len(&f, 3).is_err());
    }
}
