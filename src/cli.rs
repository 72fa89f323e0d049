//! The `lien` command line: `serve`, `worker`, `migrate`, `user create`.

use std::{
    future::Future,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
};

use actix_web::{dev::ServerHandle, web};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tokio::{sync::watch, task::JoinHandle};
use tracing_subscriber::{fmt, EnvFilter};

use crate::{
    accounts,
    app::AppState,
    config::{Config, LogFormat},
    db::{accounts as db_accounts, embedded::Claim, moderation, Database},
    federation::{delivery, outbox, FedConfig},
    preview,
};

#[derive(Parser, Debug)]
#[command(name = "lien", version, about = "A federated link aggregator")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the web server (applies pending migrations first), with LIEN_WORKERS delivery
    /// workers in the same process.
    Serve,
    /// Run only the background workers (delivery, link previews), until SIGTERM or SIGINT.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Fill the database with synthetic data for benchmarks and demos (bench/README.md).
    Seed(crate::seed::SeedArgs),
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a local account; asks for the password unless --password-file is given.
    Create {
        name: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from this file (its first line), for scripts.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Make a local account a user, a moderator or an administrator.
    SetRole {
        name: String,
        #[arg(value_parser = ["user", "moderator", "admin"])]
        role: String,
        /// Why, for the public moderation log.
        #[arg(long, default_value = "set from the command line")]
        reason: String,
    },
    /// Ban a local account: it can no longer log in, post or vote. Logged in /modlog.
    Ban {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a ban.
    Unban {
        name: String,
        #[arg(long, default_value = "ban lifted")]
        reason: String,
    },
}

/// Logs go to stderr: human-readable, or one JSON object a line for Loki and friends. In JSON
/// mode nothing else is written: panics are logged as JSON too.
pub fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => {
            // Fields at the top level; events inside a request carry its span (id, route).
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_ansi(false)
                .init();
            std::panic::set_hook(Box::new(|panic| {
                tracing::error!(target: "panic", panic = %panic, "panicked");
            }));
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve(cli.config).await,
        Command::Worker => worker(cli.config).await,
        Command::Seed(args) => crate::seed::run(&cli.config, args).await,
        Command::Migrate => {
            let database = Database::open(&cli.config, Claim::Borrower).await?;
            tracing::info!("migrations are applied");
            database.close().await;
            Ok(())
        }
        Command::User {
            action: UserCommand::SetRole { name, role, reason },
        } => {
            if reason.trim().is_empty() {
                bail!("give a reason");
            }
            let database = Database::open(&cli.config, Claim::Borrower).await?;
            let result =
                moderation::set_role(&database.db.write, None, &name, &role, reason.trim()).await;
            database.close().await;
            if !result? {
                bail!("there is no local account named {name}, or it is {role} already");
            }
            println!("{name} is now {role}");
            Ok(())
        }
        Command::User {
            action: UserCommand::Ban { name, reason },
        } => ban(&cli.config, &name, "ban", &reason).await,
        Command::User {
            action: UserCommand::Unban { name, reason },
        } => ban(&cli.config, &name, "unban", &reason).await,
        Command::User {
            action:
                UserCommand::Create {
                    name,
                    admin,
                    password_file,
                },
        } => {
            let password = read_password(password_file)?;
            let database = Database::open(&cli.config, Claim::Borrower).await?;
            let role = if admin { "admin" } else { "user" };
            let result = accounts::register(
                &database.db.write,
                &cli.config.origin(),
                &name,
                &password,
                role,
            )
            .await;
            database.close().await;
            let person = result?;
            match cli.config.log_format {
                LogFormat::Text => println!("created {} ({role}): {}", person.name, person.ap_id),
                LogFormat::Json => {
                    tracing::info!(name = person.name, role, ap_id = %person.ap_id, "account created")
                }
            }
            Ok(())
        }
    }
}

/// `lien user ban` and `unban`: the same action as /admin's, logged without a moderator.
async fn ban(config: &Config, name: &str, action: &str, reason: &str) -> anyhow::Result<()> {
    if reason.trim().is_empty() {
        bail!("give a reason");
    }
    let database = Database::open(config, Claim::Borrower).await?;
    let result = async {
        let person = db_accounts::find_local(&database.db.write, name)
            .await?
            .with_context(|| format!("there is no local account named {name}"))?;
        let target = moderation::Target::Person(person.id, person.name.clone());
        // The same as /admin's action, peers told included (ActivityPub: see outbox).
        let state = crate::app_state(database.db.clone(), config.clone());
        let mut tx = database.db.write.begin().await?;
        let done = moderation::act_in(&mut tx, None, action, &target, reason.trim()).await?;
        if done {
            outbox::ban_changed(&mut tx, &state, person.id, action == "ban").await?;
        }
        tx.commit().await?;
        anyhow::Ok(done)
    }
    .await;
    database.close().await;
    if result? {
        println!("{name}: {action} done");
    } else {
        println!("{name}: nothing to do");
    }
    Ok(())
}

fn read_password(file: Option<PathBuf>) -> anyhow::Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    let first = rpassword::prompt_password("Password: ")
        .context("no terminal to ask for a password on; use --password-file")?;
    let second = rpassword::prompt_password("Again: ").context("reading the password")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let mut database = Database::open(&config, Claim::Owner).await?;
    database.watch_embedded(&config.data_dir);
    let listener = TcpListener::bind(config.listen)
        .with_context(|| format!("could not listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, public_url = %config.public_url, "lien is serving");
    let workers = config.workers;
    let ops_listen = config.metrics_listen;
    let state = crate::app_state(database.db.clone(), config);
    let result = match crate::federation::config(state.clone()).await {
        Ok(federation) => match OpsEndpoints::start(ops_listen, state) {
            Ok(ops) => {
                let delivery = Workers::start(&federation, workers);
                // Actix stops on SIGTERM/SIGINT: no new connections, requests in flight finish.
                // Then the workers finish their deliveries in flight, and only then does the
                // database go.
                let served = match crate::http_server(listener, federation) {
                    Ok(server) => server.await.context("the web server failed"),
                    Err(error) => Err(anyhow::Error::new(error).context("the web server failed")),
                };
                tracing::info!("stopping");
                delivery.stop().await;
                ops.stop().await;
                served
            }
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    database.close().await;
    result
}

/// `lien worker`: the delivery workers without the web server (at least one, whatever
/// LIEN_WORKERS says, since a shared configuration may set it to 0 for the web tier).
async fn worker(config: Config) -> anyhow::Result<()> {
    let mut database = Database::open(&config, Claim::Owner).await?;
    database.watch_embedded(&config.data_dir);
    let workers = config.workers.max(1);
    let ops_listen = config.metrics_listen;
    let state = crate::app_state(database.db.clone(), config);
    let result = match crate::federation::config(state.clone()).await {
        Ok(federation) => match (shutdown_signal(), OpsEndpoints::start(ops_listen, state)) {
            (Ok(signal), Ok(ops)) => {
                let delivery = Workers::start(&federation, workers);
                signal.await;
                tracing::info!("stopping");
                delivery.stop().await;
                ops.stop().await;
                Ok(())
            }
            (Err(error), _) | (_, Err(error)) => Err(error),
        },
        Err(error) => Err(error),
    };
    database.close().await;
    result
}

/// /healthz, /readyz and /metrics on LIEN_METRICS_LISTEN, when it is set: off the public address,
/// and in `lien worker` the only way the orchestrator and Prometheus see it.
struct OpsEndpoints(Option<(ServerHandle, JoinHandle<std::io::Result<()>>)>);

impl OpsEndpoints {
    fn start(listen: Option<SocketAddr>, state: web::Data<AppState>) -> anyhow::Result<Self> {
        let Some(address) = listen else {
            return Ok(OpsEndpoints(None));
        };
        let listener = TcpListener::bind(address)
            .with_context(|| format!("could not listen on {address} (LIEN_METRICS_LISTEN)"))?;
        let server = crate::ops_server(listener, state).context("the ops endpoints failed")?;
        tracing::info!(listen = %address, "serving /healthz, /readyz and /metrics");
        Ok(OpsEndpoints(Some((server.handle(), tokio::spawn(server)))))
    }

    /// Answers probes until the workers are done, then stops.
    async fn stop(self) {
        if let Some((handle, task)) = self.0 {
            handle.stop(true).await;
            let _ = task.await;
        }
    }
}

/// Catches SIGTERM and SIGINT from now on; the future resolves at the first of them. Both mean
/// "stop gracefully" (the web server's too: see `http_server`).
pub(crate) fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "stopping gracefully");
    })
}

/// Delivery workers and the preview worker running on the runtime, and the switch that stops them.
struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    /// `count` delivery workers and, when there are any, one preview worker (which fetches a few
    /// links at once itself).
    fn start(federation: &FedConfig, count: usize) -> Workers {
        let (stop, stopping) = watch::channel(false);
        let mut tasks: Vec<JoinHandle<()>> = (0..count)
            .map(|_| tokio::spawn(delivery::run(federation.clone(), stopped(stopping.clone()))))
            .collect();
        if count > 0 {
            let state = federation.to_request_data().app_data().clone();
            tasks.push(tokio::spawn(preview::run(state, stopped(stopping.clone()))));
        }
        Workers { stop, tasks }
    }

    /// Asks every worker to stop and waits while they finish their deliveries in flight (previews
    /// in flight are handed back to the queue instead).
    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "a worker failed");
            }
        }
    }
}

async fn stopped(mut stopping: watch::Receiver<bool>) {
    // An error means the sender is gone, which is a stop too.
    let _ = stopping.wait_for(|stop| *stop).await;
}
