//! `fleetdeck serve`: one process reads the fleet (the engine every mode runs, with the
//! sources of the config) and streams its picture to every console connected with
//! `--connect` (the protocol is in `crate::feed`). Operators' writes come back through
//! the same engine's authorization point and audit log, carried out with the server's
//! credentials.
//!
//! ```text
//!  sources ─▶ Engine ─▶ published events ─▶ Hub ─▶ one bounded queue per client ─▶ HTTP
//!                ▲                                                                   │
//!                └────────────── writes (POST /v1/actions), authorized here ◀────────┘
//! ```

mod http;
mod hub;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use tokio::sync::{mpsc, oneshot};

use crate::actions::{Action, Mode, Outcome, RemoteUser};
use crate::app::Setup;
use crate::cli::ServeArgs;
use crate::engine::Engine;
use crate::feed::tokens::{self, Tokens};
use crate::feed::{self, Frame, Hello};
pub use hub::QUEUE_FRAMES;

/// Events folded in per turn of the loop before the feed is told.
const BATCH: usize = 512;

/// What an HTTP handler asks of the engine's loop.
pub(crate) enum Request {
    /// A client to stream to, from its hello on.
    Join {
        grant: tokens::Grant,
        address: SocketAddr,
        queue: mpsc::Sender<bytes::Bytes>,
    },
    /// A write from a connected console.
    Act {
        request: Box<feed::ActionRequest>,
        remote: RemoteUser,
        reply: oneshot::Sender<Result<String, Refusal>>,
    },
}

/// Why a write was not carried out.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The authorization point said no (a viewer's write): 403.
    Forbidden(String),
    /// It ran and failed: 200 with `ok: false`.
    Failed(String),
}

/// `fleetdeck serve token new`: appends a token's hash and prints the token once.
pub fn new_token_command(
    config: Option<PathBuf>,
    tokens: Option<PathBuf>,
    name: &str,
    role: Mode,
) -> ExitCode {
    let path = match tokens
        .map(Ok)
        .unwrap_or_else(|| default_tokens_file(config))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fleetdeck: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("fleetdeck: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    match tokens::new_token(&path, name, role) {
        Ok(token) => {
            println!("{token}");
            eprintln!(
                "fleetdeck: token {name} ({}) added to {}; it is shown only now: give it to \
                 {name} (a file for --token-file, or FLEETDECK_TOKEN)",
                role.as_str(),
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fleetdeck: {e}");
            ExitCode::FAILURE
        }
    }
}

fn default_tokens_file(config: Option<PathBuf>) -> Result<PathBuf> {
    crate::config::Paths::discover(config)
        .map(|p| p.config_dir.join("tokens"))
        .map_err(|e| eyre!("{e}; pass --tokens FILE"))
}

/// Serves the fleet until interrupted (SIGINT or SIGTERM).
pub async fn run(setup: Setup, args: ServeArgs) -> Result<()> {
    let server = Server::bind(&setup, &args).await?;
    // Scripts and tests read this line to find the port (`--listen 127.0.0.1:0`).
    eprintln!(
        "fleetdeck: serving the fleet on {} ({} tokens from {})",
        server.url(),
        server.tokens.len(),
        server.tokens_path.display()
    );
    server.run(setup, terminate_signal()).await
}

/// A server bound to its address, not yet reading the fleet.
pub struct Server {
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tokens: Tokens,
    tokens_path: PathBuf,
}

impl Server {
    /// Checks the tokens and TLS files and the address, and listens.
    pub async fn bind(setup: &Setup, args: &ServeArgs) -> Result<Self> {
        let tokens_path = match &args.tokens {
            Some(p) => p.clone(),
            None => setup.paths.config_dir.join("tokens"),
        };
        let tokens = Tokens::load(&tokens_path).map_err(|e| eyre!("{e}"))?;
        if tokens.is_empty() {
            bail!(
                "{} has no token: nobody could connect. Make one with `fleetdeck serve token new \
             NAME --role viewer --tokens {}`",
                tokens_path.display(),
                tokens_path.display()
            );
        }
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                Some(http::tls_acceptor(cert, key, args.client_ca.as_deref())?)
            }
            _ => None,
        };
        if tokens.has_client_certs() && args.client_ca.is_none() {
            bail!(
                "{} grants by client-cert, but no --client-ca says which certificates to trust",
                tokens_path.display()
            );
        }
        if tls.is_none() && !args.listen.ip().is_loopback() && !args.insecure_plaintext {
            bail!(
                "--listen {}: without TLS (--tls-cert, --tls-key) fleetdeck serve listens on a \
             loopback address only, since tokens and the fleet would cross the network in \
             clear text; add --insecure-plaintext if something else encrypts the way",
                args.listen
            );
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .wrap_err_with(|| format!("cannot listen on {}", args.listen))?;
        Ok(Self {
            listener,
            tls,
            tokens,
            tokens_path,
        })
    }

    /// `http://ADDR` or `https://ADDR`, as bound (a port 0 is the one chosen).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match self.listener.local_addr() {
            Ok(addr) => format!("{scheme}://{addr}"),
            Err(_) => format!("{scheme}://?"),
        }
    }

    /// Reads the fleet and serves it until `stop` resolves; the picture is kept for the
    /// next start on the way out.
    pub async fn run(
        self,
        setup: Setup,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> Result<()> {
        tracing::info!("serving on {}", self.url());
        let clock = setup.clock();
        let mut engine = Engine::start_warm(&setup, clock).await;
        engine.open_actions(&setup)?;
        engine.publish();
        let (requests, inbox) = mpsc::channel(256);
        let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
        let shared = Arc::new(http::Shared {
            tokens: self.tokens,
            requests,
            tls: self.tls,
            stopping,
        });
        let accepting = tokio::spawn(http::accept(self.listener, shared));
        let hello = HelloTemplate::of(&setup);
        serve_loop(&mut engine, inbox, hello, stop).await;
        accepting.abort();
        let _ = stopping_tx.send(true);
        engine.write_cache(true);
        Ok(())
    }
}

/// What every client's hello says of the server.
struct HelloTemplate {
    server: String,
    server_mode: Mode,
    demo: bool,
    speed: f64,
    plans: std::collections::BTreeMap<String, crate::rollout::plan::Plan>,
}

impl HelloTemplate {
    fn of(setup: &Setup) -> Self {
        Self {
            server: whoami::hostname().unwrap_or_else(|_| "unknown".into()),
            server_mode: setup.mode,
            demo: setup.demo_mode,
            speed: if setup.demo_mode {
                setup.demo.speed
            } else {
                1.0
            },
            plans: setup.plans.clone(),
        }
    }

    fn for_client(&self, grant: &tokens::Grant, now: crate::model::Timestamp) -> Frame {
        Frame::Hello(Hello {
            protocol: feed::PROTOCOL,
            version: env!("CARGO_PKG_VERSION").to_string(),
            server: self.server.clone(),
            token: grant.name.clone(),
            role: grant.role,
            server_mode: self.server_mode,
            demo: self.demo,
            now,
            speed: self.speed,
            plans: self.plans.clone(),
        })
    }
}

/// A finished write, back to the loop for its effect on the picture.
struct Done {
    action: Action,
    outcome: Outcome,
    by: String,
    reply: oneshot::Sender<Result<String, Refusal>>,
}

/// The engine's loop: fold the sources' events in, stream them, take clients and writes.
async fn serve_loop(
    engine: &mut Engine,
    mut inbox: mpsc::Receiver<Request>,
    hello: HelloTemplate,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let mut hub = hub::Hub::default();
    let (done_tx, mut done) = mpsc::channel::<Done>(64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            n = engine.recv(BATCH) => {
                if n.is_none() {
                    tracing::warn!("every source has stopped");
                    break;
                }
            }
            _ = tick.tick() => engine.tick(),
            Some(request) = inbox.recv() => match request {
                Request::Join { grant, address, queue } => {
                    let hello = hello.for_client(&grant, engine.now());
                    hub.join(grant, address, queue, hello, engine);
                }
                Request::Act { request, remote, reply } => act(engine, *request, remote, reply, &done_tx),
            },
            Some(finished) = done.recv() => {
                engine.finished_by(&finished.action, &finished.outcome, Some(&finished.by));
                let result = if finished.outcome.ok {
                    Ok(finished.outcome.message)
                } else {
                    Err(Refusal::Failed(finished.outcome.message))
                };
                let _ = finished.reply.send(result);
            }
            () = &mut stop => {
                tracing::info!("stopping");
                break;
            }
        }
        let before = hub.len();
        hub.publish(engine);
        if hub.len() != before {
            tracing::info!(clients = hub.len(), "clients connected");
        }
    }
}

/// A write from a connected console: the authorization point, then the executor in the
/// background; its outcome comes back to the loop as `Done`.
fn act(
    engine: &mut Engine,
    request: feed::ActionRequest,
    remote: RemoteUser,
    reply: oneshot::Sender<Result<String, Refusal>>,
    done: &mpsc::Sender<Done>,
) {
    let who = remote.who();
    let (token, address) = (remote.token.clone(), remote.address.clone());
    let action = request.action;
    let (authorized, exec) = match engine.authorize_remote(action.clone(), remote) {
        Ok(ok) => ok,
        Err(reason) => {
            tracing::warn!(
                token,
                address,
                kind = action.kind(),
                "write refused at the authorization point: {reason}"
            );
            let _ = reply.send(Err(Refusal::Forbidden(reason)));
            return;
        }
    };
    if request.dry_run {
        let preview = engine.preview(authorized, exec);
        tokio::spawn(async move {
            let _ = reply.send(preview.await.map_err(Refusal::Failed));
        });
        return;
    }
    tracing::info!(
        token,
        address,
        kind = action.kind(),
        "write from a connected console"
    );
    let run = engine.execute(authorized, exec, None);
    let done = done.clone();
    tokio::spawn(async move {
        let outcome = run.await;
        let _ = done
            .send(Done {
                action,
                outcome,
                by: who,
                reply,
            })
            .await;
    });
}

/// Resolves on SIGINT or SIGTERM.
fn terminate_signal() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    })
}

#[cfg(test)]
mod tests;
