//! Content-addressed blob store over `object_store`: a local directory by default, or an
//! S3-compatible bucket (shared by relayer replicas). A blob's key is `<kind>/<keccak256 hex>`.

use std::{path::Path, sync::Arc};

use alloy_primitives::{B256, keccak256};
use bytes::Bytes;
use object_store::{
    ObjectStore, ObjectStoreExt, PutPayload, local::LocalFileSystem, path::Path as ObjectPath,
};

use crate::config::{BlobStoreConfig, RelayerConfig};

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The backend failed.
    #[error("blob store error: {0}")]
    Store(#[from] object_store::Error),
    /// The local directory could not be created.
    #[error("cannot create blob directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stored blob's bytes do not hash to its name.
    #[error("blob {0} is corrupt: its bytes hash to another keccak256")]
    Corrupt(B256),
}

/// The kinds of blobs, each under its own key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// Task args documents.
    Args,
    /// Result PNGs.
    Png,
    /// Text outputs (JSON).
    Text,
}

impl BlobKind {
    /// Key prefix and stored kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Args => "args",
            Self::Png => "png",
            Self::Text => "text",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Args, Self::Png, Self::Text]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// MIME type the blob is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Args => "application/octet-stream",
            Self::Png => "image/png",
            Self::Text => "application/json",
        }
    }
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
}

impl BlobStore {
    /// A local directory (created when missing).
    pub fn local(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(|source| BlobError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new_with_prefix(dir)?),
        })
    }

    /// Any `object_store` backend (tests, custom deployments).
    pub fn from_object_store(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// The store the configuration names.
    pub fn from_config(config: &RelayerConfig) -> Result<Self, BlobError> {
        match &config.blobs {
            BlobStoreConfig::Local { .. } => {
                let dir = config
                    .local_blob_dir()
                    .unwrap_or_else(|| config.data_dir.join("blobs"));
                Self::local(&dir)
            }
            BlobStoreConfig::S3 {
                bucket,
                region,
                endpoint,
                access_key_id,
                secret_access_key,
                allow_http,
                prefix,
            } => {
                // reqwest's rustls is built without a provider: use ring (no aws-lc-rs). An
                // error means a provider is already installed, which serves as well.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_allow_http(*allow_http);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(key) = access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                let s3: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
                let store: Arc<dyn ObjectStore> = match prefix {
                    Some(prefix) => {
                        Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.as_str()))
                    }
                    None => s3,
                };
                Ok(Self { store })
            }
        }
    }

    fn key(kind: BlobKind, keccak: &B256) -> ObjectPath {
        ObjectPath::from(format!("{}/{}", kind.as_str(), hex_name(keccak)))
    }

    /// Writes `bytes` under their keccak256 (idempotent) and returns it.
    ///
    /// Content-addressed, so a blob already stored with the same size is not written again:
    /// agreeing nodes on one GPU model upload identical PNGs, and rewriting a file in place costs
    /// far more than a metadata lookup (on ext4 a rename over an existing file forces a
    /// writeback). A stored blob that has rotted is caught by [`get`](Self::get)'s hash check.
    pub async fn put(&self, kind: BlobKind, bytes: Bytes) -> Result<B256, BlobError> {
        let keccak = keccak256(&bytes);
        let key = Self::key(kind, &keccak);
        match self.store.head(&key).await {
            Ok(meta) if meta.size == bytes.len() as u64 => return Ok(keccak),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        self.store.put(&key, PutPayload::from_bytes(bytes)).await?;
        Ok(keccak)
    }

    /// How many blobs the store holds (under its prefix): lists every object, so it is for
    /// operators' checks and tests, not for request paths.
    pub async fn count(&self) -> Result<usize, BlobError> {
        use futures_util::TryStreamExt;
        let mut count = 0;
        let mut objects = self.store.list(None);
        while objects.try_next().await?.is_some() {
            count += 1;
        }
        Ok(count)
    }

    /// Reads a blob, checking that its bytes still hash to its name.
    pub async fn get(&self, kind: BlobKind, keccak: B256) -> Result<Bytes, BlobError> {
        let bytes = self
            .store
            .get(&Self::key(kind, &keccak))
            .await?
            .bytes()
            .await?;
        if keccak256(&bytes) != keccak {
            return Err(BlobError::Corrupt(keccak));
        }
        Ok(bytes)
    }
}

fn hex_name(keccak: &B256) -> String {
    hex_lower(keccak.as_slice())
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test]
    async fn a_stored_blob_is_not_rewritten_but_a_damaged_one_is() {
        let memory = Arc::new(InMemory::new());
        let blobs = BlobStore::from_object_store(memory.clone());
        let bytes = Bytes::from_static(b"\x89PNG pretend");
        let keccak = blobs.put(BlobKind::Png, bytes.clone()).await.unwrap();
        assert_eq!(keccak, keccak256(&bytes));
        let key = BlobStore::key(BlobKind::Png, &keccak);
        let first = memory.head(&key).await.unwrap();

        // The same content again: nothing is written (the stored object keeps its version).
        assert_eq!(
            blobs.put(BlobKind::Png, bytes.clone()).await.unwrap(),
            keccak
        );
        assert_eq!(memory.head(&key).await.unwrap().e_tag, first.e_tag);

        // A truncated object (size differs) is replaced by the next put of its content.
        memory
            .put(&key, PutPayload::from_static(b"\x89PNG"))
            .await
            .unwrap();
        assert!(matches!(
            blobs.get(BlobKind::Png, keccak).await,
            Err(BlobError::Corrupt(_))
        ));
        blobs.put(BlobKind::Png, bytes.clone()).await.unwrap();
        assert_eq!(blobs.get(BlobKind::Png, keccak).await.unwrap(), bytes);
    }
}
