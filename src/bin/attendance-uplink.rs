//! `attendance-uplink`: the central worker between the terminals' MQTT events and MySQL.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

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
