//! A small repair-status service for the demo and the tests: plain HTTP/1.1 on a
//! loopback port, one thread, JSON answers.
//!
//! - `GET /tickets/ID` → `200 {"ticket":{"id":..,"status":..,"eta":..}}` or `404 {"error":..}`
//! - `POST /tickets/ID/callback` (JSON body) → `200 {"ok":true}`, the body kept for tests

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A repair ticket as the service knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub status: String,
    /// `YYYY-MM-DD HH:MM`.
    pub eta: String,
}

/// The running service; stops when dropped.
#[derive(Debug)]
pub struct RepairService {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl RepairService {
    /// The demo's tickets: 12345 in progress, 11111 completed, 22222 waiting for parts.
    pub fn demo_tickets() -> BTreeMap<String, Ticket> {
        let t = |s: &str, eta: &str| Ticket { status: s.into(), eta: eta.into() };
        BTreeMap::from([
            ("12345".to_string(), t("in_progress", "2026-03-07 14:00")),
            ("11111".to_string(), t("completed", "2026-03-01 09:30")),
            ("22222".to_string(), t("waiting_parts", "2026-03-12 10:00")),
        ])
    }

    /// Listen on `addr` (use `127.0.0.1:0` and read [`RepairService::addr`]).
    pub fn spawn(addr: &str) -> io::Result<RepairService> {
        RepairService::spawn_with(addr, RepairService::demo_tickets(), Duration::ZERO)
    }

    /// With these tickets, answering each request after `delay` (for timeout tests).
    pub fn spawn_with(
        addr: &str,
        tickets: BTreeMap<String, Ticket>,
        delay: Duration,
    ) -> io::Result<RepairService> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = std::thread::Builder::new().name("repair-mock".into()).spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(mut s) = conn {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = serve(&mut s, &tickets, delay, &requests2);
                }
            }
        })?;
        Ok(RepairService { addr, stop, requests, thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served so far: `METHOD PATH BODY`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for RepairService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    s: &mut TcpStream,
    tickets: &BTreeMap<String, Ticket>,
    delay: Duration,
    requests: &Mutex<Vec<String>>,
) -> io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0).min(1 << 20);
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).to_string();
    // Noted before answering, so that whoever got the answer sees the request listed.
    requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(format!("{method} {path} {body}").trim_end().to_string());
    std::thread::sleep(delay);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (status, json) = match (method.as_str(), segs.as_slice()) {
        ("GET", ["tickets", id]) => match tickets.get(*id) {
            Some(t) => {
                (200, serde_json::json!({"ticket": {"id": id, "status": t.status, "eta": t.eta}}).to_string())
            }
            None => (404, serde_json::json!({"error": format!("no ticket {id}")}).to_string()),
        },
        ("POST", ["tickets", _, "callback"]) => (200, serde_json::json!({"ok": true}).to_string()),
        _ => (404, serde_json::json!({"error": "not found"}).to_string()),
    };
    let reason = if status == 200 { "OK" } else { "Not Found" };
    write!(
        s,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )?;
    s.flush()
}
