//! Callers walk through the demo flow on the card simulator in audio mode: the engine,
//! the simulated card and the IVR run together in virtual time, prompts are real WAV
//! files (tone prompts) played on the line, and the callers' keys travel as DTMF tones
//! that the card's detector finds. The HTTP node asks a real local mock service; the
//! voicemail is recorded from the card's tap into a WAV by this harness.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver};
use hotline_cti::csta::{CstaEvent, DeviceId};
use hotline_cti::{CallId, Config, Engine, Input, Output};
use hotline_drivers::command::{PlaySource, TapFrame};
use hotline_drivers::dsp::wav;
use hotline_drivers::event::PlayEnd;
use hotline_drivers::sim::SimCard;
use hotline_drivers::{Card, CardEvent, ChannelId, Command, EventKind, Instant};
use hotline_ivr::mock::RepairService;
use hotline_ivr::prompts::{generate, Voice};
use hotline_ivr::{Flows, Ivr, IvrOutput, PromptSet, Prompts, RecordResult, VoicemailLeft};

const ACCESS: &str = "4008001000";
const VIP: &str = "13900000001";

fn installation(callers: &str) -> String {
    format!(
        r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[simulator]
media = "audio"
seed = 5

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[queue]]
name = "support"

[[queue]]
name = "priority"

[engine]
utc_offset = "+08:00"

[[schedule]]
name = "office"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
hours = ["07:00-21:00"]

[[access_number]]
dnis = "{ACCESS}"
target = "ivr:after_hours"
route = [{{ schedule = "office", target = "ivr:main" }}]

[[vip]]
number = "{VIP}"
{callers}"#
    )
}

fn caller(ani: &str, steps: &[&str]) -> String {
    let steps: Vec<String> = steps.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "\n[[simulator.inbound]]\nat_s = 1\ntrunk = \"1/1\"\nani = \"{ani}\"\ndnis = \"{ACCESS}\"\n\
         caller = {{ patience_s = 120, script = [{}] }}\n",
        steps.join(", ")
    )
}

fn root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// A recording the harness makes for the IVR from the card's tap.
struct Tap {
    id: u64,
    ch: ChannelId,
    rx: Receiver<TapFrame>,
    path: PathBuf,
    max_frames: usize,
    samples: Vec<i16>,
}

/// What a run saw.
#[derive(Default)]
struct Seen {
    nodes: Vec<String>,
    played: Vec<String>,
    done: Vec<(u64, String, BTreeMap<String, String>)>,
    voicemail: Vec<VoicemailLeft>,
    csta: Vec<CstaEvent>,
    card: Vec<EventKind>,
}

struct Center {
    engine: Engine,
    sim: SimCard,
    rx: Receiver<CardEvent>,
    ivr: Ivr,
    now: Instant,
    offered: BTreeMap<ChannelId, (Option<String>, String)>,
    taps: Vec<Tap>,
    dir: PathBuf,
    repair: RepairService,
    seen: Seen,
}

impl Center {
    fn new(name: &str, callers: &str) -> Center {
        let dir = std::env::temp_dir().join(format!("hotline-ivr-sim-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let set = PromptSet::load(&root().join("prompts/en.toml"), dir.join("prompts")).expect("prompt text");
        // Tones rather than speech: quick, and the same on every machine.
        generate(&set, &Voice::Tones).expect("prompts");
        let flow_text = std::fs::read_to_string(root().join("examples/flows/demo.toml")).expect("demo flow");
        let flows = Flows::parse(&flow_text, "demo.toml").expect("demo flow parses");
        let mut ivr = Ivr::new(flows, Prompts::new(set));
        ivr.set_record_dir(dir.join("voicemail"));
        std::fs::create_dir_all(dir.join("voicemail")).unwrap();

        let text = installation(callers);
        let cards = hotline_drivers::config::parse(&text, "center.toml").expect("card tables");
        let (tx, rx) = unbounded();
        let sim = SimCard::from_config(&cards, 1, tx).expect("simulator");
        let engine = Engine::new(Config::parse(&text, "center.toml").expect("engine tables"));
        let repair = RepairService::spawn("127.0.0.1:0").expect("mock service");
        Center {
            engine,
            sim,
            rx,
            ivr,
            now: Instant::ZERO,
            offered: BTreeMap::new(),
            taps: Vec::new(),
            dir,
            repair,
            seen: Seen::default(),
        }
    }

    fn command(&mut self, c: Command) {
        if let Command::Play { source: PlaySource::Prompt(p), .. } = &c {
            self.seen.played.push(p.file_stem().unwrap().to_string_lossy().to_string());
        }
        let _ = self.sim.execute(self.now, c);
    }

    /// Drain the engine and the IVR until both are quiet.
    fn carry(&mut self) {
        loop {
            let mut any = false;
            while let Some(o) = self.engine.poll_output() {
                any = true;
                match o {
                    Output::Command(c) => self.command(c),
                    Output::Event(e) => {
                        if let CstaEvent::HandedOff { call, to: DeviceId::Ivr(flow), ch: Some(ch) } = &e {
                            let (ani, dnis) = self.offered.get(ch).cloned().unwrap_or_default();
                            let mut vars = BTreeMap::from([
                                ("dnis".to_string(), dnis),
                                ("repair_base".to_string(), self.repair.base_url()),
                            ]);
                            if let Some(a) = ani {
                                vars.insert("vip".into(), if a == VIP { "1" } else { "0" }.into());
                                vars.insert("ani".into(), a);
                            }
                            self.ivr.start(self.now, call.0, *ch, flow, vars).expect("flow starts");
                        }
                        self.seen.csta.push(e);
                    }
                    _ => {}
                }
            }
            while let Some(o) = self.ivr.poll_output() {
                any = true;
                match o {
                    IvrOutput::Command(c) => self.command(c),
                    IvrOutput::Node { node, .. } => self.seen.nodes.push(node),
                    IvrOutput::Http(req) => {
                        // The worker's job, done here at the same virtual instant.
                        let answer = hotline_ivr::http::perform(&req);
                        self.ivr.handle_http(self.now, answer);
                    }
                    IvrOutput::Record(r) => {
                        let (tx, rx) = bounded(4096);
                        self.command(Command::StartTap { ch: r.ch, id: r.id as u32, sink: tx });
                        let max_frames = (r.max.as_millis() / 20) as usize;
                        self.taps.push(Tap {
                            id: r.id,
                            ch: r.ch,
                            rx,
                            path: r.path,
                            max_frames,
                            samples: Vec::new(),
                        });
                    }
                    IvrOutput::Voicemail(v) => self.seen.voicemail.push(v),
                    IvrOutput::Synthesize(_) => panic!("TTS is off"),
                    IvrOutput::Done { call, next, data } => {
                        self.seen.done.push((call, next.clone(), data.clone()));
                        self.engine.handle(self.now, Input::IvrDone { call: CallId(call), next, data });
                    }
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Stop a tap, write its WAV and tell the IVR.
    fn finish_tap(&mut self, i: usize) {
        let mut t = self.taps.remove(i);
        while let Ok(f) = t.rx.try_recv() {
            t.samples.extend(f.samples);
        }
        let _ = self.sim.execute(self.now, Command::StopTap { ch: t.ch, id: t.id as u32 });
        wav::write_wav_file(&t.path, 8000, 1, wav::Encoding::Pcm16, &t.samples).expect("write recording");
        let duration = Duration::from_millis(t.samples.len() as u64 / 8);
        self.ivr.handle_recorded(self.now, t.id, RecordResult::Recorded { path: t.path, duration });
    }

    fn run_until(&mut self, until: Instant) {
        loop {
            let card_next = loop {
                let next = self.sim.poll(self.now).expect("card poll");
                let mut any = false;
                while let Ok(ev) = self.rx.try_recv() {
                    any = true;
                    self.seen.card.push(ev.kind.clone());
                    if let EventKind::Offered { ch, ani, dnis, .. } = &ev.kind {
                        self.offered.insert(*ch, (ani.clone(), dnis.clone()));
                    }
                    let released = match &ev.kind {
                        EventKind::Released { ch, .. } => Some(*ch),
                        _ => None,
                    };
                    if !self.ivr.handle_card(self.now, &ev.kind) {
                        self.engine.handle(self.now, Input::Card(ev));
                    }
                    if let Some(ch) = released {
                        if let Some(i) = self.taps.iter().position(|t| t.ch == ch) {
                            self.finish_tap(i);
                        }
                    }
                    self.carry();
                }
                for i in (0..self.taps.len()).rev() {
                    while let Ok(f) = self.taps[i].rx.try_recv() {
                        self.taps[i].samples.extend(f.samples);
                    }
                    if self.taps[i].samples.len() / 160 >= self.taps[i].max_frames {
                        self.finish_tap(i);
                        self.carry();
                        any = true;
                    }
                }
                if !any {
                    break next;
                }
            };
            let next = [card_next, self.engine.next_deadline(), self.ivr.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            if self.now >= until {
                return;
            }
            self.now = next.unwrap_or(until).min(until).max(Instant::from_micros(self.now.as_micros() + 1));
            self.engine.handle(self.now, Input::Timeout);
            self.ivr.handle_timeout(self.now);
            self.carry();
        }
    }

    fn digits_detected(&self) -> String {
        self.seen
            .card
            .iter()
            .filter_map(|e| match e {
                EventKind::Digit { digit, .. } => Some(*digit),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Center {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_caller_presses_1_hears_the_repair_status_and_hangs_up() {
    let mut c = Center::new(
        "status",
        &caller(
            "13800138000",
            &["wait_prompt", "wait_prompt", "press 1", "wait_prompt", "press 12345#", "wait 25", "hang_up"],
        ),
    );
    c.run_until(Instant::from_secs(60));
    assert_eq!(c.digits_detected(), "112345#", "keys found in the line audio");
    assert_eq!(c.repair.requests(), vec!["GET /tickets/12345"]);
    let path: Vec<&str> = c.seen.nodes.iter().map(String::as_str).collect();
    assert_eq!(
        path,
        [
            "welcome",
            "menu",
            "ask_ticket",
            "lookup",
            "say_ticket",
            "say_number",
            "say_status",
            "has_eta",
            "eta_intro",
            "say_eta",
            "goodbye"
        ]
    );
    // The ticket read digit by digit, the status from the lookup, the date and time.
    let played = c.seen.played.join(" ");
    assert!(played.contains("ticket n1 n2 n3 n4 n5 status_is status_in_progress expected_ready"), "{played}");
    assert!(played.contains("month3 n7 n20 n20 n6 n2 oclock pm goodbye"), "{played}");
    let (_, next, data) = &c.seen.done[0];
    assert_eq!(next, "hangup");
    assert_eq!(data["status"], "in_progress");
    assert!(c.seen.csta.iter().any(|e| matches!(e, CstaEvent::CallCleared { .. })));
    assert_eq!(c.ivr.sessions(), 0);
}

#[test]
fn a_vip_caller_pressing_2_goes_to_the_priority_queue() {
    let mut c =
        Center::new("vip", &caller(VIP, &["wait_prompt", "wait_prompt", "press 2", "wait 20", "hang_up"]));
    c.run_until(Instant::from_secs(30));
    assert_eq!(c.digits_detected(), "2");
    let (_, next, data) = &c.seen.done[0];
    assert_eq!(next, "queue:priority");
    assert_eq!(data["reason"], "vip");
    assert_eq!(data["priority"], "1");
    assert!(c.seen.played.contains(&"transfer_priority".to_string()));
    assert!(c.seen.csta.iter().any(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "priority")));
}

#[test]
fn an_ordinary_caller_pressing_2_goes_to_support() {
    let mut c =
        Center::new("agent", &caller("13800138000", &["wait_prompt", "wait_prompt", "press 2", "wait 20"]));
    c.run_until(Instant::from_secs(30));
    assert_eq!(c.seen.done[0].1, "queue:support");
    assert!(c.seen.csta.iter().any(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "support")));
}

#[test]
fn a_caller_pressing_0_leaves_a_voicemail_by_hanging_up() {
    let mut c = Center::new(
        "voicemail",
        &caller(
            "13800138000",
            &["wait_prompt", "wait_prompt", "press 0", "wait_prompt", "talk 4", "hang_up"],
        ),
    );
    c.run_until(Instant::from_secs(40));
    assert_eq!(c.digits_detected(), "0");
    assert_eq!(c.seen.voicemail.len(), 1, "one message");
    let vm = &c.seen.voicemail[0];
    assert_eq!(vm.mailbox, "support");
    assert_eq!(vm.caller.as_deref(), Some("13800138000"));
    assert_eq!(vm.dnis.as_deref(), Some(ACCESS));
    // About the four seconds of talk (the tap runs from the end of the greeting).
    assert!(
        vm.duration >= Duration::from_secs(3) && vm.duration <= Duration::from_secs(6),
        "{:?}",
        vm.duration
    );
    let (spec, samples) = wav::read_wav_file(&vm.path).expect("the message is a WAV");
    assert_eq!((spec.sample_rate, spec.channels), (8000, 1));
    let loud = samples.chunks(160).filter(|f| f.iter().any(|&s| s.unsigned_abs() > 1000)).count();
    assert!(loud > 100, "the caller's talk is in it: {loud} loud frames");
    // The caller hung up: no hand-back, the engine cleared the call.
    assert!(c.seen.done.is_empty());
    assert_eq!(c.ivr.sessions(), 0);
}

#[test]
fn invalid_keys_are_retried_then_the_menu_gives_up() {
    let mut c = Center::new(
        "invalid",
        &caller(
            "13800138000",
            &["wait_prompt", "wait_prompt", "press 7", "wait 8", "press 8", "wait 8", "press 9", "wait 10"],
        ),
    );
    c.run_until(Instant::from_secs(45));
    assert_eq!(c.digits_detected(), "789");
    let invalid = c.seen.played.iter().filter(|p| *p == "invalid").count();
    assert_eq!(invalid, 2, "two retries: {:?}", c.seen.played);
    assert_eq!(c.seen.nodes.last().map(String::as_str), Some("goodbye"));
    assert_eq!(c.seen.done[0].1, "hangup");
}

#[test]
fn a_silent_caller_is_asked_again_then_let_go() {
    let mut c = Center::new("silent", &caller("13800138000", &["wait 60"]));
    c.run_until(Instant::from_secs(60));
    let no_input = c.seen.played.iter().filter(|p| *p == "no_input").count();
    assert_eq!(no_input, 2, "{:?}", c.seen.played);
    assert_eq!(c.seen.played.iter().filter(|p| *p == "main_menu").count(), 3);
    assert_eq!(c.seen.done[0].1, "hangup");
    assert!(c.seen.csta.iter().any(|e| matches!(e, CstaEvent::CallCleared { .. })));
}

#[test]
fn keys_pressed_during_the_welcome_stop_it_and_skip_the_menus_ahead() {
    let mut c =
        Center::new("bargein", &caller("13800138000", &["wait 0.5", "press 1", "press 12345#", "wait 30"]));
    c.run_until(Instant::from_secs(40));
    assert_eq!(c.digits_detected(), "112345#");
    // The welcome was cut by the first key, the ticket prompt by the next ones.
    let cut =
        c.seen.card.iter().filter(|e| matches!(e, EventKind::PlayFinished { reason: PlayEnd::Digit, .. }));
    assert_eq!(cut.count(), 2);
    // Type-ahead: the "1" already pressed chose from the menu without its prompt.
    assert!(!c.seen.played.contains(&"main_menu".to_string()), "{:?}", c.seen.played);
    assert_eq!(&c.seen.nodes[..3], ["welcome", "menu", "ask_ticket"]);
    assert_eq!(c.repair.requests(), vec!["GET /tickets/12345"]);
    assert!(c.seen.played.contains(&"status_in_progress".to_string()));
}

#[test]
fn after_hours_callers_hear_the_message_and_leave_a_voicemail() {
    let mut c =
        Center::new("closed", &caller("13800138000", &["wait_prompt", "wait_prompt", "talk 3", "hang_up"]));
    // Sunday 2026-03-08 22:00 Beijing time: the access number's schedule is closed.
    c.engine.set_wall_clock(Instant::ZERO, 1_772_978_400);
    c.run_until(Instant::from_secs(40));
    assert_eq!(c.seen.nodes, ["message", "voicemail"]);
    assert_eq!(c.seen.voicemail.len(), 1);
    assert_eq!(c.seen.voicemail[0].mailbox, "after-hours");
}
