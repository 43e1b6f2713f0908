//! The `cdc` command line: `cdc run`, `cdc print-config`.

use cdc_connect::config::{LogFormat, PipelineFile};
use cdc_connect::connect::{self, ConnectorConfig, WorkerSettings};
use cdc_connect::run::{self, Outcome};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Change data capture from SQL Server to Kafka and S3, as a service.
#[derive(Debug, Parser)]
#[command(name = "cdc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a pipeline until SIGTERM/SIGINT (flush, checkpoint, exit 0) or failure (exit 1).
    Run {
        #[command(flatten)]
        input: Input,
        /// Log format (overrides `format` in the `[log]` table).
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
    },
    /// Connects and reports what would be captured and every problem with its fix; exits 1
    /// when there are problems.
    Check {
        #[command(flatten)]
        input: Input,
    },
    /// Prints the pipeline file (translated from Kafka Connect configurations, if given)
    /// as TOML, secrets redacted.
    PrintConfig {
        #[command(flatten)]
        input: Input,
    },
}

#[derive(Debug, Args)]
struct Input {
    /// The pipeline file (TOML).
    #[arg(
        required_unless_present = "connect_config",
        conflicts_with = "connect_config"
    )]
    config: Option<PathBuf>,
    /// A Kafka Connect connector configuration (JSON, REST or flat form); repeat for the
    /// source and the sink.
    #[arg(long = "connect-config", value_name = "FILE")]
    connect_config: Vec<PathBuf>,
    /// The Kafka Connect worker's bootstrap.servers, for translated configurations.
    #[arg(long, env = "CDC_KAFKA_BROKERS", value_name = "HOST:PORT")]
    kafka_brokers: Option<String>,
    /// Address of the `/metrics`, `/health` and `/ready` endpoints (the file's `[ops] listen`,
    /// which it overrides), e.g. `0.0.0.0:9464`. Translated Kafka Connect configurations have
    /// no `[ops]` section: without this they run with no endpoints.
    #[arg(long, env = "CDC_OPS_LISTEN", value_name = "HOST:PORT")]
    listen: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

fn load(input: &Input) -> Result<PipelineFile, String> {
    let mut file = load_file(input)?;
    if let Some(listen) = &input.listen {
        file.ops.listen = Some(listen.clone());
    }
    Ok(file)
}

fn load_file(input: &Input) -> Result<PipelineFile, String> {
    if let Some(path) = &input.config {
        let file = PipelineFile::load(path).map_err(|e| e.to_string())?;
        for warning in &file.warnings {
            eprintln!("warning: {warning}");
        }
        return Ok(file);
    }
    let connectors = input
        .connect_config
        .iter()
        .map(|p| ConnectorConfig::load(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let worker = WorkerSettings {
        brokers: input.kafka_brokers.clone(),
    };
    let translation = connect::translate(&connectors, &worker).map_err(|e| e.to_string())?;
    for warning in &translation.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(translation.file)
}

fn init_logging(file: &PipelineFile, format: Option<LogFormatArg>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(file.log.level.clone().unwrap_or_else(|| "info".into()))
    });
    let json = match format {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Text) => false,
        None => file.log.format == Some(LogFormat::Json),
    };
    // Colours only on a terminal: redirected logs stay plain text for files and collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(cdc_connect::progress::stderr_is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::PrintConfig { input } => match load(&input) {
            Ok(file) => {
                print!("{}", file.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Check { input } => {
            let file = match load(&input) {
                Ok(file) => file,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            let report = runtime.block_on(cdc_connect::check::check(&file));
            print!("{}", report.render());
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Run { input, log_format } => {
            let file = match load(&input) {
                Ok(file) => file,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            init_logging(&file, log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            let outcome = runtime.block_on(async {
                let stop = CancellationToken::new();
                if let Err(e) = run::stop_on_signals(stop.clone()) {
                    return Outcome::Failed(format!("cannot install signal handlers: {e}"));
                }
                run::run(&file, stop).await
            });
            // Background tasks (ops server, librdkafka callbacks) must not delay the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            if let Outcome::Failed(reason) = &outcome {
                eprintln!("error: {reason}");
            }
            ExitCode::from(u8::try_from(outcome.exit_code()).unwrap_or(1))
        }
    }
}
