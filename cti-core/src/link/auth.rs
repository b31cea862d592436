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

/// Checks passwords so that every check costs one Argon2 verification with the same
/// parameters, whatever the account: an unknown user, an account with a plain
/// `password` or with none are checked against a stand-in hash made with the parameters
/// of the configured hashes, so the time a refusal takes does not tell them apart.
#[derive(Debug)]
pub struct Checker {
    dummy: String,
}

impl Checker {
    /// `like`: a configured hash whose parameters the stand-in copies (Argon2's defaults,
    /// which `hotline passwd` uses, when there is none).
    pub fn new(like: Option<&str>) -> Checker {
        let params = like
            .and_then(|h| PasswordHash::new(h).ok())
            .and_then(|h| argon2::Params::try_from(&h).ok())
            .unwrap_or_default();
        let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        // The stand-in needs no secret salt: nothing is protected by it.
        let dummy = SaltString::encode_b64(b"hotline-no-user!")
            .ok()
            .and_then(|salt| argon.hash_password(b"no such user", &salt).ok().map(|h| h.to_string()))
            .unwrap_or_default();
        Checker { dummy }
    }

    /// Does the password prove the account (`None`: no such user)?
    pub fn check(&self, secret: Option<&Secret>, password: &str, allow_no_password: bool) -> bool {
        let dummy = || {
            let _ = verify(&Secret::Hash(self.dummy.clone()), password, false);
        };
        match secret {
            Some(Secret::Hash(h)) if PasswordHash::new(h).is_ok() => {
                verify(&Secret::Hash(h.clone()), password, false)
            }
            Some(s @ (Secret::Plain(_) | Secret::None)) => {
                dummy();
                verify(s, password, allow_no_password)
            }
            Some(Secret::Hash(_)) | None => {
                dummy();
                false
            }
        }
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

    #[test]
    fn p13_3_the_checker_refuses_unknown_users_and_accepts_each_kind_of_secret() {
        let h = hash_password("s3cret").expect("hash");
        let c = Checker::new(Some(&h));
        assert!(!c.dummy.is_empty());
        assert!(c.check(Some(&Secret::Hash(h.clone())), "s3cret", false));
        assert!(!c.check(Some(&Secret::Hash(h)), "guess", false));
        assert!(c.check(Some(&Secret::Plain("pw".into())), "pw", false));
        assert!(!c.check(None, "no such user", true), "an unknown user never logs in");
        assert!(c.check(Some(&Secret::None), "", true));
        assert!(!c.check(Some(&Secret::None), "", false));
    }
}
