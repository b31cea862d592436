//! Reloading the configuration while calls go on (SIGHUP).
//!
//! What a running center can take without dropping or re-routing anything in progress
//! is applied; anything that would need the engine rebuilt is refused as a whole, and
//! the old configuration stays. Applied: routing (access numbers, schedules,
//! holidays), VIP and blacklist entries, locations, not-ready reasons, feature codes,
//! timers, queue parameters (ring timeout, wrap-up, limits and their targets,
//! announcements, music, numbers, reserve), agent names, passwords and accounts,
//! agent groups and supervisors' groups. Refused (restart to change): stations, trunk
//! groups, the list and order of queues, agents and supervisors, a queue's strategy,
//! preferences or required skills, an agent's queues, levels, skills or location.

use super::{Dest, Engine, QueueIx};
use crate::config::Config;

impl Engine {
    /// Apply a new configuration. Returns what changed (one line each), or why
    /// nothing was applied.
    pub fn reload(&mut self, new: Config) -> Result<Vec<String>, String> {
        let old = &self.cfg;
        let mut refuse = Vec::new();
        if new.stations != old.stations {
            refuse.push("stations changed".to_string());
        }
        if new.trunk_groups != old.trunk_groups {
            refuse.push("trunk groups changed".to_string());
        }
        let names = |c: &Config| c.queues.iter().map(|q| q.name.clone()).collect::<Vec<_>>();
        if names(&new) != names(old) {
            refuse.push("queues were added, removed or reordered".to_string());
        } else {
            for (a, b) in old.queues.iter().zip(&new.queues) {
                if a.strategy != b.strategy || a.prefer != b.prefer || a.required_skills != b.required_skills
                {
                    refuse
                        .push(format!("queue {}: strategy, preferences or required skills changed", a.name));
                }
            }
        }
        let ids = |c: &Config| c.agents.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
        if ids(&new) != ids(old) {
            refuse.push("agents were added, removed or reordered".to_string());
        } else {
            for (a, b) in old.agents.iter().zip(&new.agents) {
                if a.queues != b.queues || a.skills != b.skills || a.location != b.location {
                    refuse.push(format!("agent {}: queues, levels, skills or location changed", a.id));
                }
            }
        }
        let sup_ids = |c: &Config| c.supervisors.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        if sup_ids(&new) != sup_ids(old) {
            refuse.push("supervisors were added, removed or reordered".to_string());
        }
        if !refuse.is_empty() {
            return Err(format!(
                "not reloaded (restart to apply): {}; the running configuration is unchanged",
                refuse.join("; ")
            ));
        }

        let mut changed = Vec::new();
        for (qi, q) in new.queues.iter().enumerate() {
            let cur = &mut self.queues[qi].conf;
            if cur != q {
                if cur.number != q.number {
                    if let Some(n) = &cur.number {
                        self.numbers.remove(n);
                    }
                    if let Some(n) = &q.number {
                        self.numbers.insert(n.clone(), Dest::Queue(qi as QueueIx));
                    }
                }
                changed.push(format!("queue {}", q.name));
                *cur = q.clone();
            }
        }
        let n_agents = new.agents.len();
        for (i, a) in new.agents.iter().enumerate() {
            let cur = &mut self.agents[i];
            if cur.name != a.name || cur.password != a.password {
                cur.name = a.name.clone();
                cur.password = a.password.clone();
                changed.push(format!("agent {}", a.id));
            }
        }
        for (i, s) in new.supervisors.iter().enumerate() {
            let cur = &mut self.agents[n_agents + i];
            if cur.name != s.name || cur.password != s.password {
                cur.name = s.name.clone();
                cur.password = s.password.clone();
                changed.push(format!("supervisor {}", s.id));
            }
        }
        if old.access_numbers != new.access_numbers
            || old.schedules != new.schedules
            || old.holidays != new.holidays
        {
            changed.push("routing (access numbers, schedules, holidays)".into());
        }
        if old.vips != new.vips || old.blacklist != new.blacklist {
            changed.push("VIP and blacklist entries".into());
        }
        if old.locations != new.locations {
            changed.push("locations".into());
        }
        if old.agents.iter().map(|a| &a.accounts).ne(new.agents.iter().map(|a| &a.accounts)) {
            changed.push("dedicated accounts".into());
        }
        if old.agent_groups != new.agent_groups || old.supervisors != new.supervisors {
            changed.push("agent groups and supervisors' groups".into());
        }
        if old.features != new.features
            || old.not_ready_reasons != new.not_ready_reasons
            || old.inter_digit_timeout != new.inter_digit_timeout
            || old.desktop_grace != new.desktop_grace
            || old.music_on_hold != new.music_on_hold
            || old.utc_offset_secs != new.utc_offset_secs
        {
            changed.push("feature codes, reasons and timers".into());
        }

        self.access = new.access_numbers.iter().enumerate().map(|(i, a)| (a.dnis.clone(), i)).collect();
        let names: Vec<String> = new.locations.values().cloned().collect();
        for n in names {
            self.intern_location(&n);
        }
        self.dedicated.clear();
        for (i, a) in new.agents.iter().enumerate() {
            for acc in &a.accounts {
                self.dedicated.insert(acc.clone(), i as super::AgentIx);
            }
        }
        self.cfg = new;
        Ok(changed)
    }
}
