//! `mixed-r1`: the one binary of the Mixed-R1 toolkit. Each subcommand is a thin layer over a
//! library crate; this file only parses arguments and reports.

mod data_cmd;
mod demo_cmd;
mod eval_cmd;
mod lora_cmd;
mod plan_cmd;
mod reward_cmd;
mod serve_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory in the process instead of handing it back to the OS after a delay
/// (mimalloc v3's default: 1 s). Training frees and re-allocates (tokens x vocabulary)-sized buffers
/// every step; returned pages come back zero-filled by the kernel, which cost about a quarter
/// of a tiny-model SFT step (25 steps: 27 s -> 21-23 s wall, system time 15 s -> 5-10 s; peak
/// RSS 3.5 -> 4.2 GB). A `MIMALLOC_PURGE_DELAY` in the environment still wins.
fn keep_freed_memory() {
    // `mi_option_purge_delay` of the mimalloc sources libmimalloc-sys builds (v2 and v3 alike);
    // the crate's bindings predate the option's name.
    const MI_OPTION_PURGE_DELAY: i32 = 15;
    extern "C" {
        fn mi_option_get(option: i32) -> std::ffi::c_long;
        fn mi_option_set(option: i32, value: std::ffi::c_long);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: plain calls into the allocator this binary links; an option index mimalloc does
    // not know is ignored by it. The default (1000 ms in v3, 10 ms in v2) is checked first, so
    // a renumbered option in some future mimalloc is left alone.
    unsafe {
        if matches!(mi_option_get(MI_OPTION_PURGE_DELAY), 10 | 1000) {
            mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        }
    }
}

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
    /// Serve the mixed reward over HTTP: OpenRLHF's --reward.remote_url, /score, /health, /metrics.
    Serve(serve_cmd::ServeArgs),
    /// The embedded demo: synth data, tiny Qwen2.5-VL, SFT, eval, GRPO, eval, before/after table.
    Demo(demo_cmd::DemoArgs),
    /// GRPO post-training with the mixed reward (config file + --set overrides).
    Train(Box<train_cmd::TrainArgs>),
    /// Supervised warm start on the answer format before GRPO.
    Sft(train_cmd::SftArgs),
    /// Memory plan of a run from the model's config.json: weights, gradients, optimizer, activations, KV cache, which GPUs fit.
    Plan(Box<plan_cmd::PlanArgs>),
    /// LoRA adapters in PEFT's layout: merge one into its base model, or inspect it.
    Lora(lora_cmd::LoraArgs),
    /// Evaluate per task and source (generate or score given responses); compare runs; convert benchmarks.
    Eval(Box<eval_cmd::EvalArgs>),
}

fn main() {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(args) => data_cmd::run(args),
        Command::Demo(args) => demo_cmd::run(args),
        // The memory plan of a run, before any work: the plan command on the run's config.
        Command::Train(args) if args.dry_run => plan_cmd::plan_train(&args),
        Command::Train(args) => train_cmd::run(*args),
        Command::Sft(args) => train_cmd::run_sft(args),
        Command::Reward(args) => reward_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Eval(args) => eval_cmd::run_cmd(*args),
        Command::Lora(args) => lora_cmd::run(args),
        Command::Plan(args) => plan_cmd::run(*args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
