//! The Connection Manager's table of class-3 connections.

use std::collections::HashMap;

/// The triad that names a connection: serial, originator vendor, originator serial.
pub type Triad = (u16, u16, u32);

/// One open connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// Chosen by us; the client sends it in SendUnitData.
    pub ot_id: u32,
    /// Chosen by the client; we answer with it.
    pub to_id: u32,
    pub triad: Triad,
    /// The negotiated size (largest reply).
    pub size: u16,
}

/// Open connections, by O→T id and by triad.
#[derive(Debug, Default, Clone)]
pub struct Connections {
    by_id: HashMap<u32, Connection>,
    next_id: u32,
    /// At most this many connections (0 = unlimited).
    pub limit: usize,
}

impl Connections {
    pub fn get(&self, ot_id: u32) -> Option<&Connection> {
        self.by_id.get(&ot_id)
    }

    pub fn find(&self, triad: Triad) -> Option<&Connection> {
        self.by_id.values().find(|c| c.triad == triad)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Open a connection, choosing a unique non-zero O→T id; `None` when full.
    pub fn open(&mut self, to_id: u32, triad: Triad, size: u16) -> Option<Connection> {
        if self.limit != 0 && self.by_id.len() >= self.limit {
            return None;
        }
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            let id = 0x8000_0000 | (self.next_id & 0x7FFF_FFFF);
            if let std::collections::hash_map::Entry::Vacant(slot) = self.by_id.entry(id) {
                let c = Connection {
                    ot_id: id,
                    to_id,
                    triad,
                    size,
                };
                slot.insert(c);
                return Some(c);
            }
        }
    }

    pub fn close(&mut self, triad: Triad) -> Option<Connection> {
        let id = self.find(triad)?.ot_id;
        self.by_id.remove(&id)
    }

    /// Close by O→T id.
    pub fn remove(&mut self, ot_id: u32) -> Option<Connection> {
        self.by_id.remove(&ot_id)
    }

    /// Drop every connection (the session that opened them ended).
    pub fn clear(&mut self) {
        self.by_id.clear();
    }
}
