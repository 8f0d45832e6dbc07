//! Health: does a simulator answer ListIdentity on its own address, as itself?

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use enip_proto::cpf::Item;
use enip_proto::{Body, Command, Encapsulation, FrameDecoder, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a simulator said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub product_name: String,
    pub serial: u32,
    pub address: Ipv4Addr,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the reply is not a ListIdentity answer: {0}")]
    Garbage(String),
}

/// ListIdentity over TCP to `ip:44818`.
pub async fn list_identity(ip: Ipv4Addr, timeout: Duration) -> Result<Identity, ProbeError> {
    tokio::time::timeout(timeout, ask(ip))
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
}

async fn ask(ip: Ipv4Addr) -> Result<Identity, ProbeError> {
    let mut s = TcpStream::connect(SocketAddr::from((ip, 44818))).await?;
    let req = Encapsulation {
        header: Header::new(Command::ListIdentity, 0, *b"plcfleet"),
        body: Body::Raw(&[]),
    }
    .to_vec()
    .map_err(|e| ProbeError::Garbage(e.to_string()))?;
    s.write_all(&req).await?;
    let mut dec = FrameDecoder::new(4096);
    let mut buf = [0u8; 1024];
    loop {
        let frame = dec
            .next_frame()
            .map_err(|e| ProbeError::Garbage(e.to_string()))?;
        if let Some(f) = frame {
            let Body::List(Some(cpf)) = &f.body else {
                return Err(ProbeError::Garbage("no item list".into()));
            };
            let Some(Item::Identity(id)) = cpf.items.first() else {
                return Err(ProbeError::Garbage("no identity item".into()));
            };
            return Ok(Identity {
                product_name: String::from_utf8_lossy(id.product_name).into_owned(),
                serial: id.serial,
                address: Ipv4Addr::from(id.socket.addr),
            });
        }
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(ProbeError::Garbage("closed before answering".into()));
        }
        dec.feed(buf.get(..n).unwrap_or_default());
    }
}

/// Whether `got` is the simulator `want` describes: its own address, and its serial and
/// product name when the manifest sets them.
pub fn is_itself(got: &Identity, want: &crate::Simulator) -> bool {
    let serial_ok = want.identity.get("serial").is_none_or(|s| {
        let n = match s.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        };
        n == Some(got.serial)
    });
    let name_ok = want
        .identity
        .get("product_name")
        .is_none_or(|p| *p == got.product_name);
    got.address == want.ip && serial_ok && name_ok
}
