//! `attendance-uplink`: the central worker between the terminals' MQTT events and MySQL.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use attendance::uplink::admin::{CentralRoster, NewPerson};
use attendance::uplink::{self, config::UplinkConfig, sink::Sink};
use attendance::{logging, shutdown};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Writes terminal attendance events from MQTT into MySQL, exactly once in effect"
)]
struct Cli {
    /// TOML configuration file (defaults, then this file, then the environment).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Subscribe and write events (the default).
    Run,
    /// Create the database and apply the schema migrations, then exit.
    Migrate,
    /// Decode an MQTT payload (CBOR) from stdin and print it as JSON.
    Decode {
        /// Read hex text, one message per line (`mosquitto_sub -F %x`), instead of raw bytes.
        #[arg(long)]
        hex: bool,
    },
    /// Print the effective configuration as TOML.
    Config,
    /// The roster of record: people every door of a site recognises.
    Roster {
        /// The site the command is about.
        #[arg(long)]
        site: String,
        #[command(subcommand)]
        cmd: RosterCmd,
    },
}

#[derive(Subcommand)]
enum RosterCmd {
    /// List the site's people.
    List,
    /// Enrol a person (or add faces to them) from photos.
    Enrol {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// One face per photo.
        #[arg(required = true)]
        photos: Vec<PathBuf>,
    },
    /// Delete a person at every door: faces, name and earlier changes erased;
    /// attendance stays.
    Delete { employee_id: String },
    /// Move a person of this site to another (with their faces): this site's doors
    /// forget them, the other's learn them. A person belongs to one site.
    Move {
        employee_id: String,
        /// The site they move to.
        #[arg(long)]
        to: String,
    },
    /// Enrol from a CSV of `employee_id,name,photo` (with a header line); bad rows are
    /// reported by line and the rest imported.
    Import {
        csv: PathBuf,
        /// Folder the `photo` column is relative to.
        #[arg(long, default_value = ".")]
        photos: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cmd = cli.cmd.unwrap_or(Cmd::Run);
    if let Cmd::Decode { hex } = cmd {
        return decode(hex);
    }
    let config = match UplinkConfig::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("attendance-uplink: {e}");
            return ExitCode::from(2);
        }
    };
    let _log = logging::init(&config.log.level, "attendance-uplink");
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                match cmd {
                    Cmd::Run => {
                        let (trigger, stop) = shutdown::channel();
                        shutdown::on_signals(trigger)?;
                        uplink::run(config, stop).await?;
                    }
                    Cmd::Migrate => {
                        let sink = Sink::new(&config.mysql);
                        let v = sink.migrate().await?;
                        sink.close().await;
                        println!("MySQL schema at version {v}");
                    }
                    Cmd::Config => print!("{}", toml::to_string_pretty(&config)?),
                    Cmd::Roster { site, cmd } => roster(&config, &site, cmd).await?,
                    Cmd::Decode { .. } => unreachable!("handled above"),
                }
                anyhow::Ok(())
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("attendance-uplink: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `attendance-uplink roster ...`; a failed import row is reported, not fatal, but the
/// exit status says some were refused.
async fn roster(config: &UplinkConfig, site: &str, cmd: RosterCmd) -> anyhow::Result<()> {
    let mut roster = CentralRoster::open(config, site).await?;
    let mut out = std::io::stdout().lock();
    let result = match cmd {
        RosterCmd::List => roster.list(&mut out).await.map_err(anyhow::Error::from),
        RosterCmd::Enrol { id, name, photos } => {
            let person = NewPerson {
                employee_id: id,
                name,
                photos,
            };
            roster
                .enrol(&person)
                .await
                .map_err(anyhow::Error::from)
                .map(|r| {
                    println!(
                        "{} enrolled at site {site} (revision {r})",
                        person.employee_id
                    );
                })
        }
        RosterCmd::Delete { employee_id } => roster
            .delete(&employee_id)
            .await
            .map_err(anyhow::Error::from)
            .map(|r| {
                println!("{employee_id} deleted at site {site} (revision {r})");
            }),
        RosterCmd::Move { employee_id, to } => roster
            .move_to(&employee_id, &to)
            .await
            .map_err(anyhow::Error::from)
            .map(|(from_r, to_r)| {
                println!(
                    "{employee_id} moved from site {site} (revision {from_r}) to {to} (revision {to_r})"
                );
            }),
        RosterCmd::Import { csv, photos } => match roster.import(&csv, &photos, &mut out).await {
            Ok(r) if r.refused.is_empty() => {
                println!("{} enrolled", r.enrolled);
                Ok(())
            }
            Ok(r) => Err(anyhow::anyhow!(
                "{} enrolled, {} rows not imported",
                r.enrolled,
                r.refused.len()
            )),
            Err(e) => Err(e.into()),
        },
    };
    roster.close().await;
    result
}

fn decode(hex: bool) -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("attendance-uplink: reading stdin: {e}");
        return ExitCode::FAILURE;
    }
    let messages: Vec<Result<Vec<u8>, String>> = if hex {
        String::from_utf8_lossy(&input)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(uplink::from_hex)
            .collect()
    } else {
        vec![Ok(input)]
    };
    let mut ok = true;
    for m in messages {
        match m.and_then(|bytes| uplink::decode_to_json(&bytes)) {
            Ok(v) => println!("{v}"),
            Err(e) => {
                eprintln!("attendance-uplink: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
