//! `hotline`: the one binary. The clap definitions here are turned into calls on the
//! library crates; nothing below this file sees clap.

mod audio;
mod cards;
mod ctl;
mod demo;
mod dsp;
mod exit_codes;
mod flow;
mod locate;
mod logging;
mod passwd;
mod plan;
mod prompt;
mod recordings;
mod report;
mod serve;
mod voicemail;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit_codes::CliResult;

#[derive(Debug, Parser)]
#[command(
    name = "hotline",
    version,
    about = "Hotline: an on-premise call center that drives telephony cards"
)]
struct Cli {
    /// How log lines are written on standard error (default: $HOTLINE_LOG_FORMAT, else
    /// text; colour only on a terminal).
    #[arg(long, global = true, value_enum)]
    log_format: Option<logging::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A complete simulated call center: callers, agents, queues, a supervisor; a live
    /// summary in the terminal and the web pages.
    Demo(serve::DemoArgs),
    /// Run an installation: card backends, engine, store, CTI link and web server.
    Serve(serve::ServeArgs),
    /// List the configured cards, spans and channels with their states.
    Cards {
        #[command(subcommand)]
        action: Option<CardsAction>,
        /// The installation file (default: $HOTLINE_CONFIG, then /etc/hotline/hotline.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the card's detectors over a recording.
    #[command(subcommand)]
    Dsp(DspCommand),
    /// Prepare prompt files for cards.
    #[command(subcommand)]
    Prompt(PromptCommand),
    /// Check an installation file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Simulations for planning.
    #[command(subcommand)]
    Sim(SimCommand),
    /// IVR flows: check a flow file, try it at the desk, render prompt sets.
    #[command(subcommand)]
    Flow(flow::FlowCommand),
    /// Reports from the store: calls, missed calls, agents, queues, the IVR.
    Report(report::ReportArgs),
    /// The recording index: list, play, export, tag, schedules.
    #[command(subcommand)]
    Recordings(recordings::RecordingsCommand),
    /// Voicemail: list, play, export, note.
    #[command(subcommand)]
    Voicemail(voicemail::VoicemailCommand),
    /// Hash a password (read from standard input) for `password_hash` in the config.
    Passwd,
    /// Talk to a running server over its control socket: status, agents, queues, calls,
    /// kick, force, reload, drain, clock; with no command, an interactive shell.
    Ctl(ctl::CtlArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Report every problem in an installation file, with its line and what was expected.
    Check {
        /// The installation file (default: $HOTLINE_CONFIG, then /etc/hotline/hotline.toml).
        file: Option<PathBuf>,
    },
    /// Say which installation file commands use without --config, and how it was found.
    Path {
        /// An installation file to check instead.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// The card simulator alone with a switchboard script: scripted callers, DTMF, caller
    /// ID, tones and an alarm, printed as they happen (no engine).
    Card(demo::DemoArgs),
    /// Poisson calls through the real engine in virtual time: service level, speed of
    /// answer, abandonment and occupancy for sizing a center.
    Traffic(plan::TrafficArgs),
}

#[derive(Debug, Subcommand)]
enum CardsAction {
    /// Find telephony hardware on this machine: DAHDI spans and channels, and the vendor
    /// SDK libraries an installation file names. Says what to install when none is found.
    Probe {
        /// An installation file whose vendor SDK paths to check.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The file system root to look under (for testing against a copy of /proc).
        #[arg(long, default_value = "/", hide = true)]
        root: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct AudioArgs {
    /// A WAV file (any encoding, rate and channels) or raw 8 kHz mono audio.
    file: PathBuf,
    /// The file is raw 8 kHz mono audio in this format.
    #[arg(long)]
    format: Option<audio::RawFormat>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum DspCommand {
    /// DTMF digits in a recording, with start and end times.
    Dtmf(AudioArgs),
    /// Call-progress and fax tones in a recording.
    Tones {
        #[command(flatten)]
        audio: AudioArgs,
        /// Tone plan: china, itu, north_america, ...
        #[arg(long, default_value = "china")]
        plan: String,
    },
    /// Caller ID (FSK Bell 202, FSK V.23 or DTMF) in a recording of an analog line.
    Callerid(AudioArgs),
}

#[derive(Debug, Subcommand)]
enum PromptCommand {
    /// Convert any WAV to 8 kHz mono for cards, resampled properly.
    Convert {
        /// The WAV file to convert (any rate, channels and encoding).
        input: PathBuf,
        /// The file to write: an 8 kHz mono WAV.
        output: PathBuf,
        /// The encoding of the file written.
        #[arg(long, value_enum, default_value = "alaw")]
        encoding: prompt::OutEncoding,
    },
}

fn run(cli: Cli) -> CliResult<String> {
    match cli.command {
        Command::Demo(args) => serve::demo(args).map(|()| String::new()),
        Command::Serve(args) => serve::serve(args).map(|()| String::new()),
        Command::Passwd => passwd::run(),
        Command::Cards { action: None, config, json } => {
            cards::run(&locate::config(config.as_deref())?.0, json)
        }
        Command::Cards { action: Some(CardsAction::Probe { config, root }), .. } => {
            cards::probe(&root, config.as_deref())
        }
        Command::Dsp(DspCommand::Dtmf(a)) => dsp::dtmf(&audio::load(&a.file, a.format)?, a.json),
        Command::Dsp(DspCommand::Tones { audio: a, plan }) => {
            dsp::tones(&audio::load(&a.file, a.format)?, &plan, a.json)
        }
        Command::Dsp(DspCommand::Callerid(a)) => dsp::callerid(&audio::load(&a.file, a.format)?, a.json),
        Command::Prompt(PromptCommand::Convert { input, output, encoding }) => {
            prompt::convert(&input, &output, encoding)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            plan::config_check(&locate::config(file.as_deref())?.0)
        }
        Command::Config(ConfigCommand::Path { config }) => locate::config_path(config.as_deref()),
        Command::Ctl(args) => ctl::run(args),
        Command::Sim(SimCommand::Card(args)) => demo::run(args).map(|()| String::new()),
        Command::Sim(SimCommand::Traffic(args)) => plan::traffic(args),
        Command::Flow(cmd) => flow::run(cmd),
        Command::Report(args) => report::run(args),
        Command::Recordings(cmd) => recordings::run(cmd),
        Command::Voicemail(cmd) => voicemail::run(cmd),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::set_format(cli.log_format);
    match run(cli) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hotline: {}", e.message);
            e.exit.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// Every subcommand and every argument, at every depth, says what it is for.
    #[test]
    fn every_subcommand_and_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(p.clone());
                }
                walk(sub, &p, missing);
            }
        }
        let mut cmd = super::Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "hotline", &mut missing);
        assert!(missing.is_empty(), "no help text for:\n  {}", missing.join("\n  "));
    }
}
