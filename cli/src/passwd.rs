//! `hotline passwd`: print an Argon2 hash of a password for `password_hash` on an
//! `[[agent]]` or `[[supervisor]]`. The password is read from standard input (the
//! first line), never from the command line, so it stays out of shell history and `ps`.

use std::io::BufRead;

use crate::exit_codes::{CliError, CliResult};

pub fn run() -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::input(format!("cannot read the password from standard input: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(CliError::input("empty password: type it (or pipe it) on standard input, one line"));
    }
    let hash = hotline_cti::link::auth::hash_password(password).map_err(CliError::failure)?;
    Ok(format!("password_hash = \"{hash}\"\n"))
}
