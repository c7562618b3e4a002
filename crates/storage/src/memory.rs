use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::{Error, ErrorKind, ObjectInfo, ObjectKey, Result, Storage};

/// Objects in a map, for tests and for measuring the engine without I/O.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: RwLock<BTreeMap<ObjectKey, std::sync::Arc<Vec<u8>>>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

const NAME: &str = "memory storage";

impl Storage for MemoryStorage {
    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<()> {
        let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
        objects.insert(key.clone(), std::sync::Arc::new(data.to_vec()));
        Ok(())
    }

    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        match objects.get(key) {
            Some(data) => Ok(data.as_ref().clone()),
            None => Err(Error::not_found("get", key, NAME)),
        }
    }

    fn get_range(&self, key: &ObjectKey, offset: u64, length: u64) -> Result<Vec<u8>> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let data = objects.get(key).ok_or_else(|| Error::not_found("get_range", key, NAME))?;
        let end = offset.checked_add(length).filter(|&end| end <= data.len() as u64);
        match end {
            Some(end) => Ok(data[offset as usize..end as usize].to_vec()),
            None => Err(Error::new(
                ErrorKind::OutOfRange,
                "get_range",
                key,
                NAME,
                format!("range {offset}+{length} past the end ({} bytes)", data.len()),
            )),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        Ok(objects
            .iter()
            .filter(|(key, _)| key.as_str().starts_with(prefix))
            .map(|(key, data)| ObjectInfo { key: key.clone(), size_bytes: data.len() as u64 })
            .collect())
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.objects.write().unwrap_or_else(|e| e.into_inner()).remove(key);
        Ok(())
    }

    fn stat(&self, key: &ObjectKey) -> Result<ObjectInfo> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        match objects.get(key) {
            Some(data) => Ok(ObjectInfo { key: key.clone(), size_bytes: data.len() as u64 }),
            None => Err(Error::not_found("stat", key, NAME)),
        }
    }

    fn describe(&self) -> String {
        NAME.to_string()
    }
}
