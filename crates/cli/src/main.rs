//! `mixed-r1`: the one binary of the Mixed-R1 toolkit. Each subcommand is a thin layer over a
//! library crate; this file only parses arguments and reports.

mod data_cmd;
mod reward_cmd;
mod serve_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mixed-r1",
    version,
    about = "Mixed-R1: RL post-training of multimodal LLMs on a mixture of tasks, each scored by the reward that fits it",
    long_about = None,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build training data: synthesise, ingest, validate, deduplicate, filter by difficulty, mix, write.
    Data(data_cmd::DataArgs),
    /// Score responses with the mixed reward (format + matching / math / chart / IoU / BMAS).
    Reward(reward_cmd::RewardArgs),
    /// Serve the mixed reward over HTTP: OpenRLHF's --remote_rm_url, /score, /health, /metrics.
    Serve(serve_cmd::ServeArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(args) => data_cmd::run(args),
        Command::Reward(args) => reward_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
