//! Exit codes, so scripts can tell a usage mistake from bad input from a failure.

use std::process::ExitCode;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Bad input: a file that cannot be read or parsed, a malformed configuration.
    Input = 1,
    /// The command ran but failed (a card backend error, a write that failed).
    Failure = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// An error the binary reports to a person: what went wrong, and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn input(message: impl Into<String>) -> Self {
        CliError { exit: Exit::Input, message: message.into() }
    }
    pub fn failure(message: impl Into<String>) -> Self {
        CliError { exit: Exit::Failure, message: message.into() }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
