//! A local CA and a `localhost` / `127.0.0.1` certificate, created once and kept, so
//! that clients trust `<data-dir>/tls/ca.pem` across restarts.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

pub fn ensure(dir: &Path) -> Result<TlsFiles> {
    let files = TlsFiles {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server-key.pem"),
    };
    if files.ca_cert.exists() && files.server_cert.exists() && files.server_key.exists() {
        return Ok(files);
    }
    fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "Gatehouse local CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "Gatehouse");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let ca_cert = ca.self_signed(&ca_key)?;

    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().context("ip")?));
    leaf.subject_alt_names
        .push(SanType::IpAddress("::1".parse().context("ip")?));
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.not_after = rcgen::date_time_ymd(2027, 12, 1);
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    write_private(&dir.join("ca-key.pem"), &ca_key.serialize_pem())?;
    write_private(&files.server_key, &leaf_key.serialize_pem())?;
    fs::write(
        &files.server_cert,
        format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
    )?;
    fs::write(&files.ca_cert, ca_cert.pem())?;
    Ok(files)
}

/// Write a secret file readable by the owner only.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}
