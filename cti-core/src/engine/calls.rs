//! The call model: inbound calls on trunks and their identification and routing,
//! outbound calls, parties leaving, clearing, transfer and conference, and the card's
//! bus (pairs, conference bridges, music and tones) kept in step with each call.

use std::collections::BTreeMap;

use hotline_drivers::command::MemberRights;
use hotline_drivers::signal::{CallerCategory, CallerId, Tone};
use hotline_drivers::{Cause, ChannelId, Command, ConferenceId};

use super::station::{Playing, StationMode};
use super::{Call, Engine, Media, Output, Party, Stage, StationIx};
use crate::config::BlacklistAction;
use crate::csta::{CallId, ConnectionState, CstaEvent, DeviceId, EventCause, Record, SupervisionMode};

/// The longest entry of a prefix table that starts `number`.
fn longest_prefix<'a, V>(table: &'a BTreeMap<String, V>, number: &str) -> Option<&'a V> {
    (1..=number.len()).rev().find_map(|n| table.get(&number[..n]))
}

impl Engine {
    pub(crate) fn new_call(&mut self, ani: Option<String>, dnis: String) -> CallId {
        let id = CallId(self.next_call);
        self.next_call += 1;
        let location = ani
            .as_deref()
            .and_then(|n| longest_prefix(&self.cfg.locations, n))
            .and_then(|name| self.loc_ids.get(name).copied());
        let mut data = BTreeMap::new();
        if let Some(l) = ani.as_deref().and_then(|n| longest_prefix(&self.cfg.locations, n)) {
            data.insert("location".to_string(), l.clone());
        }
        self.calls.insert(
            id,
            Call {
                ani,
                dnis,
                location,
                vip: false,
                data,
                parties: Vec::new(),
                stage: Stage::Active,
                queue: None,
                line: (0, 0),
                queued_at: None,
                tried: Vec::new(),
                ring_gen: 0,
                wait_gen: 0,
                agent: None,
                started: self.now,
                answered: None,
                media: Media::default(),
                pending_dial: None,
                refused_trunks: Vec::new(),
                pending_supervise: None,
                announce_gen: 0,
                callback_offered: false,
            },
        );
        id
    }

    pub(crate) fn take_trunk(&mut self, ch: ChannelId, call: CallId) {
        let t = self.trunks.entry(ch).or_default();
        t.call = Some(call);
        if let Some(g) = t.group {
            self.free_trunks[g as usize].remove(&ch);
        }
    }

    /// A call offered on a trunk: identify the caller, then route by the called number.
    pub(crate) fn on_offered(&mut self, ch: ChannelId, ani: Option<String>, dnis: String) {
        if self.trunks.get(&ch).is_some_and(|t| t.call.is_some() || t.releasing) {
            // Glare or a stale view: the channel is ours already.
            return self.cmd(Command::Reject { ch, cause: Cause::REQUESTED_CHANNEL_NOT_AVAILABLE });
        }
        let call = self.new_call(ani.clone(), dnis.clone());
        self.take_trunk(ch, call);
        let trunk = DeviceId::Trunk(ch);
        self.calls.get_mut(&call).expect("new").parties.push(Party {
            device: trunk.clone(),
            ch: Some(ch),
            state: ConnectionState::Initiated,
            supervision: None,
            number: ani.clone(),
        });

        if let Some(action) = ani.as_deref().and_then(|n| longest_prefix(&self.cfg.blacklist, n)).copied() {
            let cause = match action {
                BlacklistAction::Reject(c) => c,
                BlacklistAction::HangUp => Cause::NORMAL_CLEARING,
            };
            self.data(call, "blacklisted", "yes");
            self.emit(CstaEvent::Failed { call, failing: trunk, cause });
            if action == BlacklistAction::HangUp {
                self.cmd(Command::Answer { ch });
                self.answered_trunk(call);
            }
            return self.clear_call(call, cause);
        }
        // An analog line carries no called number: its trunk group says which it is.
        let group_dnis = self
            .trunks
            .get(&ch)
            .and_then(|t| t.group)
            .and_then(|g| self.cfg.trunk_groups[g as usize].inbound_dnis.clone());
        let dnis = match group_dnis {
            Some(d) if dnis.is_empty() => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.dnis = d.clone();
                }
                d
            }
            _ => dnis,
        };
        let access = self.access.get(&dnis).or_else(|| self.access.get("*")).copied();
        let Some(access) = access else {
            self.emit(CstaEvent::Failed { call, failing: trunk, cause: Cause::UNALLOCATED_NUMBER });
            return self.clear_call(call, Cause::UNALLOCATED_NUMBER);
        };
        let vip_number = self.cfg.access_numbers[access].vip;
        let global_vip = ani.as_ref().and_then(|n| self.cfg.vips.get(n)).is_some_and(|q| q.is_empty());
        let c = self.calls.get_mut(&call).expect("new");
        c.vip = vip_number || global_vip;
        if c.vip {
            c.data.insert("vip".into(), "yes".into());
        }
        let (target, open) = self.route_now(access);
        if !open {
            self.data(call, super::AFTER_HOURS, "yes");
        }
        if let crate::config::Target::HangUp(cause) = target {
            self.emit(CstaEvent::Failed { call, failing: trunk, cause });
            return self.clear_call(call, cause);
        }
        self.cmd(Command::Answer { ch });
        self.answered_trunk(call);
        self.send_to_target(call, None, target);
    }

    fn answered_trunk(&mut self, call: CallId) {
        if let Some(p) = self.calls.get_mut(&call).and_then(|c| c.parties.first_mut()) {
            p.state = ConnectionState::Connected;
        }
    }

    /// The caller's number (empty when not presented) and the number dialled, as
    /// call events report them.
    pub(crate) fn call_numbers(&self, call: CallId) -> (String, String) {
        self.calls.get(&call).map(|c| (c.ani.clone().unwrap_or_default(), c.dnis.clone())).unwrap_or_default()
    }

    pub(crate) fn data(&mut self, call: CallId, k: &str, v: &str) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.data.insert(k.into(), v.into());
        }
    }

    /// Seize a trunk and dial `number` as a new party of `call`; `group` picks the
    /// trunk group (the first with a free channel when `None`). `originated`: report
    /// it as `Originated` (a station that dialled has reported its own already).
    pub(crate) fn dial_external_via(
        &mut self,
        call: CallId,
        number: &str,
        group: Option<usize>,
        originated: bool,
    ) -> Result<ChannelId, Cause> {
        let g = match group {
            Some(g) => g,
            None => (0..self.free_trunks.len())
                .find(|&g| !self.free_trunks[g].is_empty())
                .ok_or(Cause::NO_CIRCUIT_AVAILABLE)?,
        };
        let ch = self.free_trunks[g].pop_first().ok_or(Cause::NO_CIRCUIT_AVAILABLE)?;
        self.take_trunk(ch, call);
        let calling = self.cfg.trunk_groups[g].caller_id.clone();
        let c = self.calls.get_mut(&call).expect("call exists");
        c.parties.push(Party {
            device: DeviceId::Trunk(ch),
            ch: Some(ch),
            state: ConnectionState::Initiated,
            supervision: None,
            number: Some(number.to_string()),
        });
        let from = c.parties.first().map(|p| p.device.clone()).unwrap_or(DeviceId::Trunk(ch));
        self.cmd(Command::PlaceCall {
            ch,
            called: number.to_string(),
            calling,
            category: CallerCategory::Ordinary,
        });
        if originated {
            self.emit(CstaEvent::Originated { call, calling: from, called: number.to_string() });
        }
        Ok(ch)
    }

    pub(crate) fn dial_external(&mut self, call: CallId, number: &str) -> Result<ChannelId, Cause> {
        self.dial_external_via(call, number, None, true)
    }

    fn party_on(&mut self, ch: ChannelId) -> Option<(CallId, usize)> {
        let call = self.trunks.get(&ch)?.call?;
        let i = self.calls.get(&call)?.parties.iter().position(|p| p.ch == Some(ch))?;
        Some((call, i))
    }

    pub(crate) fn on_trunk_alerting(&mut self, ch: ChannelId) {
        let Some((call, i)) = self.party_on(ch) else { return };
        let c = self.calls.get_mut(&call).expect("call");
        if c.parties[i].state != ConnectionState::Initiated {
            return;
        }
        c.parties[i].state = ConnectionState::Alerting;
        let calling = c.ani.clone().unwrap_or_default();
        let called = c.parties[i].number.clone().unwrap_or_default();
        self.emit(CstaEvent::Delivered {
            call,
            alerting: DeviceId::Trunk(ch),
            calling,
            called,
            cause: EventCause::NewCall,
        });
        self.remix(call);
    }

    pub(crate) fn on_trunk_answered(&mut self, ch: ChannelId) {
        let Some((call, i)) = self.party_on(ch) else { return };
        let c = self.calls.get_mut(&call).expect("call");
        if !matches!(c.parties[i].state, ConnectionState::Initiated | ConnectionState::Alerting) {
            return; // the confirmation of our own Answer
        }
        c.parties[i].state = ConnectionState::Connected;
        if c.answered.is_none() {
            c.answered = Some(self.now);
        }
        let calling = c.ani.clone().unwrap_or_default();
        let called = c.parties[i].number.clone().unwrap_or_default();
        self.emit(CstaEvent::Established { call, answering: DeviceId::Trunk(ch), calling, called });
        self.remix(call);
    }

    /// A party is gone from a call (hung up, released, dropped). The call clears when
    /// it no longer has two parties to connect, unless it waits (queue, IVR).
    pub(crate) fn party_left(&mut self, call: CallId, device: &DeviceId, cause: Cause, _local: bool) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(i) = c.parties.iter().position(|p| &p.device == device) else { return };
        let p = c.parties.remove(i);
        let was_caller = i == 0;
        if matches!(p.state, ConnectionState::Initiated | ConnectionState::Alerting) && !was_caller {
            self.emit(CstaEvent::Failed { call, failing: device.clone(), cause });
        }
        self.emit(CstaEvent::ConnectionCleared { call, releasing: device.clone(), cause });
        if let DeviceId::Station(_) = device {
            if let Some(s) = p.ch.and_then(|ch| self.station_by_ch.get(&ch).copied()) {
                self.station_left_call(s, call);
            }
        }
        let c = &self.calls[&call];
        let waiting =
            matches!(c.stage, Stage::Queued(_) | Stage::Offering(..) | Stage::HandedOff | Stage::Awaiting(_));
        let talkers = c.parties.iter().filter(|p| p.supervision.is_none()).count();
        if (waiting && was_caller) || (!waiting && talkers < 2) || c.parties.is_empty() {
            // Call records say who ended the call; a call Hotline ends has no such key.
            self.data(call, "released_by", &device.to_string());
            self.clear_call(call, cause);
        } else {
            self.remix(call);
        }
    }

    /// Release every party of a call and report it cleared.
    pub(crate) fn clear_call(&mut self, call: CallId, cause: Cause) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.ring_gen = 0;
        c.wait_gen = 0;
        c.announce_gen = 0;
        let stage = c.stage;
        if let Stage::Queued(q) = stage {
            let line = c.line;
            self.queues[q as usize].waiting.remove(&line);
        }
        if let Stage::Awaiting(a) = stage {
            self.agents[a as usize].awaiting.retain(|&x| x != call);
        }
        let parties = std::mem::take(&mut c.parties);
        for (i, p) in parties.into_iter().enumerate() {
            if let Some(ch) = p.ch {
                if let Some(&s) = self.station_by_ch.get(&ch) {
                    self.station_left_call(s, call);
                } else if let Some(t) = self.trunks.get_mut(&ch) {
                    if t.call == Some(call) {
                        t.call = None;
                        t.releasing = true;
                        // An inbound call never answered is refused; anything else released.
                        let cmd = if i == 0 && p.state == ConnectionState::Initiated {
                            Command::Reject { ch, cause }
                        } else {
                            Command::Release { ch, cause }
                        };
                        self.cmd(cmd);
                        self.playing.remove(&ch);
                    }
                }
            }
            self.emit(CstaEvent::ConnectionCleared { call, releasing: p.device, cause });
        }
        self.set_media(call, Media::default());
        let c = self.calls.remove(&call).expect("call exists");
        if let Stage::Offering(_, a) = stage {
            self.agent_call_ended(a, call);
        }
        if let Some(a) = c.agent {
            self.agent_call_ended(a, call);
        }
        self.emit(CstaEvent::CallCleared { call, cause });
        let agent = c.agent.map(|a| self.agents[a as usize].id.clone());
        let queue = c.queue.map(|q| self.queues[q as usize].conf.name.clone());
        self.out.push_back(Output::Record(Record::Call {
            call,
            ani: c.ani,
            dnis: c.dnis,
            location: c.data.get("location").cloned(),
            vip: c.vip,
            queue,
            agent,
            started: c.started,
            queued: c.queued_at,
            answered: c.answered,
            ended: self.now,
            cause,
            data: c.data,
        }));
    }

    /// Move every party of `from` except `except` into `into` (transfer, conference).
    pub(crate) fn merge_calls(&mut self, into: CallId, from: CallId, except: &DeviceId) -> Option<DeviceId> {
        let mut f = self.calls.remove(&from)?;
        let old = std::mem::take(&mut f.media);
        self.apply_media(old, Media::default());
        let moved: Vec<Party> = f.parties.into_iter().filter(|p| &p.device != except).collect();
        let first = moved.first().map(|p| p.device.clone());
        for p in &moved {
            if let Some(ch) = p.ch {
                if let Some(t) = self.trunks.get_mut(&ch) {
                    t.call = Some(into);
                }
                if let Some(&s) = self.station_by_ch.get(&ch) {
                    self.stations[s as usize].mode.rename_call(from, into);
                }
            }
        }
        // An ACD agent in the consultation call now serves the merged call.
        if let Some(a) = f.agent {
            if self.agents[a as usize].call == Some(from) {
                self.agents[a as usize].call = Some(into);
            }
        }
        let i = self.calls.get_mut(&into)?;
        for (k, v) in f.data {
            i.data.entry(k).or_insert(v);
        }
        i.parties.extend(moved);
        first
    }

    /// Bring the card's bus in line with the call's parties: two talkers are
    /// connected directly; three or more, or anyone supervising, share a bridge with
    /// per-member rights; a lone party hears ringback while someone is alerted and
    /// music while it waits or is held.
    pub(crate) fn remix(&mut self, call: CallId) {
        let Some(c) = self.calls.get(&call) else { return };
        let live: Vec<&Party> =
            c.parties.iter().filter(|p| p.state == ConnectionState::Connected && p.ch.is_some()).collect();
        let supervised = live.iter().any(|p| p.supervision.is_some());
        let mut want = Media::default();
        let mut lone_tone: Option<(ChannelId, Playing)> = None;
        if supervised || live.len() >= 3 {
            // Whisper: the supervisor's speech is kept from every party but agents.
            let agents: Vec<ChannelId> = live
                .iter()
                .filter(|p| p.supervision.is_none() && matches!(p.device, DeviceId::Station(_)))
                .filter_map(|p| p.ch)
                .collect();
            let others: Vec<ChannelId> = live
                .iter()
                .filter(|p| p.supervision.is_none())
                .filter_map(|p| p.ch)
                .filter(|ch| !agents.contains(ch))
                .collect();
            for p in &live {
                let ch = p.ch.expect("live parties have channels");
                let rights = match p.supervision {
                    None | Some(SupervisionMode::Barge) | Some(SupervisionMode::Intercept) => {
                        MemberRights::full()
                    }
                    Some(SupervisionMode::Monitor) => MemberRights::listen_only(),
                    Some(SupervisionMode::Whisper) => {
                        MemberRights { talk: true, listen: true, hidden_from: others.clone() }
                    }
                };
                want.members.insert(ch, rights);
            }
            want.conf =
                c.media.conf.or_else(|| Some(ConferenceId { card: live[0].ch.expect("ch").card, bridge: 0 }));
        } else if live.len() == 2 {
            let (a, b) = (live[0].ch.expect("ch"), live[1].ch.expect("ch"));
            want.pair = Some((a, b));
        } else if live.len() == 1 {
            let ch = live[0].ch.expect("ch");
            let alerting = c.parties.iter().any(|p| p.state == ConnectionState::Alerting);
            let held = c.parties.iter().any(|p| p.state == ConnectionState::Held);
            if alerting {
                lone_tone = Some((ch, Playing::Tone(Tone::Ringback)));
            } else if held || matches!(c.stage, Stage::Queued(_) | Stage::Awaiting(_)) {
                // Held: the music on hold; waiting: the queue's music. Without either a
                // ringing tone tells the caller the line is alive.
                let queue_music = c.queue.and_then(|q| self.queues[q as usize].conf.music.clone());
                let music = if held { self.cfg.music_on_hold.clone().or(queue_music) } else { queue_music };
                lone_tone = Some((ch, music.map(Playing::Prompt).unwrap_or(Playing::Tone(Tone::Ringback))));
            }
        }
        let talking: Vec<ChannelId> = live.iter().filter_map(|p| p.ch).collect();
        for ch in talking {
            if lone_tone.as_ref().map(|t| t.0) != Some(ch) {
                self.set_play(ch, None);
            }
        }
        if let Some((ch, p)) = lone_tone {
            self.set_play(ch, Some(p));
        }
        self.set_media(call, want);
    }

    fn set_media(&mut self, call: CallId, want: Media) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let old = std::mem::take(&mut c.media);
        let applied = self.apply_media(old, want);
        if let Some(c) = self.calls.get_mut(&call) {
            c.media = applied;
        }
    }

    /// Emit the bus commands that turn the applied media `old` into `want`; returns
    /// what is applied now.
    fn apply_media(&mut self, old: Media, mut want: Media) -> Media {
        if let Some((a, b)) = old.pair.filter(|_| old.pair != want.pair) {
            self.cmd(Command::Disconnect { ch: a });
            self.cmd(Command::Disconnect { ch: b });
        }
        if let Some(conf) = old.conf {
            for (ch, _) in old.members.iter().filter(|(ch, _)| !want.members.contains_key(ch)) {
                self.cmd(Command::LeaveConference { conf, ch: *ch });
            }
            if want.members.is_empty() {
                self.bridges_in_use.remove(&(conf.card, conf.bridge));
            }
        }
        if !want.members.is_empty() {
            let conf = match old.conf {
                Some(conf) if !old.members.is_empty() => conf,
                _ => self.allocate_bridge(want.conf.expect("card chosen").card),
            };
            want.conf = Some(conf);
            for (ch, rights) in &want.members {
                match old.members.get(ch) {
                    None => self.cmd(Command::JoinConference { conf, ch: *ch, rights: rights.clone() }),
                    Some(r) if r != rights => {
                        self.cmd(Command::SetMemberRights { conf, ch: *ch, rights: rights.clone() })
                    }
                    Some(_) => {}
                }
            }
        } else {
            want.conf = None;
        }
        if let Some((a, b)) = want.pair.filter(|_| old.pair != want.pair) {
            self.cmd(Command::Connect { a, b });
        }
        want
    }

    fn allocate_bridge(&mut self, card: u16) -> ConferenceId {
        loop {
            let b = self.next_bridge;
            self.next_bridge = self.next_bridge.checked_add(1).unwrap_or(1);
            if self.bridges_in_use.insert((card, b)) {
                return ConferenceId { card, bridge: b };
            }
        }
    }

    /// Play something on a channel (or stop), stopping what played before.
    pub(crate) fn set_play(&mut self, ch: ChannelId, what: Option<Playing>) {
        if self.playing.get(&ch) == what.as_ref() {
            return;
        }
        if self.playing.remove(&ch).is_some() {
            self.cmd(Command::StopPlay { ch });
        }
        if let Some(p) = what {
            let id = self.next_play;
            self.next_play = self.next_play.wrapping_add(1);
            let source = Self::music_source(&p);
            self.playing.insert(ch, p);
            self.cmd(Command::Play { ch, id, source, barge_in: false });
        }
    }

    /// Alert a station with a call: ring it when on hook, a call-waiting tone when its
    /// handset is off hook and idle (a headset agent). False when it cannot take it.
    pub(crate) fn alert_station(&mut self, s: StationIx, call: CallId, caller_id: CallerId) -> bool {
        let st = &self.stations[s as usize];
        let (ch, ext) = (st.ch, st.ext.clone());
        match st.mode {
            StationMode::Idle => {
                self.cmd(Command::RingStation { ch, caller_id: Some(caller_id) });
                self.stations[s as usize].mode = StationMode::Ringing { call };
            }
            StationMode::Dialing { ref digits, held: None } if digits.is_empty() => {
                self.set_play(ch, Some(Playing::Tone(Tone::CallWaiting)));
                self.stations[s as usize].mode = StationMode::OffHookAlerting { call };
            }
            StationMode::Cut { held: None } => {
                self.set_play(ch, Some(Playing::Tone(Tone::CallWaiting)));
                self.stations[s as usize].mode = StationMode::OffHookAlerting { call };
            }
            _ => return false,
        }
        if let Some(c) = self.calls.get_mut(&call) {
            match c.parties.iter_mut().find(|p| p.device == DeviceId::Station(ext.clone())) {
                Some(p) => p.state = ConnectionState::Alerting,
                None => c.parties.push(Party {
                    device: DeviceId::Station(ext),
                    ch: Some(ch),
                    state: ConnectionState::Alerting,
                    supervision: None,
                    number: None,
                }),
            }
        }
        self.remix(call);
        true
    }

    /// Stop alerting a station for a call and take it out of the call.
    pub(crate) fn unalert_station(&mut self, s: StationIx, call: CallId) {
        let (ch, ext) = (self.stations[s as usize].ch, self.stations[s as usize].ext.clone());
        if let Some(c) = self.calls.get_mut(&call) {
            c.parties.retain(|p| p.device != DeviceId::Station(ext.clone()));
        }
        match self.stations[s as usize].mode {
            StationMode::Ringing { call: c } if c == call => {
                self.cmd(Command::StopRinging { ch });
                self.stations[s as usize].mode = StationMode::Idle;
            }
            StationMode::OffHookAlerting { call: c } if c == call => {
                self.set_play(ch, None);
                self.stations[s as usize].mode = StationMode::Cut { held: None };
            }
            _ => {}
        }
    }

    /// A station answers the call alerting it (off hook, or AnswerCall at a headset).
    pub(crate) fn station_answer(&mut self, s: StationIx, call: CallId) {
        let (ch, ext) = (self.stations[s as usize].ch, self.stations[s as usize].ext.clone());
        let dev = DeviceId::Station(ext);
        let Some(c) = self.calls.get_mut(&call) else { return };
        if let Some((sup, agent, mode)) = c.pending_supervise.take() {
            return self.supervisor_answered(s, call, &sup, &agent, mode);
        }
        let Some(p) = c.parties.iter_mut().find(|p| p.device == dev) else { return };
        let was_held = p.state == ConnectionState::Held;
        p.state = ConnectionState::Connected;
        let calling = c.ani.clone().unwrap_or_default();
        let called = c.dnis.clone();
        let stage = c.stage;
        let pending = c.pending_dial.take();
        self.stations[s as usize].mode = StationMode::Talking { call, held: None };
        self.set_play(ch, None);
        if was_held {
            self.emit(CstaEvent::Retrieved { call, retrieving: dev });
        } else {
            self.emit(CstaEvent::Established { call, answering: dev, calling, called });
        }
        if let Stage::Offering(_, a) = stage {
            self.acd_answered(call, a);
        }
        if let Some(number) = pending {
            self.dial_into(s, call, &number);
        }
        self.remix(call);
        if self.calls.get(&call).is_some_and(|c| c.data.get("test").map(String::as_str) == Some("loopback")) {
            self.set_play(ch, Some(Playing::Tone(Tone::Dial)));
        }
    }
}
