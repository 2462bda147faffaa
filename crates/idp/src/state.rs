//! Shared server state: the store, a cached read view of the directory, keys,
//! templates and configuration.

use std::sync::{Arc, RwLock};

use gatehouse_jose::Keyring;
use gatehouse_jose::secrets::SecretHasher;
use gatehouse_model::Directory;
use gatehouse_store::Store;

use crate::clock::Clock;

#[derive(Clone, Debug)]
pub struct IdpConfig {
    /// `https://localhost:8443`: issuer and endpoint URLs are built from it, never from the request.
    pub public_base: String,
    /// Failed passwords before lockout, and for how long (Entra smart lockout: 10, 60 s).
    pub lockout_threshold: i64,
    pub lockout_seconds: i64,
}

impl IdpConfig {
    pub fn new(public_base: impl Into<String>) -> Self {
        Self {
            public_base: public_base.into().trim_end_matches('/').to_owned(),
            lockout_threshold: 10,
            lockout_seconds: 60,
        }
    }

    pub fn login_host(&self) -> &str {
        self.public_base
            .strip_prefix("https://")
            .or_else(|| self.public_base.strip_prefix("http://"))
            .unwrap_or(&self.public_base)
    }
}

pub struct Inner {
    pub store: Store,
    directory: RwLock<Arc<Directory>>,
    pub keyring: Keyring,
    pub secrets: SecretHasher,
    pub config: IdpConfig,
    pub clock: Clock,
    pub pages: crate::pages::Pages,
    writer: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Store,
        directory: Directory,
        keyring: Keyring,
        secrets: SecretHasher,
        config: IdpConfig,
        clock: Clock,
    ) -> Result<Self, minijinja::Error> {
        Ok(AppState(Arc::new(Inner {
            store,
            directory: RwLock::new(Arc::new(directory)),
            keyring,
            secrets,
            config,
            clock,
            pages: crate::pages::Pages::new()?,
            writer: tokio::sync::Mutex::new(()),
        })))
    }

    /// A consistent snapshot of the directory for one request.
    pub fn directory(&self) -> Arc<Directory> {
        match self.directory.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Apply a change, persist it, and publish the new snapshot.
    pub async fn update_directory<F>(
        &self,
        change: F,
    ) -> Result<Arc<Directory>, gatehouse_store::StoreError>
    where
        F: FnOnce(&mut Directory),
    {
        // One writer at a time, so no change is lost between read and publish.
        let _guard = self.writer.lock().await;
        let mut next = (*self.directory()).clone();
        change(&mut next);
        self.store.save_directory(&next).await?;
        let next = Arc::new(next);
        match self.directory.write() {
            Ok(mut d) => *d = next.clone(),
            Err(poisoned) => *poisoned.into_inner() = next.clone(),
        }
        Ok(next)
    }
}
