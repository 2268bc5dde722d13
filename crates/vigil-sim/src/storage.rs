//! The simulated devices' storage.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use vigil_device::{Batch, Entries, Storage, StorageError};

/// Storage shared between a device's successive incarnations: `apply`
/// returns only once the batch is in, so a crash (dropping the vault) loses
/// exactly what was never acknowledged.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedStorage(Arc<Mutex<Stored>>);

/// Keys, named blobs, tombstone.
type Stored = (
    BTreeMap<Vec<u8>, Vec<u8>>,
    BTreeMap<String, Vec<u8>>,
    Option<Vec<u8>>,
);

impl Storage for SharedStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .get(key)
            .cloned())
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StorageError> {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(g.0
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn apply(&mut self, batch: Batch) -> Result<(), StorageError> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (k, v) in batch.ops() {
            match v {
                Some(v) => g.0.insert(k.clone(), v.clone()),
                None => g.0.remove(k),
            };
        }
        Ok(())
    }
    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .get(name)
            .cloned())
    }
    fn put_blob(&mut self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .insert(name.into(), value.to_vec());
        Ok(())
    }
    fn tombstone(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).2.clone())
    }
    fn put_tombstone(&mut self, value: &[u8]) -> Result<(), StorageError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).2 = Some(value.to_vec());
        Ok(())
    }
    fn destroy(self: Box<Self>) -> Result<(), StorageError> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.0.clear();
        g.1.clear();
        Ok(())
    }
}

impl SharedStorage {
    /// Drops every key `lose` says, as a device that loses part of its
    /// store would (the harness's injected bugs).
    pub(crate) fn lose_keys(&self, lose: impl Fn(&[u8]) -> bool) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.0.retain(|k, _| !lose(k));
    }
}
