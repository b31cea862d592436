//! Where the installation file is when no `--config` is given: `$HOTLINE_CONFIG`, then
//! `/etc/hotline/hotline.toml` (docs/operations.md). `hotline config path` says which.

use std::path::{Path, PathBuf};

use crate::exit_codes::{CliError, CliResult};

/// The environment variable naming the installation file.
pub const ENV: &str = "HOTLINE_CONFIG";
/// The installation file of a system install.
pub const DEFAULT: &str = "/etc/hotline/hotline.toml";

/// How the installation file was found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    Default,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Flag => "from --config",
            Source::Env => "from $HOTLINE_CONFIG",
            Source::Default => "the default path",
        }
    }
}

/// The installation file to use and how it was found, without checking that it exists.
pub fn candidate(flag: Option<&Path>) -> (PathBuf, Source) {
    if let Some(p) = flag {
        return (p.to_path_buf(), Source::Flag);
    }
    match std::env::var_os(ENV).filter(|v| !v.is_empty()) {
        Some(v) => (PathBuf::from(v), Source::Env),
        None => (PathBuf::from(DEFAULT), Source::Default),
    }
}

/// The installation file to use; an error that says where it was looked for when
/// there is none.
pub fn config(flag: Option<&Path>) -> CliResult<(PathBuf, Source)> {
    let (path, source) = candidate(flag);
    if path.is_file() {
        return Ok((path, source));
    }
    Err(CliError::input(match source {
        Source::Flag => format!("{}: no such file", path.display()),
        Source::Env => format!("{}: no such file (named by ${ENV})", path.display()),
        Source::Default => {
            format!("no installation file: give --config FILE, set ${ENV}, or install one at {DEFAULT}")
        }
    }))
}

/// `hotline config path`: the file in use and how it was found.
pub fn config_path(flag: Option<&Path>) -> CliResult<String> {
    let (path, source) = config(flag)?;
    Ok(format!("{} ({})\n", path.display(), source.describe()))
}
