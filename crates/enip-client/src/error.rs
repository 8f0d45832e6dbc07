//! The client's errors. A CIP status other than success is an [`Error::Cip`] naming the
//! status; everything that goes wrong with the connection names what was being done.

use std::time::Duration;

use enip_proto::status::describe;
use enip_proto::GeneralStatus;

/// Anything a client call can fail with. Cloneable, because one broken connection fails
/// every request in flight on it with the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("{what}: no reply within {after:?}")]
    Timeout { what: String, after: Duration },
    /// The connection is gone: closed by the peer, reset, or given up on after garbage.
    #[error("connection lost: {0}")]
    Closed(String),
    #[error("I/O error: {0}")]
    Io(String),
    /// A non-zero encapsulation status in the reply header.
    #[error("encapsulation status {status:#06x} ({})", enip_proto::EncapStatus::from_code(*status).name())]
    Encapsulation { status: u32 },
    /// A CIP status other than success (or partial transfer where that is expected).
    #[error("{service}: CIP status {}", describe(*status, extended))]
    Cip {
        service: String,
        status: GeneralStatus,
        extended: Vec<u16>,
    },
    /// A reply that does not answer the request or does not decode.
    #[error("bad reply: {0}")]
    Protocol(String),
    /// A request that cannot be built: a value or size that does not fit.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(e: &std::io::Error) -> Self {
        Self::Io(e.to_string())
    }

    /// The CIP status, if this is a CIP failure.
    pub fn cip_status(&self) -> Option<(GeneralStatus, &[u16])> {
        match self {
            Self::Cip {
                status, extended, ..
            } => Some((*status, extended)),
            _ => None,
        }
    }

    /// Whether the connection is unusable after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Closed(_) | Self::Io(_) | Self::Connect { .. })
    }
}

impl From<enip_proto::DecodeError> for Error {
    fn from(e: enip_proto::DecodeError) -> Self {
        Self::Protocol(e.to_string())
    }
}

impl From<enip_proto::EncodeError> for Error {
    fn from(e: enip_proto::EncodeError) -> Self {
        Self::Invalid(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
