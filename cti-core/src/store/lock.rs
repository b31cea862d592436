//! One process per store: `hotline serve` and `hotline demo` hold an exclusive
//! `flock` on `DB.lock` beside the database for as long as they run. A second one on
//! the same database fails at once and names the process that holds it. The lock goes
//! with the process (the kernel releases it on exit, even after `kill -9`); the file
//! stays, with the last holder's pid, and is simply locked again by the next start.
//! Readers (reports, `hotline recordings`) do not take it: WAL lets them read beside
//! the writer.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{StoreError, StoreErrorKind};

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: Flock<File>,
    path: PathBuf,
}

/// `DB` → `DB.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push(".lock");
    PathBuf::from(s)
}

impl StoreLock {
    /// Take the lock of the store at `db` for this process; `what` says who we are
    /// (`hotline demo`), for the message another process gets.
    pub fn acquire(db: &Path, what: &str) -> Result<StoreLock, StoreError> {
        let path = lock_path(db);
        let open_err = |e: std::io::Error| StoreError {
            kind: StoreErrorKind::Open,
            message: format!("{}: cannot open the store's lock file: {e}", path.display()),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(open_err)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("another Hotline ({})", holder.lines().collect::<Vec<_>>().join(", "))
                };
                return Err(StoreError {
                    kind: StoreErrorKind::Locked,
                    message: format!(
                        "{}: the store is in use by {who}; stop it first, or give this one another \
                         [store] path (lock file {})",
                        db.display(),
                        path.display()
                    ),
                });
            }
            Err((_, e)) => return Err(open_err(std::io::Error::from(e))),
        };
        let note = format!("pid {}\n{what}\n", std::process::id());
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(note.as_bytes()))
            .and_then(|()| file.flush());
        if let Err(e) = written {
            // The lock holds all the same; only the message another process gets is poorer.
            tracing::warn!("{}: cannot note our pid: {e}", path.display());
        }
        Ok(StoreLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
