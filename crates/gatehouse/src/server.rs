//! Serving HTTPS: the identity platform routes on one listener, stopped by handle.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use gatehouse_idp::{AppState, Clock, IdpConfig};

use crate::bootstrap::Prepared;

pub struct ServeOptions {
    pub listen: SocketAddr,
    /// The base URL clients use (`https://localhost:{port}` by default).
    pub public_base: Option<String>,
    pub test_clock: bool,
}

pub struct RunningServer {
    pub addr: SocketAddr,
    pub public_base: String,
    pub state: AppState,
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stop accepting, finish in-flight requests (up to 5 s), and wait.
    pub async fn stop(self) -> Result<()> {
        self.handle.graceful_shutdown(Some(Duration::from_secs(5)));
        self.task.await.context("server task")?.context("server")?;
        Ok(())
    }

    pub async fn wait(self) -> Result<()> {
        self.task.await.context("server task")?.context("server")?;
        Ok(())
    }

    pub fn handle(&self) -> Handle<SocketAddr> {
        self.handle.clone()
    }
}

pub async fn start(prepared: Prepared, opts: ServeOptions) -> Result<RunningServer> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tls = RustlsConfig::from_pem_file(&prepared.tls.server_cert, &prepared.tls.server_key)
        .await
        .context("loading the TLS certificate")?;
    let listener = std::net::TcpListener::bind(opts.listen)
        .with_context(|| format!("binding {}", opts.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let public_base = opts
        .public_base
        .unwrap_or_else(|| format!("https://localhost:{}", addr.port()));
    let clock = if opts.test_clock {
        Clock::adjustable()
    } else {
        Clock::system()
    };
    let state = AppState::new(
        prepared.store,
        prepared.directory,
        prepared.keyring,
        prepared.secrets,
        IdpConfig::new(public_base.clone()),
        clock,
    )?;
    let app = gatehouse_idp::router(state.clone()).merge(gatehouse_graph::router(state.clone()));
    let handle = Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle.clone());
    let task = tokio::spawn(async move { server.serve(app.into_make_service()).await });
    Ok(RunningServer {
        addr,
        public_base,
        state,
        handle,
        task,
    })
}
