//! The DCT changes a backup needs to continue the connections (the copy
//! in the coupling facility), gathered between two takes.
//!
//! A connection made and ended before the next take never reaches the CF:
//! under a SYN flood, half-open entries evicted or aged out within a
//! journal period cost no CF write.

use std::collections::HashMap;

use super::DctChange;
use crate::sysplex::dct::ConnKey;

#[derive(Debug, Default)]
pub(super) struct Journal {
    /// In order; `None` where a `Made` was cancelled by its `Ended`.
    changes: Vec<Option<DctChange>>,
    /// Where each connection made since the last take is in `changes`.
    made_at: HashMap<ConnKey, usize>,
}

impl Journal {
    pub(super) fn made(&mut self, change: DctChange) {
        if let DctChange::Made { key, .. } = &change {
            self.made_at.insert(*key, self.changes.len());
        }
        self.changes.push(Some(change));
    }

    pub(super) fn ended(&mut self, key: ConnKey) {
        match self.made_at.remove(&key) {
            Some(i) => self.changes[i] = None,
            None => self.changes.push(Some(DctChange::Ended(key))),
        }
    }

    pub(super) fn take(&mut self) -> Vec<DctChange> {
        self.made_at.clear();
        std::mem::take(&mut self.changes)
            .into_iter()
            .flatten()
            .collect()
    }
}
