
/// A stand-in for the PRI stack on span 1 (a test fixture): it records the commands it
/// gets and reports the states the test sets.
#[derive(Debug, Default, Clone)]
struct ScriptedPri {
    shared: std::sync::Arc<std::sync::Mutex<(Vec<String>, std::collections::BTreeMap<ChannelId, ChannelState>)>>,
}

impl hotline_drivers::dahdi::SpanSignalling for ScriptedPri {
    fn execute(&mut self, _now: Instant, command: Command) -> hotline_drivers::error::Result<()> {
        self.shared.lock().unwrap().0.push(format!("{command:?}"));
        Ok(())
    }
    fn poll(&mut self, _now: Instant) -> hotline_drivers::error::Result<Option<Instant>> {
        Ok(None)
    }
    fn state(&self, ch: ChannelId) -> ChannelState {
        self.shared.lock().unwrap().1.get(&ch).copied().unwrap_or(ChannelState::Idle)
    }
}

#[test]
fn e1_call_control_goes_to_the_span_signalling_and_media_follows_its_calls() {
    let mut r = rig();
    let pri = ScriptedPri::default();
    r.card.set_span_signalling(1, Box::new(pri.clone()));
    let b1 = ChannelId::e1(1, 1, 1);
    pri.shared.lock().unwrap().1.insert(b1, ChannelState::Offered);
    r.run(Duration::from_millis(20));
    r.exec(Command::Answer { ch: b1 });
    assert!(pri.shared.lock().unwrap().0[0].starts_with("Answer"), "the PRI stack got the answer");
    pri.shared.lock().unwrap().1.insert(b1, ChannelState::Connected);
    let (tx, rx) = unbounded();
    r.exec(Command::StartTap { ch: b1, id: 9, sink: tx });
    let digits = DtmfGenerator::generate("7", DtmfParams::default()).unwrap();
    r.dahdi.line_sends(1, &digits);
    let ev = r.run(Duration::from_millis(300));
    assert!(ev.iter().any(|e| matches!(e, EventKind::Digit { ch, digit: '7', .. } if *ch == b1)), "{ev:?}");
    assert_eq!(r.state(b1), ChannelState::Connected);
    // The PRI stack clears the call: the tap ends with it.
    pri.shared.lock().unwrap().1.insert(b1, ChannelState::Idle);
    let ev = r.run(Duration::from_millis(20));
    assert!(ev.contains(&EventKind::RecordFinished { ch: b1, id: 9, frames: rx.try_iter().count() as u64 }), "{ev:?}");
}
