//! The accept loop: TLS handshakes off the accept path, HTTP/1.1 and HTTP/2, and a graceful
//! shutdown that stops accepting, lets requests and actions finish, then exits.

use std::sync::Arc;
use std::time::Duration;

use drydock_api::{ApiSettings, AppState};
use drydock_jobs::{Clock, DiskPolicy, EventSink, JobSettings, Jobs, Scheduler, SchedulerSettings};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::DataDirLock;

/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections get this long to finish their requests at shutdown.
const CONNECTION_DRAIN: Duration = Duration::from_secs(10);

/// Serves until SIGTERM or SIGINT. `ready` is called with the bound address once listening.
pub async fn run(config: Config, ready: impl FnOnce(&Config, std::net::SocketAddr)) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::io(format!("creating data directory {}", config.data_dir.display()), e))?;
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    std::fs::create_dir_all(config.data_dir.join("disks")).map_err(|e| Error::io("creating the disks directory", e))?;
    let catalog = Arc::new(crate::open_catalog(&config)?);
    let regions = crate::open_regions(&config)?;
    let settings = JobSettings {
        workers: config.workers,
        disks: DiskPolicy { allowed_roots: config.disk_roots.clone() },
        scratch_dir: config.scratch_dir(),
    };
    let jobs = Jobs::new(catalog.clone(), regions.clone(), settings);
    let node = node_name();
    // A shared catalog's running actions belong to the daemons that run them, which take over
    // each other's when one dies; a catalog of its own holds only what this daemon left.
    let leases = if catalog.is_shared() {
        catalog.set_worker(&node, config.worker_lease)?;
        tracing::info!("sharing {} as worker {node}", catalog.describe());
        Some(jobs.spawn_leases(config.worker_lease))
    } else {
        recover(&jobs).await?;
        None
    };
    for spec in regions.specs() {
        let regions = regions.clone();
        let slug = spec.slug.clone();
        let opened = tokio::task::spawn_blocking(move || regions.repository(&slug).map(|_| ())).await;
        if let Ok(Err(e)) = opened {
            tracing::error!("region {} is unavailable: {e}", spec.slug);
        }
    }

    let speed = config.scheduler.clock_speed;
    let clock = if speed == 1.0 { Clock::system() } else { Clock::fast(speed, config.scheduler.clock_epoch) };
    let webhooks = Arc::new(crate::webhooks::Webhooks::start(&config.webhooks)?);
    let scheduler = Scheduler::new(
        jobs.clone(),
        clock.clone(),
        webhooks.clone() as Arc<dyn EventSink>,
        scheduler_settings(&config, &node),
    );
    let scheduling = config.scheduler.enabled.then(|| scheduler.spawn());

    let tls = if config.plain_http { None } else { Some(crate::tls::acceptor(&config)?) };
    let api_settings = ApiSettings {
        scheme: if tls.is_some() { "https" } else { "http" },
        rate_limit_per_hour: config.rate_limit_per_hour,
        prices: config.prices.clone(),
        ..ApiSettings::default()
    };
    let app = drydock_api::app(AppState::new(catalog, jobs.clone(), api_settings).with_clock(clock))
        .layer(axum::middleware::from_fn(crate::body::read_to_end));
    let listener =
        TcpListener::bind(config.listen).await.map_err(|e| Error::io(format!("listening on {}", config.listen), e))?;
    let local = listener.local_addr().map_err(|e| Error::io("reading the listening address", e))?;
    ready(&config, local);

    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection.into_owned()).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, "tls handshake failed: {e}"),
                    Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                },
                None => {
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection.into_owned()).await;
                }
            }
        });
    }
    tracing::info!("shutting down: no new connections; waiting for requests and actions to finish");
    drop(listener);
    if tokio::time::timeout(CONNECTION_DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open after {CONNECTION_DRAIN:?}");
    }
    // No new backups from here on; running ones get the grace period like every action.
    if let Some(scheduling) = scheduling {
        scheduling.abort();
    }
    jobs.shutdown(config.shutdown_grace).await;
    if let Some(leases) = leases {
        leases.abort();
    }
    // Events of the last backups still go out, within reason.
    let _ = tokio::task::spawn_blocking(move || webhooks.flush(Duration::from_secs(5))).await;
    tracing::info!("stopped");
    Ok(())
}

/// The scheduler's settings. Its gc and prune intervals are on its own clock, which a test may
/// run fast; the tick is real time.
fn scheduler_settings(config: &Config, node: &str) -> SchedulerSettings {
    let on_clock = |real: Duration| jiff::SignedDuration::try_from(real).unwrap_or(jiff::SignedDuration::MAX);
    SchedulerSettings {
        tick: config.scheduler.tick,
        max_concurrent_backups: config.scheduler.max_concurrent_backups,
        node: node.to_string(),
        gc_interval: on_clock(config.scheduler.gc_interval),
        prune_interval: on_clock(config.scheduler.prune_interval),
    }
}

/// This daemon among those sharing a catalog: its host and process.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// Ends what this daemon's previous run left `in-progress` (see `Jobs::recover`).
async fn recover(jobs: &Arc<Jobs>) -> Result<()> {
    let recovering = jobs.clone();
    let recovery = tokio::task::spawn_blocking(move || recovering.recover())
        .await
        .map_err(|e| Error::Config(format!("recovery failed: {e}")))??;
    if !recovery.resumed.is_empty() || !recovery.errored.is_empty() {
        tracing::warn!(
            "recovered from an unclean stop: actions {:?} finished, actions {:?} ended errored",
            recovery.resumed,
            recovery.errored
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::error!("cannot watch SIGTERM: {e}");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
