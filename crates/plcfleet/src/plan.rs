//! The plan: what must change for the backend to run exactly what the manifest says.
//! A pure function of the desired fleet and what the backend observed.

use std::collections::HashMap;
use std::fmt;

use crate::backend::Observed;
use crate::manifest::{Fleet, Simulator};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create(Simulator),
    /// Its spec changed (or it stopped): remove, then create.
    Recreate {
        sim: Simulator,
        old: Observed,
    },
    /// No longer in the manifest, or a duplicate.
    Delete(Observed),
    Unchanged(Simulator),
}

impl Action {
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Create(_) => "create",
            Self::Recreate { .. } => "update",
            Self::Delete(_) => "delete",
            Self::Unchanged(_) => "unchanged",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Create(s) | Self::Recreate { sim: s, .. } | Self::Unchanged(s) => &s.name,
            Self::Delete(o) => &o.name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
}

impl Plan {
    pub fn changes(&self) -> bool {
        self.actions
            .iter()
            .any(|a| !matches!(a, Action::Unchanged(_)))
    }

    pub fn count(&self, verb: &str) -> usize {
        self.actions.iter().filter(|a| a.verb() == verb).count()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            if !matches!(a, Action::Unchanged(_)) {
                writeln!(f, "  {:<9} {}", a.verb(), a.name())?;
            }
        }
        write!(
            f,
            "{} to create, {} to update, {} to delete, {} unchanged",
            self.count("create"),
            self.count("update"),
            self.count("delete"),
            self.count("unchanged")
        )
    }
}

/// Compare desired and observed. Simulators are matched by name; a hash mismatch or a
/// stopped simulator is recreated; every observed simulator the manifest does not list
/// (and every duplicate of one it does) is deleted.
pub fn plan(fleet: &Fleet, observed: &[Observed]) -> Plan {
    let mut by_name: HashMap<&str, Vec<&Observed>> = HashMap::new();
    for o in observed {
        by_name.entry(o.name.as_str()).or_default().push(o);
    }
    let mut actions = Vec::with_capacity(fleet.simulators.len());
    for sim in &fleet.simulators {
        let hash = sim.spec_hash(&fleet.image);
        match by_name.remove(sim.name.as_str()) {
            None => actions.push(Action::Create(sim.clone())),
            Some(found) => {
                let mut found = found.into_iter();
                if let Some(first) = found.next() {
                    if first.spec_hash == hash && first.running {
                        actions.push(Action::Unchanged(sim.clone()));
                    } else {
                        actions.push(Action::Recreate {
                            sim: sim.clone(),
                            old: first.clone(),
                        });
                    }
                }
                // A crash between create and record can leave two: keep one.
                actions.extend(found.map(|o| Action::Delete(o.clone())));
            }
        }
    }
    let mut orphans: Vec<&Observed> = by_name.into_values().flatten().collect();
    orphans.sort_by(|a, b| a.name.cmp(&b.name));
    actions.extend(orphans.into_iter().map(|o| Action::Delete(o.clone())));
    Plan { actions }
}
