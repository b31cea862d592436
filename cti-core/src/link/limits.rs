//! What one client may cost everyone else: connection caps (in total and per address),
//! failed-login backoff and lockout (per address and per account), the descriptor
//! budget and the WebSocket `Origin` check. Plain bookkeeping with time passed in; the
//! poll loop (`server`) asks and tells.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::LinkConfig;

/// Connections open per client address, and in total.
#[derive(Debug, Default)]
pub(super) struct ConnCount {
    per_addr: HashMap<IpAddr, u32>,
    total: u32,
}

/// Why a new connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    Total(usize),
    PerAddress(usize),
}

impl Refusal {
    pub fn message(self) -> String {
        match self {
            Refusal::Total(n) => {
                format!("the server has its maximum of {n} connections open; retry later")
            }
            Refusal::PerAddress(n) => {
                format!("this address has its maximum of {n} connections open; close one first")
            }
        }
    }
}

impl ConnCount {
    /// Count a new connection from `ip`, or say why it is refused.
    pub fn admit(&mut self, ip: IpAddr, max_total: usize, max_per_addr: usize) -> Result<(), Refusal> {
        if self.total as usize >= max_total {
            return Err(Refusal::Total(max_total));
        }
        let n = self.per_addr.entry(ip).or_default();
        if *n as usize >= max_per_addr {
            return Err(Refusal::PerAddress(max_per_addr));
        }
        *n += 1;
        self.total += 1;
        Ok(())
    }

    pub fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_addr.get_mut(&ip) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.per_addr.remove(&ip);
            }
        }
    }

    #[cfg(test)]
    fn total(&self) -> usize {
        self.total as usize
    }
}

/// The failed-login policy (`[link] login_*` keys, docs/protocol.md "Logins").
///
/// Failures leak away, one per `decay`, so the occasional mistyped password never adds
/// up; past the free ones, each further failure doubles the wait before the next try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoginPolicy {
    /// Failures allowed for one user name before the backoff starts.
    pub free_failures: u32,
    /// The same for one client address (higher: a site behind NAT or a proxy shares
    /// one address).
    pub address_free_failures: u32,
    /// The first wait; each further failure doubles it, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Failures (not yet leaked away) that lock a user name (0: never).
    pub lockout_failures: u32,
    /// How long a lockout lasts unless a supervisor lifts it first (`None`: until lifted).
    pub lockout: Option<Duration>,
    /// One failure is forgotten per this much time.
    pub decay: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            free_failures: 5,
            address_free_failures: 20,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            lockout_failures: 20,
            lockout: Some(Duration::from_secs(900)),
            decay: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    /// Failures not yet leaked away, as of `at`.
    failures: f64,
    at: Instant,
    /// No attempt before this.
    wait_until: Option<Instant>,
    /// Locked (user names only) since; lifted by a supervisor or after `lockout`.
    locked_at: Option<Instant>,
}

impl Record {
    fn leak(&mut self, now: Instant, decay: Duration) {
        let gone = now.saturating_duration_since(self.at).as_secs_f64() / decay.as_secs_f64().max(1e-3);
        self.failures = (self.failures - gone).max(0.0);
        self.at = now;
    }
}

/// Why a login attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// Wait this long, then try again.
    Backoff(Duration),
    /// Locked: a supervisor lifts it (`UnlockAccount`), or it ends after this long.
    Locked(Option<Duration>),
}

/// Failure records for keys of one kind (client addresses, or user names as typed:
/// unknown names are tracked the same way as known ones, so a refusal never tells them
/// apart). At most `cap` records: the oldest are forgotten first.
#[derive(Debug)]
pub(super) struct Failures<K> {
    map: HashMap<K, Record>,
    cap: usize,
    policy: LoginPolicy,
    /// Whether failures here lock (user names) or only slow down (addresses).
    locks: bool,
}

impl<K: Hash + Eq + Clone> Failures<K> {
    pub fn new(policy: LoginPolicy, cap: usize, locks: bool) -> Self {
        Failures { map: HashMap::new(), cap: cap.max(1), policy, locks }
    }

    fn free(&self) -> u32 {
        if self.locks {
            self.policy.free_failures
        } else {
            self.policy.address_free_failures
        }
    }

    /// May `key` try now?
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), Hold> {
        let decay = self.policy.decay;
        let Some(r) = self.map.get_mut(key) else { return Ok(()) };
        if let Some(at) = r.locked_at {
            return match self.policy.lockout {
                Some(d) if now >= at + d => {
                    self.map.remove(key);
                    Ok(())
                }
                Some(d) => Err(Hold::Locked(Some(at + d - now))),
                None => Err(Hold::Locked(None)),
            };
        }
        r.leak(now, decay);
        match r.wait_until {
            Some(t) if t > now => Err(Hold::Backoff(t - now)),
            _ => {
                if r.failures <= 0.0 {
                    self.map.remove(key);
                }
                Ok(())
            }
        }
    }

    /// A failure (a wrong password, or for addresses also a bad request). Returns true
    /// when this failure locked the key.
    pub fn fail(&mut self, key: &K, now: Instant) -> bool {
        if !self.map.contains_key(key) && self.map.len() >= self.cap {
            self.make_room(now);
        }
        let (p, free, locks) = (self.policy, self.free(), self.locks);
        let r = self.map.entry(key.clone()).or_insert(Record {
            failures: 0.0,
            at: now,
            wait_until: None,
            locked_at: None,
        });
        if r.locked_at.is_some() {
            return false;
        }
        r.leak(now, p.decay);
        r.failures += 1.0;
        let n = r.failures.ceil() as u32;
        if locks && p.lockout_failures > 0 && n >= p.lockout_failures {
            r.locked_at = Some(now);
            r.wait_until = None;
            return true;
        }
        if n > free {
            let doublings = (n - free - 1).min(20);
            let wait = p.backoff_base.saturating_mul(1 << doublings).min(p.backoff_max);
            r.wait_until = Some(now + wait);
        }
        false
    }

    /// Are failures on record for `key` (not yet leaked away)?
    pub fn has_record(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// A successful login: the key's failures are forgotten.
    pub fn succeed(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Lift a lockout or backoff. False if there was none.
    pub fn lift(&mut self, key: &K) -> bool {
        self.map.remove(key).is_some()
    }

    /// Keys locked or waiting now, with their failures and how long is left (`None`:
    /// locked until lifted).
    pub fn held(&mut self, now: Instant) -> Vec<(K, u32, bool, Option<Duration>)> {
        let keys: Vec<K> = self.map.keys().cloned().collect();
        let mut out = Vec::new();
        for k in keys {
            let failures = self.map.get(&k).map_or(0, |r| r.failures.ceil() as u32);
            match self.check(&k, now) {
                Ok(()) => {}
                Err(Hold::Backoff(d)) => out.push((k, failures, false, Some(d))),
                Err(Hold::Locked(d)) => out.push((k, failures, true, d)),
            }
        }
        out
    }

    fn make_room(&mut self, now: Instant) {
        let decay = self.policy.decay;
        self.map.retain(|_, r| {
            r.leak(now, decay);
            r.locked_at.is_some() || r.failures > 0.0 || r.wait_until.is_some_and(|t| t > now)
        });
        while self.map.len() >= self.cap {
            let oldest = self.map.iter().min_by_key(|(_, r)| r.at).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.map.remove(&k),
                None => break,
            };
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The soft limit on open files of this process (`/proc/self/limits`), if known.
pub(super) fn fd_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    soft.parse().ok()
}

/// The connection cap actually applied: the configured one, but never more than half
/// the process's descriptor limit, so that recordings, the store and the cards always
/// have descriptors left however many clients connect.
pub(super) fn effective_max_connections(configured: usize, fd_limit: Option<usize>) -> usize {
    match fd_limit {
        Some(l) => configured.min(l / 2).max(1),
        None => configured.max(1),
    }
}

/// May a browser page from `origin` open the WebSocket? `host` is the request's `Host`
/// header. Allowed: no `Origin` at all (not a browser: CRMs, desktops, tools); an origin
/// listed in `allowed_origins`; or the page's own origin when the `Host` is an IP
/// address (with port), or `localhost` on a loopback listener. A name in `Host` that is
/// not configured is refused, so a page of another site cannot reach the link through a
/// name it points at this machine (DNS rebinding).
pub(super) fn origin_allowed(cfg: &LinkConfig, origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else { return true };
    let origin = origin.trim_end_matches('/');
    if cfg.allowed_origins.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = host else { return false };
    let Some(authority) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    if !authority.eq_ignore_ascii_case(host) {
        return false;
    }
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    name.eq_ignore_ascii_case("localhost") && cfg.http.is_some_and(|a| a.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LoginPolicy {
        LoginPolicy {
            free_failures: 2,
            address_free_failures: 2,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            lockout_failures: 6,
            lockout: None,
            decay: Duration::from_secs(600),
        }
    }

    #[test]
    fn p13_3_backoff_doubles_then_the_account_locks_until_lifted() {
        let t0 = Instant::now();
        let mut f = Failures::new(policy(), 16, true);
        let k = "1001".to_string();
        assert!(f.check(&k, t0).is_ok());
        f.fail(&k, t0);
        f.fail(&k, t0);
        assert!(f.check(&k, t0).is_ok(), "two free failures");
        f.fail(&k, t0);
        assert_eq!(f.check(&k, t0), Err(Hold::Backoff(Duration::from_secs(1))));
        let t1 = t0 + Duration::from_secs(1);
        assert!(f.check(&k, t1).is_ok());
        f.fail(&k, t1);
        assert_eq!(f.check(&k, t1), Err(Hold::Backoff(Duration::from_secs(2))));
        f.fail(&k, t1);
        assert!(f.fail(&k, t1), "the sixth failure locks");
        assert_eq!(f.check(&k, t1 + Duration::from_secs(3600)), Err(Hold::Locked(None)));
        assert_eq!(f.held(t1).len(), 1);
        assert!(f.lift(&k));
        assert!(f.check(&k, t1).is_ok());
    }

    #[test]
    fn p13_3_addresses_slow_down_but_never_lock_and_records_stay_bounded() {
        let t0 = Instant::now();
        let mut f = Failures::new(policy(), 4, false);
        for _ in 0..50 {
            assert!(!f.fail(&1u32, t0));
        }
        assert_eq!(f.check(&1, t0), Err(Hold::Backoff(Duration::from_secs(8))), "capped at backoff_max");
        for k in 0..100u32 {
            f.fail(&k, t0 + Duration::from_millis(u64::from(k)));
        }
        assert!(f.len() <= 4);
        assert!(f.check(&99, t0 + Duration::from_secs(601)).is_ok(), "leaked away");
    }

    #[test]
    fn p13_2_connections_are_capped_in_total_and_per_address() {
        let mut c = ConnCount::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(c.admit(a, 3, 2).is_ok());
        assert!(c.admit(a, 3, 2).is_ok());
        assert_eq!(c.admit(a, 3, 2), Err(Refusal::PerAddress(2)));
        assert!(c.admit(b, 3, 2).is_ok());
        assert_eq!(c.admit(b, 3, 2), Err(Refusal::Total(3)));
        c.release(a);
        assert!(c.admit(b, 3, 2).is_ok());
        assert_eq!(c.total(), 3);
        assert_eq!(effective_max_connections(4096, Some(1024)), 512);
        assert_eq!(effective_max_connections(100, Some(1024)), 100);
    }

    #[test]
    fn p13_3_websocket_origins() {
        let engine = crate::Config::parse("", "t.toml").expect("empty config");
        let mut cfg = LinkConfig::new(&engine);
        assert!(origin_allowed(&cfg, None, Some("127.0.0.1:7080")), "no Origin: not a browser");
        assert!(origin_allowed(&cfg, Some("http://127.0.0.1:7080"), Some("127.0.0.1:7080")));
        assert!(origin_allowed(&cfg, Some("http://localhost:7080"), Some("localhost:7080")));
        assert!(!origin_allowed(&cfg, Some("http://evil.example"), Some("127.0.0.1:7080")));
        assert!(!origin_allowed(&cfg, Some("http://evil.example:7080"), Some("evil.example:7080")));
        assert!(!origin_allowed(&cfg, Some("null"), Some("127.0.0.1:7080")));
        cfg.allowed_origins.push("https://cc.example.com".into());
        assert!(origin_allowed(&cfg, Some("https://cc.example.com"), Some("cc.example.com")));
    }
}
