//! The key-value backend under [`crate::MailboxStore`]: sled on disk, or a
//! map in memory for the simulation harness (whose node "restarts" keep the
//! store and drop everything else, without paying for disk flushes).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::StoreError;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;
type Entries = Vec<(Vec<u8>, Vec<u8>)>;
type EntryIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a>;

/// A backend handle; clones share the same data.
#[derive(Debug, Clone)]
pub(crate) enum Kv {
    Sled(sled::Db),
    Mem(Arc<Mutex<Map>>),
}

/// Writes applied together.
#[derive(Debug, Default)]
pub(crate) struct KvBatch(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl KvBatch {
    pub(crate) fn insert(&mut self, k: impl Into<Vec<u8>>, v: impl Into<Vec<u8>>) {
        self.0.push((k.into(), Some(v.into())));
    }
    pub(crate) fn remove(&mut self, k: impl Into<Vec<u8>>) {
        self.0.push((k.into(), None));
    }
}

impl Kv {
    fn mem(m: &Mutex<Map>) -> std::sync::MutexGuard<'_, Map> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Kv::Sled(db) => Ok(db.get(k)?.map(|v| v.to_vec())),
            Kv::Mem(m) => Ok(Self::mem(m).get(k).cloned()),
        }
    }

    pub(crate) fn insert(&self, k: Vec<u8>, v: Vec<u8>) -> Result<(), StoreError> {
        match self {
            Kv::Sled(db) => {
                db.insert(k, v)?;
            }
            Kv::Mem(m) => {
                Self::mem(m).insert(k, v);
            }
        }
        Ok(())
    }

    pub(crate) fn remove(&self, k: &[u8]) -> Result<(), StoreError> {
        match self {
            Kv::Sled(db) => {
                db.remove(k)?;
            }
            Kv::Mem(m) => {
                Self::mem(m).remove(k);
            }
        }
        Ok(())
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub(crate) fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StoreError> {
        match self {
            Kv::Sled(db) => db
                .scan_prefix(prefix)
                .map(|r| {
                    let (k, v) = r?;
                    Ok((k.to_vec(), v.to_vec()))
                })
                .collect(),
            Kv::Mem(m) => Ok(Self::mem(m)
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()),
        }
    }

    /// Entries with `start <= key < end`, in key order, read lazily from
    /// sled (a pull reads only what it sends).
    pub(crate) fn range(&self, start: Vec<u8>, end: Vec<u8>) -> EntryIter<'_> {
        match self {
            Kv::Sled(db) => Box::new(db.range(start..end).map(|r| {
                let (k, v) = r?;
                Ok((k.to_vec(), v.to_vec()))
            })),
            Kv::Mem(m) => {
                let v: Entries = Self::mem(m)
                    .range(start..end)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Box::new(v.into_iter().map(Ok))
            }
        }
    }

    /// Inserts `v` at `k` only if `k` is absent; returns whether it did.
    pub(crate) fn insert_if_absent(&self, k: Vec<u8>, v: Vec<u8>) -> Result<bool, StoreError> {
        match self {
            Kv::Sled(db) => Ok(db
                .compare_and_swap(k, None as Option<&[u8]>, Some(v))?
                .is_ok()),
            Kv::Mem(m) => {
                let mut g = Self::mem(m);
                if g.contains_key(&k) {
                    return Ok(false);
                }
                g.insert(k, v);
                Ok(true)
            }
        }
    }

    /// Replaces `old` at `k` with `new` (`None`: absent), atomically;
    /// returns whether `k` held `old`.
    pub(crate) fn compare_and_swap(
        &self,
        k: Vec<u8>,
        old: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, StoreError> {
        match self {
            Kv::Sled(db) => Ok(db.compare_and_swap(k, old, Some(new))?.is_ok()),
            Kv::Mem(m) => {
                let mut g = Self::mem(m);
                if g.get(&k) != old.as_ref() {
                    return Ok(false);
                }
                g.insert(k, new);
                Ok(true)
            }
        }
    }

    /// Removes `k`, returning what it held: one caller gets each value.
    pub(crate) fn take(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Kv::Sled(db) => Ok(db.remove(k)?.map(|v| v.to_vec())),
            Kv::Mem(m) => Ok(Self::mem(m).remove(k)),
        }
    }

    /// Applies every write of `batch`, atomically.
    pub(crate) fn apply(&self, batch: KvBatch) -> Result<(), StoreError> {
        match self {
            Kv::Sled(db) => {
                let mut b = sled::Batch::default();
                for (k, v) in batch.0 {
                    match v {
                        Some(v) => b.insert(k, v),
                        None => b.remove(k),
                    }
                }
                db.apply_batch(b)?;
            }
            Kv::Mem(m) => {
                let mut g = Self::mem(m);
                for (k, v) in batch.0 {
                    match v {
                        Some(v) => g.insert(k, v),
                        None => g.remove(&k),
                    };
                }
            }
        }
        Ok(())
    }

    /// Makes every write so far durable (a no-op in memory).
    /// Bytes the store takes: on disk for sled (0 if it cannot say), keys
    /// and values in memory otherwise.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Kv::Sled(db) => db.size_on_disk().unwrap_or(0),
            Kv::Mem(m) => Self::mem(m)
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum(),
        }
    }

    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        if let Kv::Sled(db) = self {
            db.flush()?;
        }
        Ok(())
    }
}
