use std::path::PathBuf;
use std::sync::Arc;

use attendance::face::{
    DecodeLimits, Embedder, FacePipeline, HogEmbedder, MatchRule, PipelineConfig,
};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Face-recognition attendance terminal daemon")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the evaluation protocol over a dataset folder.
    Eval {
        #[arg(long)]
        dataset: PathBuf,
        #[arg(long)]
        tolerance: Option<f32>,
        #[arg(long, default_value = "hog")]
        embedder: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Eval {
            dataset,
            tolerance,
            embedder,
        } => {
            let emb: Arc<dyn Embedder> = match embedder.as_str() {
                "hog-spec" => Arc::new(HogEmbedder::spec()),
                _ => Arc::new(HogEmbedder::new()),
            };
            let rule = MatchRule {
                threshold: tolerance.unwrap_or(emb.default_threshold()),
                margin: emb.default_margin(),
            };
            let p = FacePipeline::new(PipelineConfig::default(), DecodeLimits::default(), emb);
            let r = attendance::face::eval::evaluate(&p, &dataset, rule)?;
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(())
}
