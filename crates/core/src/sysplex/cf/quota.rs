//! The CF's storage per connector image: like a CFRM policy's `STRUCTURE
//! ... SIZE(..)`, each image gets a fixed share (key/value entries, their
//! bytes, sequence structures); a write beyond it fails with
//! [`CfError::QuotaExceeded`] and is counted, and the other images' shares
//! are untouched. A key is charged to the image that created it, for as
//! long as it exists (a backup that rewrites it does not take it over).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::sysplex::limits::SysplexLimits;
use crate::sysplex::xcf::CfError;

/// Each connector image's share (`[limits] cf_max_*_per_image`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CfLimits {
    pub max_entries: u64,
    pub max_bytes: u64,
    pub max_structures: u64,
}

impl Default for CfLimits {
    fn default() -> Self {
        CfLimits::from(&SysplexLimits::default())
    }
}

impl From<&SysplexLimits> for CfLimits {
    fn from(l: &SysplexLimits) -> Self {
        CfLimits {
            max_entries: l.cf_max_entries_per_image,
            max_bytes: l.cf_max_bytes_per_image,
            max_structures: l.cf_max_structures_per_image,
        }
    }
}

/// What one connector holds, and how often it was refused, for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConnectorUsage {
    pub kv_entries: u64,
    /// Keys plus values.
    pub kv_bytes: u64,
    pub structures: u64,
    /// Writes refused because they would exceed a share.
    pub quota_refused: u64,
}

#[derive(Debug, Default)]
pub(super) struct Quotas {
    pub(super) limits: CfLimits,
    usage: BTreeMap<Arc<str>, ConnectorUsage>,
}

impl Quotas {
    /// The connector's name, shared by everything it owns.
    pub(super) fn intern(&mut self, who: &str) -> Arc<str> {
        if let Some((name, _)) = self.usage.get_key_value(who) {
            return Arc::clone(name);
        }
        let name: Arc<str> = Arc::from(who);
        self.usage
            .insert(Arc::clone(&name), ConnectorUsage::default());
        name
    }

    fn slot(&mut self, who: &Arc<str>) -> &mut ConnectorUsage {
        self.usage.entry(Arc::clone(who)).or_default()
    }

    fn refuse(&mut self, who: &Arc<str>, what: &str, limit: u64) -> CfError {
        self.slot(who).quota_refused += 1;
        CfError::QuotaExceeded(format!(
            "{who} would own more than {limit} {what} (the CF's share per image, [limits])"
        ))
    }

    /// A new key of `bytes` (key plus value) for `who`.
    pub(super) fn add_entry(&mut self, who: &Arc<str>, bytes: u64) -> Result<(), CfError> {
        let l = self.limits;
        let u = *self.slot(who);
        if u.kv_entries + 1 > l.max_entries {
            return Err(self.refuse(who, "key/value entries", l.max_entries));
        }
        if u.kv_bytes + bytes > l.max_bytes {
            return Err(self.refuse(who, "bytes of key/value storage", l.max_bytes));
        }
        let u = self.slot(who);
        u.kv_entries += 1;
        u.kv_bytes += bytes;
        Ok(())
    }

    /// A key of `who` rewritten from `old` to `new` bytes.
    pub(super) fn resize(&mut self, who: &Arc<str>, old: u64, new: u64) -> Result<(), CfError> {
        let l = self.limits;
        let u = *self.slot(who);
        if new > old && u.kv_bytes - old + new > l.max_bytes {
            return Err(self.refuse(who, "bytes of key/value storage", l.max_bytes));
        }
        self.slot(who).kv_bytes = u.kv_bytes - old + new;
        Ok(())
    }

    /// A key of `who` of `bytes` deleted.
    pub(super) fn remove_entry(&mut self, who: &Arc<str>, bytes: u64) {
        let u = self.slot(who);
        u.kv_entries = u.kv_entries.saturating_sub(1);
        u.kv_bytes = u.kv_bytes.saturating_sub(bytes);
    }

    pub(super) fn add_structure(&mut self, who: &Arc<str>) -> Result<(), CfError> {
        let max = self.limits.max_structures;
        if self.slot(who).structures + 1 > max {
            return Err(self.refuse(who, "sequence structures", max));
        }
        self.slot(who).structures += 1;
        Ok(())
    }

    pub(super) fn remove_structure(&mut self, who: &Arc<str>) {
        let u = self.slot(who);
        u.structures = u.structures.saturating_sub(1);
    }

    pub(super) fn usage(&self) -> BTreeMap<String, ConnectorUsage> {
        self.usage
            .iter()
            .map(|(k, u)| (k.to_string(), *u))
            .collect()
    }
}
