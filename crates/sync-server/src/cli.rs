//! The `patrol-sync` command line.

use crate::auth::password;
use crate::clock::now_ms;
use crate::config::Config;
use crate::http::admin::check_estate;
use crate::startup::{shutdown_signal, Application, BuildOptions};
use crate::storage::{self, NewUser};
use clap::{Args, Parser, Subcommand};
use shared_core::wire::NewEstate;
use shared_core::Role;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "patrol-sync",
    version,
    about = "Sync server for estate patrol handsets"
)]
pub struct Cli {
    /// Optional TOML configuration file (also PATROL_CONFIG). Environment PATROL_* wins.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Default)]
pub struct Overrides {
    /// Address:port to listen on (PATROL_LISTEN; default 127.0.0.1:8080).
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// Data directory (PATROL_DATA_DIR; default ./data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// sqlite://FILE or postgres://… (PATROL_DATABASE_URL; default a SQLite file in the data dir).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Seed two demo estates and a user per role (password "demo") if not present.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage estates.
    Estate {
        #[command(subcommand)]
        action: EstateAction,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Import checkpoints or routes from a CSV file into an estate, all or nothing.
    /// Every bad row is reported with its line number; `--dry-run` only checks and shows
    /// what would change. Formats: docs/PROTOCOL.md, "Importing checkpoints and routes".
    Import {
        /// `checkpoints` or `routes`.
        what: ImportKind,
        /// The CSV file (UTF-8, header row first).
        file: PathBuf,
        /// The estate: its id or exact name.
        #[arg(long)]
        estate: String,
        /// Check the file and report what would change, without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Checkpoints,
    Routes,
}

#[derive(Subcommand, Debug)]
pub enum EstateAction {
    /// Add an estate and print its id.
    Add {
        name: String,
        /// IANA time zone.
        #[arg(long, default_value = "Asia/Shanghai")]
        timezone: String,
    },
    /// List estates.
    List,
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Add a user. The password is read from standard input (first line) when it is not a
    /// terminal, otherwise prompted for twice.
    Add {
        username: String,
        /// Display name (defaults to the username).
        #[arg(long)]
        name: Option<String>,
        /// ESTATE:ROLE, repeatable; ESTATE is an estate id or its exact name; ROLE is guard,
        /// engineer, supervisor, manager or admin.
        #[arg(long = "role", value_name = "ESTATE:ROLE")]
        roles: Vec<String>,
    },
}

fn apply(mut c: Config, o: &Overrides) -> Config {
    if let Some(l) = &o.listen {
        c.listen = l.clone();
    }
    if let Some(d) = &o.data_dir {
        c.data_dir = d.clone();
    }
    if let Some(u) = &o.database_url {
        c.database_url = Some(u.clone());
    }
    c
}

async fn open_store(config: &Config) -> anyhow::Result<storage::DynStore> {
    std::fs::create_dir_all(&config.data_dir)?;
    let store = storage::connect(&config.database_url()).await?;
    store.migrate().await?;
    Ok(store)
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let pw = if stdin.is_terminal() {
        let a = rpassword::prompt_password("password: ")?;
        let b = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(a == b, "the passwords differ");
        a
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    anyhow::ensure!(
        pw.chars().count() >= 4,
        "the password must be at least 4 characters"
    );
    Ok(pw)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let base = || Config::load(cli.config.as_deref());
    match cli.command {
        Command::Openapi => {
            print!("{}", crate::openapi::document());
        }
        Command::Serve { demo } => {
            let config = apply(base()?, &cli.overrides);
            crate::telemetry::init(&config.log_format);
            let app = Application::build(
                config,
                BuildOptions {
                    demo,
                    demo_patrols: demo,
                },
            )
            .await?;
            let st = app.state();
            println!(
                "patrol-sync listening on http://{} ({} database)",
                app.local_addr(),
                st.store.backend()
            );
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Command::Migrate => {
            let config = apply(base()?, &cli.overrides);
            let store = open_store(&config).await?;
            println!("migrations applied ({} database)", store.backend());
        }
        Command::Estate { action } => {
            let config = apply(base()?, &cli.overrides);
            let store = open_store(&config).await?;
            match action {
                EstateAction::Add { name, timezone } => {
                    let tz = check_estate(&NewEstate {
                        name: name.clone(),
                        timezone: Some(timezone),
                    })
                    .map_err(|e| anyhow::anyhow!("{}", e.body()["detail"]))?;
                    let e = store.create_estate(name.trim(), &tz, now_ms()).await?;
                    println!("{}\t{}\t{}", e.id, e.name, e.timezone);
                }
                EstateAction::List => {
                    for e in store.list_estates().await? {
                        println!("{}\t{}\t{}", e.id, e.name, e.timezone);
                    }
                }
            }
        }
        Command::Import {
            what,
            file,
            estate,
            dry_run,
        } => {
            let config = apply(base()?, &cli.overrides);
            let store = open_store(&config).await?;
            crate::import::run(&store, what, &file, &estate, dry_run).await?;
        }
        Command::User {
            action:
                UserAction::Add {
                    username,
                    name,
                    roles,
                },
        } => {
            let config = apply(base()?, &cli.overrides);
            let store = open_store(&config).await?;
            let estates = store.list_estates().await?;
            let mut grants = Vec::new();
            for spec in &roles {
                let (estate, role) = spec
                    .rsplit_once(':')
                    .ok_or_else(|| anyhow::anyhow!("--role {spec:?}: expected ESTATE:ROLE"))?;
                let role: Role = role
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("--role {spec:?}: {e}"))?;
                let e = estates
                    .iter()
                    .find(|e| e.id.to_string() == estate || e.name == estate)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--role {spec:?}: no estate {estate:?} (see `patrol-sync estate list`)"
                        )
                    })?;
                grants.push((e.id, role));
            }
            anyhow::ensure!(
                !username.trim().is_empty(),
                "the username must not be empty"
            );
            let pw = read_password()?;
            let hash = password::hash(pw).await?;
            let id = store
                .create_user(
                    NewUser {
                        username: username.trim().into(),
                        name: name.unwrap_or_else(|| username.trim().into()),
                        password_hash: hash,
                    },
                    now_ms(),
                )
                .await
                .map_err(|e| match e {
                    storage::StoreError::Conflict(_) => {
                        anyhow::anyhow!("user {username:?} already exists")
                    }
                    e => e.into(),
                })?;
            for (estate, role) in grants {
                store.add_membership(id, estate, role).await?;
            }
            println!("{id}\t{}", username.trim());
        }
    }
    Ok(())
}
