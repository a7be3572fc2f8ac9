//! # server — the `teleinfo serve` application
//!
//! One process with an embedded store ([`store`]) and no other server to run:
//! - **ingest**: device uplink (`POST /api/v1/uplink`, `uplink` wire format, bearer token per
//!   device, idempotent, acked only once durable), OpenTSDB `put` over HTTP and telnet, local
//!   serial ports and file import (through [`ingest::Ingest`]);
//! - **reads**: a JSON API (`/api/v1/…`, described by `/api/v1/openapi.json`), a live stream
//!   (Server-Sent Events), the OpenTSDB read API Grafana's datasource uses, and `/metrics`.
//!
//! See `docs/server.md` (running it), `docs/api.md` (endpoints) and `docs/series.md` (how TIC
//! labels become series).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod client;
pub mod config;
pub mod dashboard;
pub mod dashboard_api;
pub mod devices;
pub mod error;
pub mod frame;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod put;
pub mod read;
pub mod tsdb;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use store::{Store, StoreConfig};
use tokio::net::TcpListener;

pub use config::Config;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The store could not be opened.
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        /// The data directory.
        dir: String,
        /// Why.
        source: store::StoreError,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The store file inside a data directory.
pub fn store_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("store.db")
}

/// Opens the store of a data directory (the CLI's import/export use it too).
pub fn open_store(data_dir: &std::path::Path) -> Result<Store, StartError> {
    Store::open(store_path(data_dir), StoreConfig::default()).map_err(|source| StartError::Store {
        dir: data_dir.display().to_string(),
        source,
    })
}

/// A bound, ready-to-run server.
pub struct Server {
    state: app::Shared,
    http: TcpListener,
    telnet: Option<TcpListener>,
}

impl Server {
    /// Validates the config, opens the store and binds the listeners.
    pub async fn bind(cfg: Config) -> Result<Server, StartError> {
        cfg.validate()?;
        let http_addr = cfg.listen_addr()?;
        let telnet_addr = cfg.telnet_addr()?;
        let dir = cfg.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || open_store(&dir))
            .await
            .map_err(|e| StartError::Bind {
                addr: http_addr,
                source: std::io::Error::other(e.to_string()),
            })??;
        let store = Arc::new(store);
        let live = Arc::new(live::Live::default());
        let http = TcpListener::bind(http_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: http_addr,
                source,
            })?;
        let telnet = match telnet_addr {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .map_err(|source| StartError::Bind { addr: a, source })?,
            ),
            None => None,
        };
        let state = Arc::new(app::AppState {
            allow: cfg.allow_list()?,
            devices: devices::Devices::open(&cfg.data_dir),
            ingest: Arc::new(ingest::Ingest::new(store.clone(), live.clone())),
            live_streams: Arc::new(tokio::sync::Semaphore::new(cfg.limits.max_live_streams)),
            store,
            live,
            counters: app::Counters::default(),
            started_ms: app::now_ms(),
            tsdb_ids: Default::default(),
            shutdown: tokio::sync::watch::channel(false).0,
            cfg,
        });
        // MQTT and forwarders (crates/integrations): every ingested frame goes out too.
        if !state.cfg.outputs().is_empty() {
            let out = integrations::Outputs::start(&state.cfg.outputs(), &state.cfg.data_dir)
                .map_err(|message| config::ConfigError::Invalid {
                    key: "mqtt / forward",
                    message,
                })?;
            state.ingest.set_outputs(Arc::new(out));
        }
        Ok(Server {
            state,
            http,
            telnet,
        })
    }

    /// The bound HTTP address (useful with port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }

    /// The bound telnet address.
    pub fn telnet_addr(&self) -> Option<SocketAddr> {
        self.telnet.as_ref().and_then(|t| t.local_addr().ok())
    }

    /// The shared state (the serial input and tests use it).
    pub fn state(&self) -> app::Shared {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests and
    /// telnet sessions finish, and checkpoints the store.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let st = self.state.clone();
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(t) = self.telnet {
            tasks.spawn(put::telnet_serve(st.clone(), t, st.shutdown.subscribe()));
        }
        // Each meter's latest reading, from the archive, without delaying the first request.
        let restore = st.ingest.clone();
        tasks.spawn(async move {
            match tokio::task::spawn_blocking(move || restore.restore_latest()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("latest frame of {n} devices restored"),
                // Live views then fill as frames arrive; the archive itself is untouched.
                Err(e) => tracing::warn!("restoring the latest frames failed: {e}"),
            }
        });
        let maint = st.clone();
        let mut sd = st.shutdown.subscribe();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            let mut n: u64 = 0;
            loop {
                tokio::select! {
                    _ = sd.changed() => break,
                    _ = tick.tick() => {}
                }
                n += 1;
                let s = maint.store.clone();
                let retention = n.is_multiple_of(360);
                let r = tokio::task::spawn_blocking(move || {
                    s.maintenance()?;
                    if retention {
                        s.apply_retention(app::now_ms())?;
                    }
                    Ok::<_, store::StoreError>(())
                })
                .await;
                if let Ok(Err(e)) = r {
                    tracing::warn!("store maintenance failed (will retry): {e}");
                }
            }
        });
        let router = app::router(st.clone());
        let sd_tx = st.shutdown.clone();
        let graceful = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests and flushing the store");
            let _ = sd_tx.send(true);
        };
        axum::serve(
            self.http,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(graceful)
        .await?;
        let _ = st.shutdown.send(true);
        while tasks.join_next().await.is_some() {}
        if let Some(out) = st.ingest.outputs() {
            out.close().await;
        }
        let s = st.store.clone();
        match tokio::task::spawn_blocking(move || s.compact()).await {
            Ok(Ok(())) => tracing::info!("store flushed"),
            Ok(Err(e)) => {
                tracing::warn!("final checkpoint failed; the data is safe in the head log: {e}")
            }
            Err(e) => tracing::warn!("final checkpoint did not run: {e}"),
        }
        Ok(())
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Installs the log subscriber (`level`: error, warn, info, debug, trace) on standard error.
pub fn init_logging(level: &str) -> Result<(), String> {
    let lvl: tracing::Level = level
        .parse()
        .map_err(|_| format!("log level {level:?}: use error, warn, info, debug or trace"))?;
    tracing_subscriber::fmt()
        .with_max_level(lvl)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| e.to_string())
}

/// A multi-threaded runtime for the CLI's async commands (the CLI's `main` is synchronous).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("teleinfo")
        .build()
}
