//! `hotline ctl`: commands to a running `serve` (or `demo`) over its control socket,
//! one at a time or in an interactive shell with completion (docs/operations.md).

use std::path::{Path, PathBuf};

use hotline_cti::ctl::{self, COMMANDS};
use hotline_cti::store::StoreConfig;

use crate::exit_codes::{CliError, CliResult};
use crate::locate::{self, Source};

#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The installation file of the server (default: $HOTLINE_CONFIG, a demo running
    /// in this folder, then /etc/hotline/hotline.toml); its socket sits beside the store.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The control socket itself, instead of finding it from the installation file.
    #[arg(long, global = true, conflicts_with = "config")]
    socket: Option<PathBuf>,
    /// Without a command: an interactive shell with tab completion.
    #[command(subcommand)]
    command: Option<CtlCommand>,
}

#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// Spans, channels, calls, agents, queues, store and disk at a glance.
    Status,
    /// Every agent: state, reason, for how long, calls answered today.
    Agents,
    /// Every queue: waiting, longest wait, ready agents, today's figures.
    Queues,
    /// The calls in progress.
    Calls,
    /// Log an agent out (when their call ends, if they are on one).
    Kick {
        /// The agent's id.
        agent: String,
    },
    /// Set an agent's state as a supervisor would force it.
    Force {
        /// The agent's id.
        agent: String,
        /// The state to set.
        #[arg(value_enum)]
        state: ForceState,
        /// The not-ready reason (words).
        reason: Vec<String>,
    },
    /// Read the installation file again and apply what can change (like SIGHUP).
    Reload,
    /// Refuse new calls; calls in progress may go on up to the limit, then the server stops.
    Drain {
        /// Seconds calls in progress may go on.
        #[arg(default_value_t = 300)]
        seconds: u64,
    },
    /// The server's time and time zone, and which access numbers are open now.
    Clock,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ForceState {
    /// Ready for calls.
    Ready,
    /// Not ready, with the reason given after it.
    NotReady,
    /// Logged out.
    Logout,
}

impl CtlCommand {
    /// The request line the server reads.
    fn line(&self) -> String {
        match self {
            CtlCommand::Status => "status".into(),
            CtlCommand::Agents => "agents".into(),
            CtlCommand::Queues => "queues".into(),
            CtlCommand::Calls => "calls".into(),
            CtlCommand::Kick { agent } => format!("kick {agent}"),
            CtlCommand::Force { agent, state, reason } => match state {
                ForceState::Ready => format!("force {agent} ready"),
                ForceState::Logout => format!("force {agent} logout"),
                ForceState::NotReady => format!("force {agent} not-ready {}", reason.join(" ")),
            },
            CtlCommand::Reload => "reload".into(),
            CtlCommand::Drain { seconds } => format!("drain {seconds}"),
            CtlCommand::Clock => "clock".into(),
        }
    }
}

/// The control socket of the installation file at `config`: beside its store.
fn socket_of(config: &Path) -> CliResult<PathBuf> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| CliError::input(format!("cannot read {}: {e}", config.display())))?;
    let store = StoreConfig::from_toml(&text, config).map_err(CliError::input)?;
    Ok(ctl::socket_path(&store.path))
}

/// Find the server: --socket, --config, $HOTLINE_CONFIG, a demo running in this
/// folder, /etc/hotline/hotline.toml. Returns the socket and how it was found.
pub fn find(config: Option<&Path>, socket: Option<&Path>) -> CliResult<(PathBuf, String)> {
    if let Some(s) = socket {
        return Ok((s.to_path_buf(), "from --socket".into()));
    }
    let (path, source) = locate::candidate(config);
    if source != Source::Default {
        let (path, source) = locate::config(config)?;
        return Ok((socket_of(&path)?, format!("{} {}", path.display(), source.describe())));
    }
    // The built-in demo keeps its store under the folder it runs in.
    let demo = StoreConfig::from_toml(crate::serve::DEMO_CONFIG, Path::new("examples/demo.toml"))
        .map(|s| ctl::socket_path(&s.path))
        .map_err(CliError::input)?;
    if demo.exists() {
        return Ok((demo, "the demo running in this folder".into()));
    }
    if path.is_file() {
        return Ok((socket_of(&path)?, format!("{} ({})", path.display(), source.describe())));
    }
    Err(CliError::input(format!(
        "no server to talk to: give --config FILE or --socket PATH, set ${}, run this in the folder of a \
         running demo, or install {}",
        locate::ENV,
        locate::DEFAULT
    )))
}

pub fn run(a: CtlArgs) -> CliResult<String> {
    let (socket, _how) = find(a.config.as_deref(), a.socket.as_deref())?;
    match a.command {
        Some(cmd) => ctl::request(&socket, &cmd.line()).map_err(CliError::failure),
        None => shell(&socket).map(|()| String::new()),
    }
}

/// Completion for the shell: commands, then agent ids, then states.
struct Helper {
    agents: Vec<String>,
}

impl Helper {
    fn candidates(&self, words: &[&str], partial: &str) -> Vec<String> {
        let pool: Vec<String> = match words {
            [] => COMMANDS.iter().map(|(c, _, _)| c.to_string()).chain(["quit".to_string()]).collect(),
            ["kick"] | ["force"] => self.agents.clone(),
            ["force", _] => vec!["ready".into(), "not-ready".into(), "logout".into()],
            _ => Vec::new(),
        };
        pool.into_iter().filter(|c| c.starts_with(partial)).collect()
    }
}

impl rustyline::completion::Completer for Helper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let words: Vec<&str> = before[..start].split_whitespace().collect();
        let partial = &before[start..];
        let mut found = self.candidates(&words, partial);
        if found.len() == 1 {
            found[0].push(' ');
        }
        Ok((start, found))
    }
}

impl rustyline::hint::Hinter for Helper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Helper {}
impl rustyline::validate::Validator for Helper {}
impl rustyline::Helper for Helper {}

/// The interactive shell: a prompt, the same commands, `help`, `quit` (or Ctrl-D).
fn shell(socket: &Path) -> CliResult {
    let names = ctl::request(socket, "names").map_err(CliError::failure)?;
    let agents = names.lines().filter_map(|l| l.strip_prefix("agent ")).map(str::to_string).collect();
    let mut ed: rustyline::Editor<Helper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new().map_err(|e| CliError::failure(format!("cannot start the shell: {e}")))?;
    ed.set_helper(Some(Helper { agents }));
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if interactive {
        println!(
            "Connected to {}. Tab completes; `help` lists the commands; `quit` or Ctrl-D leaves.",
            socket.display()
        );
    }
    let mut failed = false;
    loop {
        let line = match ed.readline("hotline> ") {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::failure(format!("the shell: {e}"))),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" || line == "exit" {
            break;
        }
        let _ = ed.add_history_entry(line);
        match ctl::request(socket, line) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    if failed && !interactive {
        return Err(CliError::failure("a command failed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_offers_commands_then_agents_then_states() {
        let h = Helper { agents: vec!["1001".into(), "1002".into(), "2001".into()] };
        assert_eq!(h.candidates(&[], "st"), vec!["status".to_string()]);
        assert!(h.candidates(&[], "").contains(&"drain".to_string()));
        assert_eq!(h.candidates(&["kick"], "10"), vec!["1001".to_string(), "1002".to_string()]);
        assert_eq!(h.candidates(&["force", "1001"], "n"), vec!["not-ready".to_string()]);
        assert!(h.candidates(&["status"], "").is_empty());
    }
}
