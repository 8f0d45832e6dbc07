//! Where things are in a YAML file: every node's path (`spec.simulators[1].ip`) mapped
//! to its line and column, so errors found after parsing still say file:line:column.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column (1-based) of each node, by path.
#[derive(Debug, Default, Clone)]
pub struct Positions {
    at: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// Index `source`; a YAML syntax error leaves the index empty (serde reports it).
    pub fn index(source: &str) -> Self {
        let mut r = Indexer::default();
        let mut p = Parser::new_from_str(source);
        let _ = p.load(&mut r, false);
        Self { at: r.at }
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn of(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(&pos) = self.at.get(p) {
                return Some(pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = p.get(..cut)?;
        }
    }
}

#[derive(Debug)]
enum Frame {
    /// In a mapping: the key awaiting its value, if any.
    Map {
        path: String,
        key: Option<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Debug, Default)]
struct Indexer {
    stack: Vec<Frame>,
    at: HashMap<String, (usize, usize)>,
}

impl Indexer {
    /// The path of the node starting now, or `None` when it is a mapping key.
    fn next_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map { path, key }) => {
                let k = key.take().unwrap_or_default();
                Some(if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                })
            }
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(value, ..) => match self.next_path() {
                Some(p) => {
                    self.at.entry(p).or_insert(pos);
                }
                None => {
                    if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                        let full = if path.is_empty() {
                            value.clone()
                        } else {
                            format!("{path}.{value}")
                        };
                        // A key's own position: where an unknown or duplicate key is.
                        self.at.entry(full).or_insert(pos);
                        *key = Some(value);
                    }
                }
            },
            Event::MappingStart(..) => {
                let path = self.next_path().unwrap_or_default();
                self.at.entry(path.clone()).or_insert(pos);
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.next_path().unwrap_or_default();
                self.at.entry(path.clone()).or_insert(pos);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                let _ = self.next_path();
            }
            _ => {}
        }
    }
}
