//! First start and every start: the data directory with its database, hashing key,
//! signing key, TLS files and tenant.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_jose::secrets::SecretHasher;
use gatehouse_jose::{Keyring, SigningKey, assertion, password, random};
use gatehouse_model::tenant_file::{
    CredentialFactory, GeneratedCertificate, IssuedCredentials, TenantFile,
};
use gatehouse_model::{Directory, DirectoryError};
use gatehouse_store::Store;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::tls::{self, TlsFiles, write_private};

pub const DEMO_TENANT: &str = include_str!("../tenants/demo.toml");

pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// `$GATEHOUSE_DATA_DIR`, else `$XDG_DATA_HOME/gatehouse`, else `~/.local/share/gatehouse`.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("GATEHOUSE_DATA_DIR") {
            return PathBuf::from(p);
        }
        if let Some(p) = std::env::var_os("XDG_DATA_HOME") {
            return PathBuf::from(p).join("gatehouse");
        }
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".local/share/gatehouse"),
            None => PathBuf::from(".gatehouse"),
        }
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("gatehouse.db")
    }
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }
    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials")
    }
    pub fn credentials_file(&self) -> PathBuf {
        self.credentials().join("issued.json")
    }
}

pub struct Prepared {
    pub store: Store,
    pub directory: Directory,
    pub keyring: Keyring,
    pub secrets: SecretHasher,
    pub tls: TlsFiles,
    pub created: bool,
}

struct Factory<'a> {
    hasher: &'a SecretHasher,
    now: OffsetDateTime,
}

fn iso(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl CredentialFactory for Factory<'_> {
    fn new_id(&mut self) -> Uuid {
        Uuid::new_v4()
    }
    fn random_secret(&mut self) -> String {
        random::client_secret()
    }
    fn random_password(&mut self) -> String {
        random::password()
    }
    fn hash_password(&mut self, p: &str) -> Result<String, DirectoryError> {
        password::hash(p).map_err(|e| DirectoryError::Invalid(e.to_string()))
    }
    fn hash_secret(&mut self, s: &str) -> String {
        self.hasher.hash(s)
    }
    fn certificate(&mut self, subject: &str) -> Result<GeneratedCertificate, DirectoryError> {
        let c = assertion::generate_client_certificate(subject)
            .map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        Ok(GeneratedCertificate {
            der_base64: c.der_base64,
            thumbprint_sha1_b64url: c.thumbprint_sha1_b64url,
            thumbprint_sha1_hex: c.thumbprint_sha1_hex,
            certificate_pem: c.certificate_pem,
            private_key_pem: c.private_key_pem,
        })
    }
    fn now(&self) -> (String, i64) {
        (iso(self.now), self.now.unix_timestamp())
    }
    fn years_from_now(&self, years: i64) -> (String, i64) {
        let t = self.now + time::Duration::days(365 * years);
        (iso(t), t.unix_timestamp())
    }
}

pub fn parse_tenant_file(text: &str) -> Result<TenantFile> {
    toml::from_str(text).map_err(|e| anyhow!("tenant file: {e}"))
}

/// Open or create everything under `data`. `tenant_file` is used only on first start.
pub async fn prepare(
    data: &DataDir,
    tenant_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Prepared> {
    fs::create_dir_all(&data.root).with_context(|| format!("creating {}", data.root.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(&data.root, fs::Permissions::from_mode(0o700));
    }
    let store = Store::open_sqlite(&data.database()).await?;
    let key_b64 = store
        .meta_init("secret_hash_key", &STANDARD.encode(random::bytes::<32>()))
        .await?;
    let secrets = SecretHasher::new(&STANDARD.decode(key_b64).context("secret_hash_key")?);

    let mut materials = store.signing_keys().await?;
    if materials.is_empty() {
        let (_, m) = SigningKey::generate(now.unix_timestamp())?;
        store.insert_signing_key(&m).await?;
        materials = store.signing_keys().await?;
    }
    let keys = materials
        .iter()
        .map(SigningKey::from_material)
        .collect::<Result<Vec<_>, _>>()?;
    let keyring = Keyring::new(keys).ok_or_else(|| anyhow!("no signing key"))?;

    let (directory, created) = match store.load_directory().await? {
        Some((d, _)) => (d, false),
        None => {
            let text = match tenant_file {
                Some(p) => {
                    fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
                }
                None => DEMO_TENANT.to_owned(),
            };
            let file = parse_tenant_file(&text)?;
            let mut factory = Factory {
                hasher: &secrets,
                now,
            };
            let (dir, creds) = file.build(&mut factory)?;
            store.save_directory(&dir).await?;
            write_credentials(data, &creds)?;
            (dir, true)
        }
    };
    let tls = tls::ensure(&data.tls())?;
    Ok(Prepared {
        store,
        directory,
        keyring,
        secrets,
        tls,
        created,
    })
}

fn write_credentials(data: &DataDir, creds: &IssuedCredentials) -> Result<()> {
    fs::create_dir_all(data.credentials())?;
    for (key, app) in &creds.apps {
        if let (Some(cert), Some(private)) = (&app.certificate_pem, &app.private_key_pem) {
            write_private(
                &data.credentials().join(format!("{key}.pem")),
                &format!("{private}{cert}"),
            )?;
            write_private(&data.credentials().join(format!("{key}-key.pem")), private)?;
            fs::write(data.credentials().join(format!("{key}-cert.pem")), cert)?;
        }
    }
    write_private(
        &data.credentials_file(),
        &serde_json::to_string_pretty(creds)?,
    )
}

pub fn read_credentials(data: &DataDir) -> Result<IssuedCredentials> {
    let text = fs::read_to_string(data.credentials_file())
        .with_context(|| format!("reading {}", data.credentials_file().display()))?;
    Ok(serde_json::from_str(&text)?)
}
