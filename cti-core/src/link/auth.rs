//! Passwords: Argon2id hashes in PHC string form (`password_hash` in the configuration),
//! checked on a worker thread so that a deliberately slow hash never stalls the poll
//! loop that carries everyone's events.

use std::io::Read;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::Secret;

/// Hash a password for the configuration (`hotline passwd`), with a fresh random salt
/// from the operating system.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut salt))
        .map_err(|e| format!("cannot read random bytes for the salt from /dev/urandom: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Is this a PHC string Argon2 can check? (Configuration validation.)
pub fn check_hash(hash: &str) -> Result<(), String> {
    PasswordHash::new(hash).map(|_| ()).map_err(|e| {
        format!("not a password hash ({e}): expected a PHC string such as \"$argon2id$v=19$...\" from `hotline passwd`")
    })
}

/// Does the password prove the account?
pub fn verify(secret: &Secret, password: &str, allow_no_password: bool) -> bool {
    match secret {
        Secret::Hash(h) => match PasswordHash::new(h) {
            Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        },
        Secret::Plain(p) => constant_time_eq(p.as_bytes(), password.as_bytes()),
        Secret::None => allow_no_password,
    }
}

/// Compare without stopping at the first difference, so the time taken does not tell
/// how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_checks_and_a_wrong_one_does_not() {
        let h = hash_password("s3cret").expect("hash");
        assert!(check_hash(&h).is_ok());
        assert!(verify(&Secret::Hash(h.clone()), "s3cret", false));
        assert!(!verify(&Secret::Hash(h), "s3creT", false));
        assert!(!verify(&Secret::Plain("abc".into()), "abcd", false));
        assert!(!verify(&Secret::None, "", false));
    }
}
