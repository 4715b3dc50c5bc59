//! `attendanced`: the door terminal's daemon and its admin commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use attendance::camera::CameraSpec;
use attendance::daemon::{self, Config};
use attendance::face::eval::{CohortChoice, Protocol};
use attendance::face::{EmbedderChoice, RuleOverrides};
use attendance::{admin, logging, shutdown};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Face-recognition attendance terminal")]
struct Cli {
    /// TOML configuration file (defaults, then this file, then the environment).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the terminal: camera, HTTP API, outbox.
    Serve {
        /// Address to listen on (overrides `listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// State folder (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Frame source: none, replay:PATH or v4l2:/dev/videoN (overrides `camera.source`).
        #[arg(long)]
        camera: Option<CameraSpec>,
    },
    /// Manage enrolled users.
    Users {
        #[command(subcommand)]
        cmd: UsersCmd,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration (defaults + file + environment) as TOML.
    Config,
    /// Read an API key on stdin, print its SHA-256 for `[auth]` (keys never go in files).
    HashKey,
    /// Write a new random key for `storage.encryption_key_file` to PATH (mode 0600; an
    /// existing file is never overwritten).
    NewStorageKey { path: PathBuf },
    /// Seal the biometric files stored before `storage.encryption_key_file` was set (a
    /// terminal with a key refuses plaintext ones). Stop the daemon first.
    SealStore,
    /// Run the evaluation protocol (../shared/faces/PROTOCOL.md) over a dataset folder;
    /// the last line of stdout is the metrics as JSON.
    Eval {
        #[arg(long)]
        dataset: PathBuf,
        /// Protocol v2: grow the gallery with these people (one template each, never
        /// probed), as a company's terminal holds hundreds of people.
        #[arg(long, value_name = "DIR")]
        distractors: Option<PathBuf>,
        /// Only the first N distractor identities.
        #[arg(long, value_name = "N", requires = "distractors")]
        distractor_limit: Option<usize>,
        /// The first K usable photos of each employee become templates (the protocol's 1).
        #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        enrol_images: u16,
        /// Embedder: hog, hog-spec, dlib-resnet or auto (default: the configured one).
        #[arg(long)]
        embedder: Option<EmbedderChoice>,
        /// Accept threshold (default: the embedder's calibrated one).
        #[arg(long)]
        tolerance: Option<f32>,
        /// Runner-up margin (default: the embedder's).
        #[arg(long)]
        margin: Option<f32>,
        /// Also replay every probe as N jittered camera frames and report what MODE_A's
        /// vote of 1, 2 and 3 agreeing frames decides (`sequences`).
        #[arg(long, value_name = "N", default_value_t = 0)]
        sequence_frames: usize,
        /// Also decide each replay as walk-up does for a person standing there: up to K
        /// windows of N new frames, until one recognises somebody.
        #[arg(long, value_name = "K", default_value_t = 1, requires = "sequence_frames", value_parser = clap::value_parser!(u16).range(1..))]
        sequence_tries: u16,
        /// Also score REPEATS random galleries of each of these sizes (people: as many
        /// employees as fit, then distractors), reporting mean and worst rates (`sizes`).
        #[arg(long, value_name = "N,N,...", value_delimiter = ',')]
        gallery_sizes: Vec<usize>,
        /// Random galleries per size.
        #[arg(
            long,
            value_name = "R",
            default_value_t = 20,
            requires = "gallery_sizes",
            value_parser = clap::value_parser!(u16).range(1..)
        )]
        repeats: u16,
        /// Seed of the galleries' draw (printed in the report as `gallery_seed`).
        #[arg(long, default_value_t = 1, requires = "gallery_sizes")]
        seed: u64,
        /// Neighbour ratio (default: the embedder's; 1 or more switches it off).
        #[arg(long)]
        neighbour_ratio: Option<f32>,
        /// 1:1 threshold (default: the embedder's).
        #[arg(long)]
        verify_tolerance: Option<f32>,
        /// Also write every image's embeddings (or the reason it has none) to FILE as
        /// JSON, to compare two builds number by number.
        #[arg(long, value_name = "FILE")]
        dump: Option<PathBuf>,
        /// Also replay the probes as visits in time order with learning at the door (a
        /// confident match teaches the gallery), reporting `learning`.
        #[arg(long)]
        learn: bool,
        /// Neighbourhoods over the gallery alone, without the embedder's cohort.
        #[arg(long, conflicts_with = "cohort")]
        no_cohort: bool,
        /// Neighbourhoods over this cohort file instead of the embedder's.
        #[arg(long, value_name = "FILE")]
        cohort: Option<PathBuf>,
        /// Instead of evaluating, write a cohort file of the dataset's faces (the first
        /// usable photo of every identity) to FILE.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["distractors", "gallery_sizes", "dump"])]
        write_cohort: Option<PathBuf>,
        /// Instead of the protocol, LFW View 2 pairs (`pairs.txt`: images
        /// `Name/Name_NNNN.jpg` under --dataset): 10-fold verification accuracy.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["distractors", "gallery_sizes", "dump", "write_cohort"])]
        pairs: Option<PathBuf>,
        /// With --pairs: embed the largest face even when the gates refuse it, a centred
        /// box when none is found (as papers do); a benchmark, never a door's decision.
        #[arg(long, requires = "pairs")]
        no_gates: bool,
    },
}

#[derive(Subcommand)]
enum UsersCmd {
    List,
    /// Delete a user, their templates and face images (attendance history stays).
    Delete {
        employee_id: String,
    },
    /// Erase the templates a user's walk-ups taught the door (learning at the door);
    /// their enrolment stays. In a fleet every door of the site forgets them too.
    Unlearn {
        employee_id: String,
    },
    /// Delete every user (attendance history stays).
    Reset {
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The same reader serves start-up and SIGHUP: file, environment, then `serve`'s flags.
    let reread = reloader(cli.config.clone(), &cli.cmd);
    let config = match reread() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("attendanced: {e}");
            return ExitCode::from(2);
        }
    };
    let log = logging::init(&config.log.level, "attendanced");
    match run(
        cli.cmd,
        config,
        daemon::Hooks {
            log,
            reload: Some(reread),
        },
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("attendanced: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Re-reads the configuration as `main` did: file, environment, then `serve`'s flags.
fn reloader(file: Option<PathBuf>, cmd: &Cmd) -> daemon::Reloader {
    let overrides = match cmd {
        Cmd::Serve {
            listen,
            data_dir,
            camera,
        } => (*listen, data_dir.clone(), camera.clone()),
        _ => (None, None, None),
    };
    Box::new(move || {
        let mut c = Config::load(file.as_deref())?;
        let (listen, data_dir, camera) = &overrides;
        if let Some(l) = listen {
            c.listen = *l;
        }
        if let Some(d) = data_dir {
            c.data_dir = d.clone();
        }
        if let Some(cam) = camera {
            c.camera.source = cam.clone();
        }
        c.validate()?;
        Ok(c)
    })
}

fn run(cmd: Cmd, config: Config, hooks: daemon::Hooks) -> anyhow::Result<()> {
    match cmd {
        Cmd::Serve { .. } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let (trigger, stop) = shutdown::channel();
                shutdown::on_signals(trigger)?;
                daemon::run(config, stop, hooks).await?;
                anyhow::Ok(())
            })
        }
        Cmd::Users { cmd } => match cmd {
            UsersCmd::List => Ok(admin::list_users(&config, &mut std::io::stdout().lock())?),
            UsersCmd::Delete { employee_id } => {
                let n = admin::delete_user(&config, &employee_id)?;
                println!("deleted {employee_id} ({n} templates and their files)");
                Ok(())
            }
            UsersCmd::Unlearn { employee_id } => {
                let n = admin::forget_learned(&config, &employee_id)?;
                println!("{employee_id}: {n} learned templates erased; the enrolment stays");
                Ok(())
            }
            UsersCmd::Reset { yes } => {
                anyhow::ensure!(
                    yes,
                    "this deletes every user and template: add --yes to confirm"
                );
                let n = admin::reset_users(&config)?;
                println!("deleted {n} users; attendance history kept");
                Ok(())
            }
        },
        Cmd::Migrate => {
            let v = admin::migrate(&config)?;
            println!("database schema at version {v}");
            Ok(())
        }
        Cmd::HashKey => {
            let mut key = String::new();
            std::io::stdin().read_line(&mut key)?;
            let key = key.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!key.is_empty(), "no key on stdin");
            println!("{}", admin::hash_key(key));
            Ok(())
        }
        Cmd::NewStorageKey { path } => {
            admin::new_storage_key(&path)?;
            println!("wrote a new storage key to {}", path.display());
            Ok(())
        }
        Cmd::SealStore => {
            let (sealed, unreadable) = admin::seal_store(&config)?;
            println!(
                "sealed {sealed} files; {unreadable} that no configured key opens left as they are"
            );
            Ok(())
        }
        Cmd::Config => {
            print!("{}", toml_string(&config)?);
            Ok(())
        }
        Cmd::Eval {
            dataset,
            distractors,
            distractor_limit,
            enrol_images,
            sequence_frames,
            sequence_tries,
            gallery_sizes,
            repeats,
            seed,
            embedder,
            tolerance,
            margin,
            neighbour_ratio,
            verify_tolerance,
            dump,
            no_cohort,
            cohort,
            write_cohort,
            pairs,
            no_gates,
            learn,
        } => {
            if let Some(file) = pairs {
                let r = admin::eval_pairs(&config, embedder, &dataset, &file, !no_gates)
                    .with_context(|| format!("scoring the pairs of {}", file.display()))?;
                println!("{}", serde_json::to_string(&r)?);
                return Ok(());
            }
            if let Some(out) = write_cohort {
                let n = admin::write_cohort(&config, embedder, &dataset, &out)
                    .with_context(|| format!("writing a cohort of {}", dataset.display()))?;
                println!("{n} faces written to {}", out.display());
                return Ok(());
            }
            let cohort = match (no_cohort, cohort) {
                (true, _) => CohortChoice::None,
                (false, Some(file)) => CohortChoice::File(file),
                (false, None) => CohortChoice::Embedder,
            };
            let protocol = Protocol {
                cohort,
                learn,
                distractors,
                distractor_limit,
                enrol_images: enrol_images.into(),
                sequence_frames,
                sequence_tries: sequence_tries.into(),
                gallery_sizes,
                repeats: repeats.into(),
                seed,
                ..Protocol::new(&dataset)
            };
            let eval = admin::eval(
                &config,
                &protocol,
                embedder,
                RuleOverrides {
                    tolerance,
                    margin,
                    neighbour_ratio,
                    verify_tolerance,
                },
            )
            .with_context(|| format!("evaluating {}", dataset.display()))?;
            if let Some(path) = dump {
                std::fs::write(&path, serde_json::to_vec(&eval.images)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!("{}", serde_json::to_string(&eval.report)?);
            Ok(())
        }
    }
}

fn toml_string(config: &Config) -> anyhow::Result<String> {
    Ok(toml::to_string_pretty(config)?)
}
