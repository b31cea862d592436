//! CSTA services from clients, and supervision (monitor, whisper, barge-in,
//! intercept). Each service checks the state it needs and answers with a CSTA error
//! value when the state does not allow it, changing nothing.

use hotline_drivers::{Cause, Command};

use super::station::StationMode;
use super::{AgentIx, Engine, Party, Stage, StationIx};
use crate::csta::{
    AgentRequest, AgentState, CallId, ConnectionState, CstaError, CstaEvent, DeviceId, Service,
    ServiceResult, SupervisionMode,
};

type Res = Result<ServiceResult, CstaError>;

impl Engine {
    fn station_ix(&self, dev: &DeviceId) -> Result<StationIx, CstaError> {
        match dev {
            DeviceId::Station(ext) => match self.numbers.get(ext) {
                Some(super::Dest::Station(s)) => Ok(*s),
                _ => Err(CstaError::InvalidDeviceId(ext.clone())),
            },
            other => Err(CstaError::InvalidDeviceId(other.to_string())),
        }
    }

    fn station_by_ext(&self, ext: &str) -> Result<StationIx, CstaError> {
        self.station_ix(&DeviceId::Station(ext.to_string()))
    }

    fn agent_ix(&self, id: &str) -> Result<AgentIx, CstaError> {
        self.agent_by_id.get(id).copied().ok_or_else(|| CstaError::InvalidAgentId(id.to_string()))
    }

    fn mode(&self, s: StationIx) -> StationMode {
        self.stations[s as usize].mode.clone()
    }

    pub(crate) fn on_service(&mut self, client: super::ClientId, service: Service) -> Res {
        match service {
            // Recording belongs to the recording policy beside the engine (the center
            // answers these before they reach here); an engine on its own has none.
            Service::StartRecording { .. } | Service::StopRecording { .. } => {
                Err(CstaError::ServiceNotSupported)
            }
            Service::MakeCall { calling, called } => {
                let s = self.station_by_ext(&calling)?;
                self.make_call(s, &called).map(ServiceResult::Call)
            }
            Service::AnswerCall { call, device } => {
                let s = self.station_ix(&device)?;
                match self.mode(s) {
                    StationMode::OffHookAlerting { call: c } if c == call => {
                        self.station_answer(s, call);
                        Ok(ServiceResult::Ok)
                    }
                    // An analog phone on hook cannot be taken off hook from a desktop.
                    StationMode::Ringing { call: c } if c == call => Err(CstaError::ServiceNotSupported),
                    _ => Err(CstaError::InvalidConnectionState),
                }
            }
            Service::ClearConnection { call, device } => self.clear_connection(call, device),
            Service::ClearCall { call } => {
                if !self.calls.contains_key(&call) {
                    return Err(CstaError::InvalidCallId);
                }
                self.clear_call(call, Cause::NORMAL_CLEARING);
                Ok(ServiceResult::Ok)
            }
            Service::HoldCall { call, device } => {
                let s = self.station_ix(&device)?;
                match self.mode(s) {
                    StationMode::Talking { call: c, held: None } if c == call && self.holdable(s, call) => {
                        self.hold(s, call);
                        Ok(ServiceResult::Ok)
                    }
                    _ => Err(CstaError::InvalidConnectionState),
                }
            }
            Service::RetrieveCall { call, device } => {
                let s = self.station_ix(&device)?;
                match self.mode(s) {
                    StationMode::Dialing { held: Some(h), .. } | StationMode::Cut { held: Some(h) }
                        if h == call =>
                    {
                        self.retrieve(s, call);
                        Ok(ServiceResult::Ok)
                    }
                    _ => Err(CstaError::InvalidConnectionState),
                }
            }
            Service::ConsultationCall { held, device, called } => {
                let s = self.station_ix(&device)?;
                match self.mode(s) {
                    StationMode::Talking { call, held: None } if call == held && self.holdable(s, held) => {
                        self.hold(s, held);
                        // Hold left the station off hook with dial tone: dial at once.
                        self.make_call(s, &called)
                            .map(ServiceResult::Call)
                            .inspect_err(|_| self.retrieve(s, held))
                    }
                    _ => Err(CstaError::InvalidConnectionState),
                }
            }
            Service::TransferCall { held, active, device } => {
                let s = self.station_ix(&device)?;
                match self.mode(s) {
                    StationMode::Talking { call, held: Some(h) } if call == active && h == held => {
                        self.stations[s as usize].mode = StationMode::Cut { held: None };
                        self.transfer(s, held, active);
                        Ok(ServiceResult::Ok)
                    }
                    _ => Err(CstaError::InvalidConnectionState),
                }
            }
            Service::SingleStepTransferCall { call, device, to } => {
                self.single_step_transfer(call, device, &to)
            }
            Service::ConferenceCall { held, active, device } => {
                let s = self.station_ix(&device)?;
                match self.mode(s) {
                    StationMode::Talking { call, held: Some(h) } if call == active && h == held => {
                        self.conference(s, held, active);
                        Ok(ServiceResult::Ok)
                    }
                    _ => Err(CstaError::InvalidConnectionState),
                }
            }
            Service::SetAgentState { agent, request } => self.set_agent_request(client, &agent, request),
            Service::GetAgentState { agent } => {
                let a = &self.agents[self.agent_ix(&agent)? as usize];
                let answered = a
                    .memberships
                    .iter()
                    .map(|m| (self.queues[m.queue as usize].conf.name.clone(), m.answered))
                    .collect();
                Ok(ServiceResult::AgentState {
                    state: a.state.clone(),
                    since: a.since,
                    answered,
                    missed_in_a_row: a.misses,
                })
            }
            Service::Supervise { supervisor, agent, mode } => self.supervise(&supervisor, &agent, mode),
            Service::AlternateCall { held, active, device } => {
                let s = self.station_ix(&device)?;
                match self.mode(s) {
                    StationMode::Talking { call, held: Some(h) } if call == active && h == held => {
                        self.hold(s, active);
                        // hold() left the station dialling with `active` held; swap.
                        self.stations[s as usize].mode = StationMode::Cut { held: Some(held) };
                        self.retrieve(s, held);
                        self.stations[s as usize].mode =
                            StationMode::Talking { call: held, held: Some(active) };
                        Ok(ServiceResult::Ok)
                    }
                    _ => Err(CstaError::InvalidConnectionState),
                }
            }
            Service::ReconnectCall { held, active, device } => {
                let s = self.station_ix(&device)?;
                match self.mode(s) {
                    StationMode::Talking { call, held: Some(h) } if call == active && h == held => {
                        self.stations[s as usize].mode = StationMode::Cut { held: Some(held) };
                        self.party_left(active, &device, Cause::NORMAL_CLEARING, true);
                        self.retrieve(s, held);
                        Ok(ServiceResult::Ok)
                    }
                    _ => Err(CstaError::InvalidConnectionState),
                }
            }
            Service::DeflectCall { call, device, to } => self.deflect(call, device, &to),
            Service::GenerateDigits { call, device, digits } => {
                let c = self.calls.get(&call).ok_or(CstaError::InvalidCallId)?;
                if !c.parties.iter().any(|p| p.device == device && p.state == ConnectionState::Connected) {
                    return Err(CstaError::InvalidConnectionState);
                }
                if digits.is_empty() || !digits.chars().all(|d| "0123456789*#ABCD".contains(d)) {
                    return Err(CstaError::InvalidDeviceId(digits));
                }
                let trunks: Vec<_> = c
                    .parties
                    .iter()
                    .filter(|p| p.device != device && matches!(p.device, DeviceId::Trunk(_)))
                    .filter_map(|p| p.ch)
                    .collect();
                for ch in trunks {
                    self.cmd(Command::SendDigits { ch, digits: digits.clone() });
                }
                Ok(ServiceResult::Ok)
            }
            Service::SnapshotCall { call } => {
                let c = self.calls.get(&call).ok_or(CstaError::InvalidCallId)?;
                Ok(ServiceResult::CallSnapshot {
                    parties: c.parties.iter().map(|p| (p.device.clone(), p.state)).collect(),
                    data: c.data.clone(),
                })
            }
            Service::SnapshotDevice { device } => {
                let mut calls: Vec<(CallId, ConnectionState)> = self
                    .calls
                    .iter()
                    .filter_map(|(id, c)| {
                        c.parties.iter().find(|p| p.device == device).map(|p| (*id, p.state))
                    })
                    .collect();
                if let DeviceId::Queue(name) = &device {
                    let q = *self
                        .queue_by_name
                        .get(name)
                        .ok_or_else(|| CstaError::InvalidDeviceId(name.clone()))?;
                    calls.extend(
                        self.queues[q as usize].waiting.values().map(|c| (*c, ConnectionState::Queued)),
                    );
                }
                calls.sort_by_key(|c| c.0);
                Ok(ServiceResult::DeviceSnapshot { calls })
            }
            Service::SnapshotQueue { queue } => {
                let q = *self.queue_by_name.get(&queue).ok_or(CstaError::InvalidDeviceId(queue))?;
                let q = &self.queues[q as usize];
                let oldest_since =
                    q.waiting.values().filter_map(|c| self.calls.get(c).and_then(|c| c.queued_at)).min();
                Ok(ServiceResult::QueueSnapshot {
                    waiting: q.waiting.len(),
                    ready: q.ready.len(),
                    logged_in: q.logged_in as usize,
                    oldest_since,
                })
            }
            Service::SnapshotAgents { group } => {
                let members: Option<&[usize]> = match &group {
                    Some(name) => Some(
                        &self
                            .cfg
                            .agent_groups
                            .iter()
                            .find(|g| &g.name == name)
                            .ok_or_else(|| CstaError::InvalidDeviceId(name.clone()))?
                            .agents,
                    ),
                    None => None,
                };
                let agents = self
                    .agents
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| members.map_or(true, |m| m.contains(i)))
                    .map(|(_, a)| (a.id.clone(), a.state.clone(), a.since))
                    .collect();
                Ok(ServiceResult::AgentsSnapshot { agents })
            }
            Service::SetCallData { call, key, value } => {
                let c = self.calls.get_mut(&call).ok_or(CstaError::InvalidCallId)?;
                c.data.insert(key, value);
                Ok(ServiceResult::Ok)
            }
        }
    }

    fn clear_connection(&mut self, call: CallId, device: DeviceId) -> Res {
        let c = self.calls.get(&call).ok_or(CstaError::InvalidCallId)?;
        let p = c.parties.iter().find(|p| p.device == device).ok_or(CstaError::InvalidConnectionState)?;
        let (ch, state, stage) = (p.ch, p.state, c.stage);
        match &device {
            DeviceId::Station(_) => {
                let s = self.station_ix(&device)?;
                if let (Stage::Offering(_, _), ConnectionState::Alerting) = (stage, state) {
                    // Refusing an ACD offer counts as letting it ring out.
                    self.on_ring_timeout(call);
                    return Ok(ServiceResult::Ok);
                }
                if state == ConnectionState::Held {
                    // Clearing a held connection: the station keeps what else it does.
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.parties.retain(|p| p.device != device);
                    }
                    self.station_left_call(s, call);
                    self.emit(CstaEvent::ConnectionCleared {
                        call,
                        releasing: device,
                        cause: Cause::NORMAL_CLEARING,
                    });
                    let talkers = self.calls.get(&call).map_or(0, |c| c.parties.len());
                    if talkers < 2 {
                        self.clear_call(call, Cause::NORMAL_CLEARING);
                    } else {
                        self.remix(call);
                    }
                    return Ok(ServiceResult::Ok);
                }
                self.party_left(call, &device, Cause::NORMAL_CLEARING, true);
            }
            DeviceId::Trunk(_) => {
                let ch = ch.expect("trunk parties have channels");
                if let Some(t) = self.trunks.get_mut(&ch) {
                    t.call = None;
                    t.releasing = true;
                }
                self.playing.remove(&ch);
                self.cmd(Command::Release { ch, cause: Cause::NORMAL_CLEARING });
                self.party_left(call, &device, Cause::NORMAL_CLEARING, true);
            }
            _ => return Err(CstaError::InvalidDeviceId(device.to_string())),
        }
        Ok(ServiceResult::Ok)
    }

    fn single_step_transfer(&mut self, call: CallId, device: DeviceId, to: &str) -> Res {
        let s = self.station_ix(&device)?;
        match self.mode(s) {
            StationMode::Talking { call: c, held: None } if c == call => {}
            _ => return Err(CstaError::InvalidConnectionState),
        }
        if let Some(flow) = to.strip_prefix("ivr:").or_else(|| to.strip_prefix("voicemail:")) {
            // To an IVR flow or a voicemail box: the station drops, the IVR takes over.
            let target = if to.starts_with("ivr:") {
                crate::config::Target::Ivr(flow.to_string())
            } else {
                crate::config::Target::Voicemail(flow.to_string())
            };
            self.withdraw(call);
            let from_agent = self.stations[s as usize].agent.map(|a| self.agents[a as usize].id.clone());
            if let Some(c) = self.calls.get_mut(&call) {
                c.parties.retain(|p| p.device != device);
                // Remembered so the flow can send the caller back (`agent:back`).
                match from_agent {
                    Some(id) => c.data.insert(super::IVR_FROM_AGENT.into(), id),
                    None => c.data.remove(super::IVR_FROM_AGENT),
                };
            }
            self.stations[s as usize].mode = StationMode::Cut { held: None };
            if let Some(a) = self.stations[s as usize].agent {
                self.agent_call_ended(a, call);
            }
            let to_dev = DeviceId::Ivr(flow.to_string());
            self.emit(CstaEvent::Transferred {
                primary: call,
                secondary: call,
                transferring: device,
                transferred_to: Some(to_dev),
            });
            self.remix(call);
            self.send_to_target(call, None, target);
            return Ok(ServiceResult::Ok);
        }
        if !self.numbers.contains_key(to)
            && !self
                .cfg
                .trunk_groups
                .iter()
                .any(|t| t.dial_prefix.as_deref().is_some_and(|p| to.starts_with(p)))
        {
            return Err(CstaError::InvalidDeviceId(to.to_string()));
        }
        self.withdraw(call);
        if let Some(c) = self.calls.get_mut(&call) {
            c.parties.retain(|p| p.device != device);
        }
        self.stations[s as usize].mode = StationMode::Cut { held: None };
        let ch = self.stations[s as usize].ch;
        self.set_play(ch, None);
        if let Some(a) = self.stations[s as usize].agent {
            self.agent_call_ended(a, call);
        }
        let routed = self.route_number(call, to, None, None);
        let transferred_to = self.calls.get(&call).and_then(|c| match c.stage {
            Stage::Queued(q) | Stage::Offering(q, _) => {
                Some(DeviceId::Queue(self.queues[q as usize].conf.name.clone()))
            }
            _ => c.parties.last().map(|p| p.device.clone()),
        });
        self.emit(CstaEvent::Transferred {
            primary: call,
            secondary: call,
            transferring: device,
            transferred_to,
        });
        match routed {
            Err(cause) => self.clear_call(call, cause),
            Ok(()) => self.remix(call),
        }
        Ok(ServiceResult::Ok)
    }

    /// Join the consultation into the held call: everyone talks on one bridge.
    fn conference(&mut self, s: StationIx, held: CallId, active: CallId) {
        let dev = DeviceId::Station(self.stations[s as usize].ext.clone());
        if let Some(c) = self.calls.get_mut(&active) {
            c.parties.retain(|p| p.device != dev);
        }
        let added = self.merge_calls(held, active, &dev);
        if let Some(p) =
            self.calls.get_mut(&held).and_then(|c| c.parties.iter_mut().find(|p| p.device == dev))
        {
            p.state = ConnectionState::Connected;
        }
        self.stations[s as usize].mode = StationMode::Talking { call: held, held: None };
        self.emit(CstaEvent::Conferenced { primary: held, secondary: active, controller: dev, added });
        self.remix(held);
    }

    /// Move a call alerting at a station elsewhere (an extension, queue or outside number).
    fn deflect(&mut self, call: CallId, device: DeviceId, to: &str) -> Res {
        let s = self.station_ix(&device)?;
        match self.mode(s) {
            StationMode::Ringing { call: c } | StationMode::OffHookAlerting { call: c } if c == call => {}
            _ => return Err(CstaError::InvalidConnectionState),
        }
        let alerting = self.calls.get(&call).is_some_and(|c| {
            c.parties.iter().any(|p| p.device == device && p.state == ConnectionState::Alerting)
        });
        if !alerting {
            // A recall of the station's own held call is not deflected.
            return Err(CstaError::InvalidConnectionState);
        }
        if !self.numbers.contains_key(to)
            && !self
                .cfg
                .trunk_groups
                .iter()
                .any(|t| t.dial_prefix.as_deref().is_some_and(|p| to.starts_with(p)))
            && !self.agent_by_id.contains_key(to)
        {
            return Err(CstaError::InvalidDeviceId(to.to_string()));
        }
        if matches!(self.calls.get(&call).map(|c| c.stage), Some(Stage::Offering(..))) {
            // An ACD offer (a headset agent's desk, or a phone ringing): the call leaves
            // the queue and the agent, who is free again, and goes where it is sent.
            self.withdraw(call);
        } else {
            self.unalert_station(s, call);
        }
        // Where it goes, as a device: a station (an extension or an agent's), a queue.
        let to_dev = match self.numbers.get(to) {
            Some(super::Dest::Queue(q)) => DeviceId::Queue(self.queues[*q as usize].conf.name.clone()),
            Some(super::Dest::Station(t)) => DeviceId::Station(self.stations[*t as usize].ext.clone()),
            None => match self.agent_by_id.get(to).and_then(|&a| self.agents[a as usize].station) {
                Some(t) => DeviceId::Station(self.stations[t as usize].ext.clone()),
                None => DeviceId::Station(to.to_string()),
            },
        };
        self.emit(CstaEvent::Diverted {
            call,
            from: device,
            to: to_dev,
            cause: crate::csta::EventCause::Redirected,
        });
        if let Err(cause) = self.route_number(call, to, None, None) {
            self.clear_call(call, cause);
        }
        Ok(ServiceResult::Ok)
    }

    fn set_agent_request(&mut self, client: super::ClientId, agent: &str, request: AgentRequest) -> Res {
        let a = self.agent_ix(agent)?;
        match request {
            AgentRequest::LogIn { station, password } => {
                if self.agents[a as usize].password.is_some() && self.agents[a as usize].password != password
                {
                    return Err(CstaError::InvalidPassword);
                }
                if self.agents[a as usize].state != AgentState::LoggedOut {
                    // A desktop coming back (same station): resume with state and
                    // counters as they are.
                    let same = station.as_deref()
                        == self.agents[a as usize].station.map(|s| self.stations[s as usize].ext.as_str());
                    if same && self.agents[a as usize].client.is_none() {
                        self.agents[a as usize].client = Some(client);
                        self.agents[a as usize].grace_gen = 0;
                        return Ok(ServiceResult::Ok);
                    }
                    // A supervisor watching without a station takes one (another
                    // client of theirs sits down at a phone).
                    if let (true, None, Some(ext)) =
                        (self.agents[a as usize].supervisor, self.agents[a as usize].station, &station)
                    {
                        let s = self.station_by_ext(ext)?;
                        if self.stations[s as usize].agent.is_some() {
                            return Err(CstaError::InvalidDeviceState);
                        }
                        self.agents[a as usize].station = Some(s);
                        self.stations[s as usize].agent = Some(a);
                        let id = self.agents[a as usize].id.clone();
                        self.emit(CstaEvent::Agent {
                            agent: id,
                            kind: crate::csta::AgentEventKind::LoggedOn { station: Some(ext.clone()) },
                        });
                        if self.agents[a as usize].client.is_none() {
                            self.agents[a as usize].client = Some(client);
                            self.agents[a as usize].grace_gen = 0;
                        }
                        return Ok(ServiceResult::Ok);
                    }
                    return Err(CstaError::InvalidAgentState);
                }
                let s = match station {
                    Some(ext) => {
                        let s = self.station_by_ext(&ext)?;
                        if self.stations[s as usize].agent.is_some() {
                            return Err(CstaError::InvalidDeviceState);
                        }
                        Some(s)
                    }
                    None => None,
                };
                self.log_in(a, s);
                self.agents[a as usize].client = Some(client);
            }
            AgentRequest::LogOut => {
                if self.agents[a as usize].state == AgentState::LoggedOut {
                    return Err(CstaError::InvalidAgentState);
                }
                if self.agents[a as usize].call.is_some() {
                    // Forced during a call (a supervisor): done when the call ends.
                    self.agents[a as usize].pending_logout = true;
                } else {
                    self.log_out(a);
                }
            }
            AgentRequest::Ready => self.request_ready(a, None)?,
            AgentRequest::NotReady { reason } => self.request_ready(a, Some(reason))?,
        }
        Ok(ServiceResult::Ok)
    }

    /// A supervisor joins an agent's call: at once from an off-hook station; from a
    /// phone on hook, the phone rings first and supervision starts when it is answered.
    fn supervise(&mut self, supervisor: &str, agent: &str, mode: SupervisionMode) -> Res {
        let sup = self.agent_ix(supervisor)?;
        let a = self.agent_ix(agent)?;
        let sup_conf = self.cfg.supervisors.iter().find(|s| s.id == supervisor);
        let Some(sup_conf) = sup_conf else { return Err(CstaError::PrivilegeViolation) };
        if !sup_conf.groups.is_empty() {
            // Agents keep their configuration's order in the engine, so `a` indexes both.
            let agent_conf = ((a as usize) < self.cfg.agents.len()).then_some(a as usize);
            let allowed = agent_conf.is_some_and(|ai| {
                sup_conf.groups.iter().any(|&g| self.cfg.agent_groups[g].agents.contains(&ai))
            });
            if !allowed {
                return Err(CstaError::PrivilegeViolation);
            }
        }
        let ss = self.agents[sup as usize].station.ok_or(CstaError::InvalidAgentState)?;
        // Already supervising this call: change the mode (whisper, then intercept).
        if let StationMode::Talking { call, held: None } = self.mode(ss) {
            let sdev = DeviceId::Station(self.stations[ss as usize].ext.clone());
            let supervising = self
                .calls
                .get(&call)
                .is_some_and(|c| c.parties.iter().any(|p| p.device == sdev && p.supervision.is_some()));
            if supervising && self.supervisable_call(a).ok() == Some(call) {
                self.join_supervisor(ss, call, a, supervisor, mode);
                return Ok(ServiceResult::Ok);
            }
        }
        let ring_first = match self.mode(ss) {
            StationMode::Dialing { ref digits, held: None } if digits.is_empty() => false,
            StationMode::Cut { held: None } => false,
            StationMode::Idle => true,
            _ => return Err(CstaError::InvalidDeviceState),
        };
        let call = self.supervisable_call(a)?;
        if ring_first {
            let shown =
                self.stations[self.agents[a as usize].station.expect("in a call") as usize].ext.clone();
            let ring = self.ring_to_start(ss, &shown);
            self.calls.get_mut(&ring).expect("new").pending_supervise =
                Some((supervisor.to_string(), agent.to_string(), mode));
            return Ok(ServiceResult::Ok);
        }
        self.join_supervisor(ss, call, a, supervisor, mode);
        Ok(ServiceResult::Ok)
    }

    /// The supervisor's phone, rung for supervision, is answered: its ringing call
    /// ends and supervision starts, or congestion tone if the agent's call is over.
    pub(crate) fn supervisor_answered(
        &mut self,
        ss: StationIx,
        ring: CallId,
        supervisor: &str,
        agent: &str,
        mode: SupervisionMode,
    ) {
        if let Some(c) = self.calls.get_mut(&ring) {
            c.parties.clear();
        }
        self.stations[ss as usize].mode = StationMode::Cut { held: None };
        self.clear_call(ring, Cause::NORMAL_CLEARING);
        let started = self.agent_ix(agent).and_then(|a| Ok((a, self.supervisable_call(a)?)));
        match started {
            Ok((a, call)) => self.join_supervisor(ss, call, a, supervisor, mode),
            Err(_) => {
                let ch = self.stations[ss as usize].ch;
                self.set_play(
                    ch,
                    Some(super::station::Playing::Tone(hotline_drivers::signal::Tone::Congestion)),
                );
            }
        }
    }

    /// The call the agent is connected in, which a supervisor may join.
    fn supervisable_call(&self, a: AgentIx) -> Result<CallId, CstaError> {
        let st = self.agents[a as usize].station.ok_or(CstaError::InvalidAgentState)?;
        let call = match self.mode(st) {
            StationMode::Talking { call, .. } => call,
            _ => return Err(CstaError::InvalidAgentState),
        };
        let agent_dev = DeviceId::Station(self.stations[st as usize].ext.clone());
        let connected = self.calls.get(&call).is_some_and(|c| {
            c.parties.iter().any(|p| p.device == agent_dev && p.state == ConnectionState::Connected)
        });
        if !connected {
            return Err(CstaError::InvalidAgentState);
        }
        Ok(call)
    }

    /// Put the supervisor's off-hook station into the agent's call.
    fn join_supervisor(
        &mut self,
        ss: StationIx,
        call: CallId,
        a: AgentIx,
        supervisor: &str,
        mode: SupervisionMode,
    ) {
        let st = self.agents[a as usize].station.expect("checked by supervisable_call");
        let agent_dev = DeviceId::Station(self.stations[st as usize].ext.clone());
        let (sch, sext) = (self.stations[ss as usize].ch, self.stations[ss as usize].ext.clone());
        self.set_play(sch, None);
        self.stations[ss as usize].digit_gen = 0;
        self.stations[ss as usize].mode = StationMode::Talking { call, held: None };
        let supervision = (mode != SupervisionMode::Intercept).then_some(mode);
        let parties = &mut self.calls.get_mut(&call).expect("checked").parties;
        let sdev = DeviceId::Station(sext);
        if let Some(p) = parties.iter_mut().find(|p| p.device == sdev) {
            // A change of mode by a supervisor already in the call.
            p.supervision = supervision;
        } else {
            parties.push(Party {
                device: sdev,
                ch: Some(sch),
                state: ConnectionState::Connected,
                supervision,
                number: None,
            });
        }
        self.emit(CstaEvent::Supervising { call, supervisor: supervisor.to_string(), mode });
        if mode == SupervisionMode::Intercept {
            // The agent drops; the supervisor has the call.
            self.party_left(call, &agent_dev, Cause::NORMAL_CLEARING, true);
        } else {
            self.remix(call);
        }
    }
}
