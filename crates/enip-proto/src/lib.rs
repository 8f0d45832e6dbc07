//! `enip-proto`: a sans-IO EtherNet/IP encapsulation and CIP codec for ControlLogix-style
//! explicit messaging.
//!
//! Bytes in, typed messages out, and back. No sockets, no async runtime, no clock.
//! Decoders borrow from their input; they return typed errors with byte offsets and never
//! panic. Short input to the stream decoder means "need more bytes", never an error.
//!
//! Layers, outermost first:
//! - [`encap`]: the 24-byte header, commands, status codes, and [`FrameDecoder`];
//! - [`cpf`]: Common Packet Format items;
//! - [`mr`]: Message Router requests and replies, service codes and classes;
//! - [`path`]: EPATH segments and their text forms;
//! - [`services`]: service bodies, resolved by (service, class);
//! - [`types`]: data type codes and element encodings;
//! - [`status`]: general and extended status names;
//! - [`describe`]: readable dissections for logs and tools.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod cpf;
pub mod describe;
pub mod encap;
mod error;
pub mod mr;
pub mod path;
pub mod services;
pub mod status;
pub mod types;
pub mod wire;

pub use cpf::{Cpf, Item};
pub use encap::{Body, Command, EncapStatus, Encapsulation, FrameDecoder, Header};
pub use error::{DecodeError, DecodeResult, EncodeError, EncodeResult, ErrorKind};
pub use mr::{Reply, Request, ServiceKind};
pub use path::{EPath, Path, Segment};
pub use status::GeneralStatus;
pub use types::{DataType, TypeTag, Value};
