//! The CRM lookup: an HTTP GET to the configured URL with the caller's number, on a
//! worker thread, so a slow CRM delays only the `ScreenPopUpdate`, never the pop or the
//! call.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use super::CrmConfig;

#[derive(Debug)]
pub struct Lookup {
    pub call: u64,
    pub agent: String,
    pub number: String,
}

#[derive(Debug)]
pub struct Answer {
    pub call: u64,
    pub agent: String,
    pub result: Result<Value, String>,
}

/// Percent-encode a caller's number for the URL (digits pass through).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Serve lookups until the sender goes; each answer is sent and the poll woken.
pub fn worker(cfg: CrmConfig, rx: Receiver<Lookup>, tx: Sender<Answer>, waker: Arc<super::Shared>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .http_status_as_error(true)
        .build()
        .into();
    for job in rx {
        let url = cfg.url.replace("{number}", &encode(&job.number));
        let result = fetch(&agent, &url, cfg.timeout);
        if tx.send(Answer { call: job.call, agent: job.agent, result }).is_err() {
            return;
        }
        let _ = waker.waker.wake();
    }
}

fn fetch(agent: &ureq::Agent, url: &str, timeout: Duration) -> Result<Value, String> {
    let mut resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Timeout(_) => format!("timed out after {} ms", timeout.as_millis()),
        other => other.to_string(),
    })?;
    let body = resp.body_mut().read_to_string().map_err(|e| e.to_string())?;
    Ok(serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_number_with_a_plus_is_percent_encoded() {
        assert_eq!(super::encode("+8613800138000"), "%2B8613800138000");
    }
}
