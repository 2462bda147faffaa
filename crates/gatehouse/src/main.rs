//! `gatehouse`: serve, demo, explain.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use gatehouse::bootstrap::{DataDir, read_credentials};
use gatehouse::{ServeOptions, prepare, start};
use serde_json::{Value, json};
use time::OffsetDateTime;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "An offline Microsoft identity platform and Graph authorization layer that explains every denial."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Where Gatehouse keeps its database, keys and certificates.
    #[arg(long, env = "GATEHOUSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Base URL clients use; default https://localhost:{port}.
    #[arg(long)]
    public_url: Option<String>,
    /// Tenant file used on first start instead of the demo tenant (docs/tenant-file.md).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Common {
    fn data_dir(&self) -> DataDir {
        DataDir::new(self.data_dir.clone().unwrap_or_else(DataDir::default_path))
    }
    fn base(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("https://localhost:{}", self.listen.port()))
            .trim_end_matches('/')
            .to_owned()
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the identity platform over HTTPS.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Let tests move the clock (POST /_gatehouse/clock). Never in production.
        #[arg(long)]
        test_clock: bool,
    },
    /// Print the demo tenant: ids, users, apps and their credentials.
    Demo {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        json: bool,
    },
    /// Explain a real Entra token, request and error, offline.
    Doctor(gatehouse::doctor::DoctorArgs),
    /// Explain a denial by its request id (trace id), from the server's records.
    Explain {
        request_id: String,
        #[arg(long, env = "GATEHOUSE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { common, test_clock } => serve(common, test_clock).await,
        Command::Demo { common, json } => demo(common, json).await,
        Command::Explain {
            request_id,
            data_dir,
            json,
        } => explain(request_id, data_dir, json).await,
        Command::Doctor(args) => {
            let code =
                gatehouse::doctor::run(args, OffsetDateTime::now_utc().unix_timestamp()).await?;
            std::process::exit(code);
        }
    }
}

async fn serve(common: Common, test_clock: bool) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_ansi(false)
        .with_target(true)
        .init();
    let data = common.data_dir();
    let prepared = prepare(&data, common.config.as_deref(), OffsetDateTime::now_utc()).await?;
    let tid = prepared.directory.tenant.id;
    let domain = prepared.directory.tenant.domain.clone();
    let ca = prepared.tls.ca_cert.clone();
    let created = prepared.created;
    let running = start(
        prepared,
        ServeOptions {
            listen: common.listen,
            public_base: common.public_url.clone(),
            test_clock,
        },
    )
    .await?;
    let base = running.public_base.clone();
    println!(
        "Gatehouse is serving on {base} (listening on {})",
        running.addr
    );
    println!(
        "  tenant     {tid} ({domain}){}",
        if created { ", created just now" } else { "" }
    );
    println!("  authority  {base}/{tid}");
    println!("  discovery  {base}/{tid}/v2.0/.well-known/openid-configuration");
    println!("  data       {}", data.root.display());
    println!(
        "  CA         {}   (trust it: export REQUESTS_CA_BUNDLE=… SSL_CERT_FILE=… NODE_EXTRA_CA_CERTS={})",
        ca.display(),
        ca.display()
    );
    println!(
        "MSAL Python:     msal.ConfidentialClientApplication(client_id, client_credential=secret, authority=\"{base}/{tid}\", instance_discovery=False)"
    );
    println!(
        "azure-identity:  ClientSecretCredential(\"{tid}\", client_id, secret, authority=\"{base}\", disable_instance_discovery=True, connection_verify=\"{}\")",
        ca.display()
    );
    println!(
        "msal-node:       {{ auth: {{ clientId, authority: \"{base}/{tid}\", knownAuthorities: [\"{}\"] }} }}",
        base.trim_start_matches("https://")
    );
    println!(
        "Demo users and app credentials: gatehouse demo --data-dir {}",
        data.root.display()
    );
    let handle = running.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    running.wait().await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn demo(common: Common, as_json: bool) -> Result<()> {
    let data = common.data_dir();
    let prepared = prepare(&data, common.config.as_deref(), OffsetDateTime::now_utc()).await?;
    let creds = read_credentials(&data)?;
    let dir = &prepared.directory;
    let base = common.base();
    let tid = dir.tenant.id;
    let mut apps = serde_json::Map::new();
    for (key, a) in &creds.apps {
        let mut o = serde_json::Map::new();
        o.insert("client_id".into(), a.client_id.to_string().into());
        o.insert("object_id".into(), a.object_id.to_string().into());
        o.insert(
            "service_principal_id".into(),
            a.service_principal_id.to_string().into(),
        );
        o.insert("display_name".into(), a.display_name.clone().into());
        if let Some(s) = &a.client_secret {
            o.insert("client_secret".into(), s.clone().into());
        }
        if let Some(r) = &a.redirect_uri {
            o.insert("redirect_uri".into(), r.clone().into());
        }
        if let Some(s) = &a.scope {
            o.insert("scope".into(), s.clone().into());
        }
        if a.certificate_pem.is_some() {
            o.insert(
                "certificate_path".into(),
                data.credentials()
                    .join(format!("{key}.pem"))
                    .display()
                    .to_string()
                    .into(),
            );
            o.insert(
                "private_key_path".into(),
                data.credentials()
                    .join(format!("{key}-key.pem"))
                    .display()
                    .to_string()
                    .into(),
            );
            o.insert(
                "certificate_only_path".into(),
                data.credentials()
                    .join(format!("{key}-cert.pem"))
                    .display()
                    .to_string()
                    .into(),
            );
        }
        if let Some(t) = &a.certificate_thumbprint {
            o.insert("certificate_thumbprint".into(), t.clone().into());
        }
        if let Some(app) = dir.application_by_app_id(a.client_id) {
            let granted: Vec<Value> = dir
                .service_principal_by_app_id(a.client_id)
                .map(|sp| {
                    dir.app_role_assignments
                        .iter()
                        .filter(|x| x.principal_id == sp.id)
                        .filter_map(|x| {
                            dir.service_principal(x.resource_id)
                                .and_then(|r| dir.offered_app_role(r, x.app_role_id))
                        })
                        .map(|p| Value::from(p.value))
                        .collect()
                })
                .unwrap_or_default();
            o.insert("application_permissions".into(), granted.into());
            o.insert(
                "public_client_flows".into(),
                app.is_fallback_public_client.into(),
            );
        }
        apps.insert(key.clone(), Value::Object(o));
    }
    let users: serde_json::Map<String, Value> = creds
        .users
        .iter()
        .map(|(k, u)| {
            (
                k.clone(),
                json!({"username": u.username, "password": u.password, "object_id": u.object_id.to_string(), "display_name": u.display_name, "roles": u.roles, "licenses": u.licenses}),
            )
        })
        .collect();
    let out = json!({
        "tenant_id": tid.to_string(),
        "domain": dir.tenant.domain,
        "authority_host": base,
        "authority": format!("{base}/{tid}"),
        "graph_base_url": format!("{base}/v1.0"),
        "discovery_url": format!("{base}/{tid}/v2.0/.well-known/openid-configuration"),
        "ca_cert": prepared.tls.ca_cert.display().to_string(),
        "data_dir": data.root.display().to_string(),
        "apps": apps,
        "users": users,
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "Tenant {} ({})\nAuthority {}/{}\nCA {}\n",
        tid,
        dir.tenant.domain,
        base,
        tid,
        prepared.tls.ca_cert.display()
    );
    println!("Users:");
    for (k, u) in &creds.users {
        println!(
            "  {k:<11} {:<42} password {}  roles {:?} licences {:?}",
            u.username, u.password, u.roles, u.licenses
        );
    }
    println!("\nApps:");
    for (k, a) in &creds.apps {
        println!(
            "  {k:<11} client_id {}  {}{}",
            a.client_id,
            a.client_secret
                .as_deref()
                .map(|s| format!("secret {s}"))
                .unwrap_or_else(|| "public client".into()),
            a.redirect_uri
                .as_deref()
                .map(|r| format!("  redirect {r}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn explain(request_id: String, data_dir: Option<PathBuf>, as_json: bool) -> Result<()> {
    let data = DataDir::new(data_dir.unwrap_or_else(DataDir::default_path));
    if !data.database().exists() {
        bail!("no Gatehouse data in {}", data.root.display());
    }
    let store = gatehouse_store::Store::open_sqlite(&data.database()).await?;
    let Some(body) = store.denial(&request_id).await? else {
        bail!("no denial was recorded with request id {request_id}");
    };
    let v: Value = serde_json::from_str(&body).context("stored explanation")?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    println!("Request {}  ({} endpoint)", s("request_id"), s("endpoint"));
    println!("Cause   {}: {}", s("cause"), s("summary"));
    println!("Guide   {}", s("guide"));
    if let Some(w) = v.get("wire") {
        println!(
            "Sent    HTTP {} {} {}",
            w.get("status").unwrap_or(&Value::Null),
            w.get("error").and_then(Value::as_str).unwrap_or(""),
            w.get("message").and_then(Value::as_str).unwrap_or("")
        );
    }
    println!("Evidence:");
    for f in v
        .get("evidence")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "  - {}: {}",
            f.get("name").and_then(Value::as_str).unwrap_or(""),
            f.get("value").and_then(Value::as_str).unwrap_or("")
        );
    }
    println!("Fix:");
    for f in v.get("fix").and_then(Value::as_array).into_iter().flatten() {
        let url = f
            .get("url")
            .and_then(Value::as_str)
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        println!(
            "  - {}{url}",
            f.get("text").and_then(Value::as_str).unwrap_or("")
        );
    }
    Ok(())
}
