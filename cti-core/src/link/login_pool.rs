//! Password checks off the poll loop: a small pool of worker threads, fed fairly.
//!
//! Argon2 is slow on purpose (tens of milliseconds and ~19 MiB per check), so the poll
//! loop never hashes. It keeps the Logins waiting for a worker in one queue per client
//! address and hands them to the workers round robin, in three lanes: addresses where
//! someone logged in before go first, then addresses with no failed Login on record,
//! then the rest. A flood waits behind itself, not in front of a real user: as soon as
//! a flooding address fails once it is served last. Only as many checks as there are
//! workers are handed over at once, so memory stays at one Argon2 block per worker
//! however many Logins arrive. When the queues are full, a Login of a better lane takes
//! the place of the newest one of a worse lane (which is refused); otherwise the new
//! Login is refused at once.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::{auth, Account, Shared};

pub(super) struct AuthJob {
    pub conn: u32,
    pub invoke: u32,
    pub addr: IpAddr,
    /// The user name as sent (also when no account has it).
    pub user: String,
    pub account: Option<Account>,
    pub password: String,
    pub station: Option<String>,
    pub allow_no_password: bool,
}

pub(super) struct AuthDone {
    pub conn: u32,
    pub invoke: u32,
    pub addr: IpAddr,
    pub user: String,
    pub account: Option<Account>,
    pub password: String,
    pub station: Option<String>,
    pub ok: bool,
}

/// Whose Login it is, for its place in line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Lane {
    /// Someone logged in from this address before.
    Trusted = 0,
    /// No failure on record for this address.
    Clean = 1,
    /// This address failed (Logins or bad requests) lately.
    Suspect = 2,
}

/// Why a Login was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Busy {
    /// This address already has its share of Logins waiting.
    Address(usize),
    /// Every queue is full.
    Full(usize),
}

pub(super) struct LoginPool {
    jobs: Sender<AuthJob>,
    pub done: Receiver<AuthDone>,
    workers: usize,
    in_flight: usize,
    waiting: HashMap<IpAddr, VecDeque<AuthJob>>,
    /// Addresses with Logins waiting, in turn order, per lane (and the lane of each).
    turns: [VecDeque<IpAddr>; 3],
    lane_of: HashMap<IpAddr, Lane>,
    queued: usize,
    max_queued: usize,
    per_address: usize,
    /// Addresses where a Login succeeded, and when (bounded).
    known_good: HashMap<IpAddr, Instant>,
}

const KNOWN_GOOD_CAP: usize = 4096;

impl LoginPool {
    /// Start `workers` threads. `accounts` give the Argon2 parameters the stand-in hash
    /// is made with, so a check of an unknown user costs what a real one does.
    pub fn start(
        workers: usize,
        max_queued: usize,
        per_address: usize,
        accounts: &[Account],
        shared: Arc<Shared>,
    ) -> std::io::Result<LoginPool> {
        let workers = workers.max(1);
        let (jobs, job_rx) = crossbeam_channel::bounded::<AuthJob>(workers);
        let (done_tx, done) = crossbeam_channel::bounded::<AuthDone>(workers * 2);
        let like = accounts.iter().find_map(|a| match &a.secret {
            super::Secret::Hash(h) => Some(h.clone()),
            _ => None,
        });
        for n in 0..workers {
            let (job_rx, done_tx, shared, like) =
                (job_rx.clone(), done_tx.clone(), shared.clone(), like.clone());
            std::thread::Builder::new().name(format!("hotline-link-auth-{n}")).spawn(move || {
                let checker = auth::Checker::new(like.as_deref());
                for j in job_rx {
                    let ok = checker.check(
                        j.account.as_ref().map(|a| &a.secret),
                        &j.password,
                        j.allow_no_password,
                    );
                    let d = AuthDone {
                        conn: j.conn,
                        invoke: j.invoke,
                        addr: j.addr,
                        user: j.user,
                        account: j.account,
                        password: j.password,
                        station: j.station,
                        ok,
                    };
                    if done_tx.send(d).is_err() {
                        return;
                    }
                    let _ = shared.waker.wake();
                }
            })?;
        }
        Ok(LoginPool {
            jobs,
            done,
            workers,
            in_flight: 0,
            waiting: HashMap::new(),
            turns: Default::default(),
            lane_of: HashMap::new(),
            queued: 0,
            max_queued: max_queued.max(1),
            per_address: per_address.max(1),
            known_good: HashMap::new(),
        })
    }

    /// Queue a check; it goes to a worker when its address's turn comes. `suspect`:
    /// the address has failures on record. A Login it displaced (queues full) is
    /// returned, to be refused.
    pub fn submit(&mut self, job: AuthJob, suspect: bool) -> Result<Option<AuthJob>, Busy> {
        let q = self.waiting.get(&job.addr).map_or(0, VecDeque::len);
        if q >= self.per_address {
            return Err(Busy::Address(self.per_address));
        }
        let addr = job.addr;
        let lane = match self.lane_of.get(&addr) {
            Some(l) => *l,
            None if self.known_good.contains_key(&addr) => Lane::Trusted,
            None if suspect => Lane::Suspect,
            None => Lane::Clean,
        };
        let mut displaced = None;
        if self.queued >= self.max_queued {
            // The newest Login of the worst lane below this one gives way.
            let worst = (lane as usize + 1..3).rev().find(|&l| !self.turns[l].is_empty());
            let full = Busy::Full(self.max_queued);
            let Some(worst) = worst else { return Err(full) };
            let Some(&victim) = self.turns[worst].back() else { return Err(full) };
            let Some(vq) = self.waiting.get_mut(&victim) else { return Err(full) };
            displaced = vq.pop_back();
            if vq.is_empty() {
                self.waiting.remove(&victim);
                self.lane_of.remove(&victim);
                self.turns[worst].pop_back();
            }
            self.queued -= 1;
        }
        let q = self.waiting.entry(addr).or_default();
        if q.is_empty() {
            self.turns[lane as usize].push_back(addr);
            self.lane_of.insert(addr, lane);
        }
        q.push_back(job);
        self.queued += 1;
        Ok(displaced)
    }

    /// A worker finished a check.
    pub fn finished(&mut self, addr: IpAddr, ok: bool, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if ok {
            if self.known_good.len() >= KNOWN_GOOD_CAP && !self.known_good.contains_key(&addr) {
                if let Some(oldest) = self.known_good.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a) {
                    self.known_good.remove(&oldest);
                }
            }
            self.known_good.insert(addr, now);
        }
    }

    /// Hand waiting checks to idle workers, one address at a time. `alive` says whether
    /// the Login's connection is still there (a closed one's check is skipped).
    pub fn pump(&mut self, alive: impl Fn(u32) -> bool) {
        while self.in_flight < self.workers {
            let Some(job) = self.next_job() else { return };
            if !alive(job.conn) {
                continue;
            }
            match self.jobs.try_send(job) {
                Ok(()) => self.in_flight += 1,
                // Workers gone (shutting down) or the channel unexpectedly full: the
                // Login gets no answer; its connection is closing anyway.
                Err(_) => return,
            }
        }
    }

    fn next_job(&mut self) -> Option<AuthJob> {
        let lane = (0..3).find(|&l| !self.turns[l].is_empty())?;
        let addr = self.turns[lane].pop_front()?;
        let q = self.waiting.get_mut(&addr)?;
        let job = q.pop_front();
        if q.is_empty() {
            self.waiting.remove(&addr);
            self.lane_of.remove(&addr);
        } else {
            self.turns[lane].push_back(addr);
        }
        if job.is_some() {
            self.queued -= 1;
        }
        job
    }
}
