//! `mixed-r1 serve`: the mixed reward as an HTTP server (OpenRLHF's remote reward protocol and
//! our own batch endpoint). The server itself is the `mixed-r1-server` crate; this module parses
//! options, sets up logging and the runtime, and announces the address.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use mixed_r1_server::ServerConfig;

use crate::reward_cmd::RewardOpts;

const SERVE_HELP: &str = "\
ROUTES
  POST /get_reward  OpenRLHF remote reward: {\"query\": [...], \"prompts\": [...], \"labels\": [...]}
                    -> {\"rewards\": [...], \"scores\": [...], \"extra_logs\": {\"format\", \"accuracy\", \"skipped\"}}
  POST /score       a JSON array of scoring samples (the `reward score` line schema)
                    -> an array of {\"id\", \"reward\", \"format\", \"accuracy\", \"task\", \"error\"}, in order
  GET  /health      {\"status\": \"ok\", \"version\": ...}
  GET  /metrics     Prometheus text: requests, errors by kind, latency histogram, samples and
                    mean reward / accuracy per task

OPENRLHF
  Start the server, then point OpenRLHF's trainer at it:
    mixed-r1 serve --host 0.0.0.0 --port 5000 --config reward.toml
    python -m openrlhf.cli.train_ppo_ray ... --reward.remote_url http://HOST:5000/get_reward \\
        --data.label_key label
  (OpenRLHF before 0.11 spelled these --remote_rm_url and --label_key.)
  Each `label` is the sample's fields as JSON, e.g.
    {\"task\": \"grounding\", \"answer\": [[10, 20, 110, 220]], \"frame\": \"abs\", \"image_size\": [640, 480]}
    {\"task\": \"mcq\", \"answer\": \"B\", \"choices\": [\"cat\", \"dog\"]}
  A plain-text label is the answer itself, scored with --default-task.
  The response is cut out of each query: the prompt when it is a prefix of the query, else the
  text after the last assistant turn of the chat template (ChatML/Qwen, InternVL, Llama 3, Gemma,
  Phi, DeepSeek, Mistral); end-of-turn tokens are dropped.
  `scores` is the accuracy alone (for --dynamic_filtering). A skipped sample (its gold answer
  cannot be used) is sent as reward 0.0, since OpenRLHF cannot take null; it is flagged in
  extra_logs.skipped and counted in /metrics (mixed_r1_samples_total{outcome=\"skipped\"}).

ERRORS
  A request that fails as a whole gets {\"error\": \"...\", \"kind\": \"...\", \"field\": \"...\"}:
    400  bad JSON, or a missing / wrong field, named (e.g. `labels[3].frame`)
    413  body over --max-body-bytes, or more samples than --max-batch
    408  body not received within --read-timeout
    503  no scoring slot within --request-timeout (see --max-concurrency), or scoring overran it;
         with Retry-After: 1
  On /score a bad sample gets its own result with \"reward\": null and an \"error\".

EXAMPLES
  mixed-r1 serve --port 5000
  mixed-r1 serve --port 0                     # any free port; the address is printed
  mixed-r1 serve --config reward.toml --model path/to/Qwen2.5-VL-3B-Instruct --log debug
  curl -s localhost:5000/score -d '[{\"task\": \"yes_no\", \"answer\": \"yes\",
      \"response\": \"<think>.</think><answer>Yes</answer>\"}]'

SIGTERM or Ctrl-C: stop accepting, finish the requests in flight (up to --shutdown-grace), exit 0.";

#[derive(Args)]
#[command(
    about = "Serve the mixed reward over HTTP (OpenRLHF --reward.remote_url, /score, /health, /metrics)",
    after_long_help = SERVE_HELP
)]
pub struct ServeArgs {
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one (the address is printed on standard output).
    #[arg(long, short, default_value_t = 5000)]
    port: u16,
    /// Task for OpenRLHF labels that are a plain answer, not a JSON object with "task".
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(mixed_r1_reward::router::TASKS))]
    default_task: Option<String>,
    /// Largest request body in bytes; larger gets 413.
    #[arg(long, default_value_t = 16 << 20)]
    max_body_bytes: usize,
    /// Most samples in one request; more gets 413.
    #[arg(long, default_value_t = 4096)]
    max_batch: usize,
    /// Scoring requests handled at once; more wait (up to --request-timeout) for a slot.
    #[arg(long, default_value_t = 64)]
    max_concurrency: usize,
    /// Seconds a client has to send its whole body (408 after).
    #[arg(long, default_value_t = 30.0)]
    read_timeout: f64,
    /// Seconds the server may spend on a request, waiting for a slot plus scoring, not counting
    /// the client's sending (503 after). Keep it plus --read-timeout below the client's timeout.
    #[arg(long, default_value_t = 120.0)]
    request_timeout: f64,
    /// Seconds requests in flight may still take after SIGTERM / Ctrl-C.
    #[arg(long, default_value_t = 30.0)]
    shutdown_grace: f64,
    /// Log filter (RUST_LOG syntax; RUST_LOG wins): `debug` logs one line per request.
    #[arg(long, default_value = "info")]
    log: String,
    #[command(flatten)]
    reward: RewardOpts,
}

fn seconds(name: &str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("--{name} must be a positive number"))
}

pub fn run(args: ServeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log))
        .with_context(|| format!("bad --log filter `{}`", args.log))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        max_batch: args.max_batch,
        max_concurrency: args.max_concurrency,
        read_timeout: seconds("read-timeout", args.read_timeout)?,
        request_timeout: seconds("request-timeout", args.request_timeout)?,
        shutdown_grace: seconds("shutdown-grace", args.shutdown_grace)?,
        default_task: args.default_task.clone(),
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let scorer = Arc::new(args.reward.scorer()?);

    // Scoring runs on the rayon pool; the async threads only move bytes, so a few suffice.
    let io_threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(io_threads)
        .thread_name("mixed-r1-http")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        let addr: SocketAddr = listener.local_addr()?;
        // Installed before the address is announced: a SIGTERM from then on is a clean stop.
        let shutdown =
            mixed_r1_server::shutdown_signal().context("cannot install signal handlers")?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "mixed-r1 reward server listening on http://{addr}")?;
        out.flush()?;
        drop(out);
        mixed_r1_server::serve(listener, scorer, config, shutdown)
            .await
            .context("server failed")
    })
}
