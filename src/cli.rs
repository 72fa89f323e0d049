//! The `lien` command line: `serve`, `migrate`, `user create`.

use std::{net::TcpListener, path::PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tracing_subscriber::{fmt, EnvFilter};

use crate::{
    accounts,
    config::{Config, LogFormat},
    db::{embedded::Claim, Database},
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
    /// Start the web server (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
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
}

/// Logs go to stderr: human-readable, or one JSON object a line for Loki and friends.
pub fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => {
            let database = Database::open(&cli.config, Claim::Borrower).await?;
            tracing::info!("migrations are applied");
            database.close().await;
            Ok(())
        }
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
            println!("created {} ({role}): {}", person.name, person.ap_id);
            Ok(())
        }
    }
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
    let database = Database::open(&config, Claim::Owner).await?;
    let listener = TcpListener::bind(config.listen)
        .with_context(|| format!("could not listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, public_url = %config.public_url, "lien is serving");
    let state = crate::app_state(database.db.clone(), config);
    let result = crate::http_server(listener, state)?.await;
    tracing::info!("stopping");
    database.close().await;
    result.context("the web server failed")
}
