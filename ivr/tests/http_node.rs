//! The HTTP node against a local server (the mock repair service on 127.0.0.1:0), with
//! the requests performed by `http_worker` on its own thread as in the real center:
//! fields into variables, a JSON body from variables, a 404 and a timeout taking the
//! failure branch.

use std::collections::BTreeMap;
use std::time::Duration;

use crossbeam_channel::bounded;
use hotline_drivers::{ChannelId, Instant};
use hotline_ivr::mock::{RepairService, Ticket};
use hotline_ivr::{http_worker, Flows, Ivr, IvrOutput, Prompts};

const FLOW: &str = r#"
[flow.main]
start = "ask"

[flow.main.ask]
type = "http"
method = "POST"
url = "{base}/tickets/{ticket}/callback"
body = { number = "{ani}", ticket = "{ticket}" }
next = "get"
failure = "failed"

[flow.main.get]
type = "http"
url = "{base}/tickets/{ticket}"
fields = { status = "/ticket/status", eta = "ticket.eta" }
timeout = 0.5
next = "ok"
failure = "failed"

[flow.main.ok]
type = "hangup"

[flow.main.failed]
type = "hangup"
cause = 41
"#;

/// Run the flow for one ticket; the worker thread does the HTTP.
fn run(service: &RepairService, ticket: &str) -> (String, BTreeMap<String, String>) {
    let (req_tx, req_rx) = bounded(8);
    let (ans_tx, ans_rx) = bounded(8);
    let worker = std::thread::spawn(move || http_worker(req_rx, ans_tx));
    let mut ivr = Ivr::new(Flows::parse(FLOW, "http.toml").unwrap(), Prompts::default());
    let vars = BTreeMap::from([
        ("base".to_string(), service.base_url()),
        ("ticket".to_string(), ticket.to_string()),
        ("ani".to_string(), "13800138000".to_string()),
    ]);
    let now = Instant::ZERO;
    ivr.start(now, 7, ChannelId::e1(1, 1, 1), "main", vars).unwrap();
    let result = loop {
        match ivr.poll_output() {
            Some(IvrOutput::Http(r)) => {
                req_tx.send(r).unwrap();
                let answer = ans_rx.recv_timeout(Duration::from_secs(10)).expect("the worker answers");
                ivr.handle_http(now, answer);
            }
            Some(IvrOutput::Done { next, data, .. }) => break (next, data),
            Some(_) => {}
            None => panic!("the flow stalled"),
        }
    };
    drop(req_tx);
    worker.join().unwrap();
    result
}

#[test]
fn a_known_ticket_fills_the_variables_and_the_callback_body_carries_the_caller() {
    let service = RepairService::spawn("127.0.0.1:0").unwrap();
    let (next, vars) = run(&service, "12345");
    assert_eq!(next, "hangup");
    assert_eq!(vars["status"], "in_progress");
    assert_eq!(vars["eta"], "2026-03-07 14:00");
    let reqs = service.requests();
    assert_eq!(reqs.len(), 2);
    let body: serde_json::Value =
        serde_json::from_str(reqs[0].strip_prefix("POST /tickets/12345/callback ").unwrap()).unwrap();
    assert_eq!(body, serde_json::json!({"number": "13800138000", "ticket": "12345"}));
}

#[test]
fn an_unknown_ticket_takes_the_failure_branch_with_the_status() {
    let service = RepairService::spawn("127.0.0.1:0").unwrap();
    let (next, vars) = run(&service, "99999");
    assert_eq!(next, "hangup:41");
    assert_eq!(vars["http_status"], "404");
    assert!(!vars.contains_key("status"));
}

#[test]
fn a_caller_typing_a_slash_cannot_change_the_url() {
    let service = RepairService::spawn("127.0.0.1:0").unwrap();
    let (next, _) = run(&service, "1/../11111");
    assert_eq!(next, "hangup:41");
    assert!(service.requests().iter().all(|r| r.contains("1%2F..%2F11111")), "{:?}", service.requests());
}

#[test]
fn a_slow_system_times_out_into_the_failure_branch() {
    let tickets = BTreeMap::from([("12345".to_string(), Ticket { status: "x".into(), eta: "y".into() })]);
    let service = RepairService::spawn_with("127.0.0.1:0", tickets, Duration::from_secs(2)).unwrap();
    let (next, vars) = run(&service, "12345");
    assert_eq!(next, "hangup:41");
    assert!(vars["http_error"].contains("timed out"), "{}", vars["http_error"]);
}
