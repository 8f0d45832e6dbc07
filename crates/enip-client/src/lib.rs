//! `enip-client`: a pipelined EtherNet/IP + CIP client for ControlLogix controllers (and
//! our simulator), with cpppo's operation grammar and printed output.
//!
//! - [`Client`]: a registered session over TCP, unconnected (Unconnected Send with a
//!   route path, or bare requests) or connected (Large Forward Open, falling back to
//!   Forward Open). Any number of requests may be in flight; replies are matched by
//!   sender context, or by CIP sequence count on a connection. Every request has a
//!   timeout; a broken connection fails every request on it with the reason.
//! - Tag services that fragment themselves: [`Client::read_tag`] follows partial
//!   transfers (status 0x06) with Read Tag Fragmented, [`Client::write_tag`] splits what
//!   does not fit one message into Write Tag Fragmented pieces; bits and BOOL arrays by
//!   Read-Modify-Write; attribute services; identity.
//! - [`Client::execute`] runs cpppo-style [`ops::Operation`]s pipelined to a depth and
//!   packed into Multiple Service Packets within the connection size.
//! - [`Client::tag_list`] uploads tags and structure templates; reads then decode UDTs.
//! - [`discover::list_udp`]: ListIdentity / ListServices over UDP, unicast or broadcast.
//!
//! **Architecture invariant:** the protocol (framing, encoding, decoding) is
//! `enip-proto`'s; this crate owns sockets, tasks and timers, and never panics on what a
//! server sends.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod client;
mod conn;
pub mod discover;
mod error;
mod exec;
pub mod ops;
pub mod pyfmt;
pub mod report;
mod tags;
pub mod value;

pub use client::{
    CipConnection, CipReply, Client, Options, Reading, Routing, TagPath, UNCONNECTED_LIMIT,
};
pub use discover::{Identity, ListItem, ListReply};
pub use error::{Error, Result};
pub use exec::{elements_read, Exec, OpResult, OpValue, Stats};
pub use tags::{TagInfo, TagList};
pub use value::{TagValue, Template, Templates, WireType};
