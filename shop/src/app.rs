//! Building and running one HTTP server process, the same way for every binary.
//!
//! [`Application::build`] binds the listener (port 0 picks a free port, as tests and the
//! harness do), installs the shared middleware and extractor settings, mounts the routes a
//! process serves, and prints the settings it runs with. Everything that can differ between
//! processes is in the `configure` function the caller passes.

use std::net::TcpListener;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::deadline::{RequestBudget, set_request_deadline};
use crate::error::{json_config, path_config, query_config, route_not_found};
use crate::settings::Settings;
use crate::telemetry::{Metrics, record_metrics};

/// How long servers keep an idle connection open.
pub const SERVER_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(75);
/// How long clients keep an idle pooled connection: shorter than [`SERVER_KEEP_ALIVE`].
pub const CLIENT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Work a process does beside serving requests (the orders module's recovery loop).
type BackgroundTask = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Application {
    port: u16,
    server: Server,
    background: Vec<BackgroundTask>,
}

impl Application {
    /// Binds and prepares a server; it starts serving when [`Application::run_until_stopped`]
    /// is awaited (or the server future is spawned).
    pub fn build<F>(process: &str, settings: &Settings, default_port: u16, configure: F) -> anyhow::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        settings.validate().map_err(|problem| anyhow::anyhow!("invalid settings: {problem}"))?;
        let port = settings.server.port.unwrap_or(default_port);
        let listener = TcpListener::bind((settings.server.host.as_str(), port))?;
        let port = listener.local_addr()?.port();
        let metrics = web::Data::new(Metrics::new(process));
        let budget = web::Data::new(RequestBudget(settings.request_deadline()));
        let server = HttpServer::new(move || {
            App::new()
                // Inner middleware first: the deadline is set inside the metrics' timing.
                .wrap(from_fn(set_request_deadline))
                .wrap(from_fn(record_metrics))
                .app_data(metrics.clone())
                .app_data(budget.clone())
                .app_data(json_config())
                .app_data(query_config())
                .app_data(path_config())
                .configure(configure.clone())
                .default_service(web::to(route_not_found))
        })
        .workers(settings.server.workers.max(1))
        .tcp_nodelay(true)
        // Longer than every client's idle-connection timeout (60 s, see `http_client`): a
        // client must never reuse a pooled connection at the moment the server closes it,
        // which surfaces as a spurious "incomplete message" failure.
        .keep_alive(SERVER_KEEP_ALIVE)
        // The harness stops processes with SIGTERM and waits; in-flight requests get 5 s.
        .shutdown_timeout(5)
        .disable_signals()
        .listen(listener)?
        .run();
        eprintln!("{}", settings.summary(process, port));
        Ok(Self { port, server, background: Vec::new() })
    }

    /// Runs `task` while the server runs; it is stopped when the server stops.
    pub fn run_beside(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.background.push(Box::pin(task));
    }

    fn start_background(&mut self) -> Vec<tokio::task::AbortHandle> {
        self.background.drain(..).map(|task| tokio::spawn(task).abort_handle()).collect()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server from elsewhere (tests stop services to observe degradation).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let background = self.start_background();
        let result = self.server.await;
        background.iter().for_each(tokio::task::AbortHandle::abort);
        result
    }

    /// Runs until the server stops or the process gets SIGINT/SIGTERM, then stops gracefully.
    pub async fn run_until_signalled(mut self) -> std::io::Result<()> {
        let background = self.start_background();
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let result = tokio::select! {
            finished = &mut server => finished.map_err(std::io::Error::other).and_then(|r| r),
            () = shutdown_signal() => {
                handle.stop(true).await;
                server.await.map_err(std::io::Error::other).and_then(|r| r)
            }
        };
        background.iter().for_each(tokio::task::AbortHandle::abort);
        result
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler works at start-up");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
