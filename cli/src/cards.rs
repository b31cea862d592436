//! `hotline cards --config FILE`: the configured cards, spans and channels, and the state
//! each channel is in when the backend comes up.

use std::collections::BTreeMap;
use std::path::Path;

use hotline_drivers::channel::{ChannelInfo, ChannelState};
use hotline_drivers::config::{self, Backend, CardConfig};
use hotline_drivers::sim::SimCard;
use hotline_drivers::{Card, ChannelAddr, Instant};
use serde_json::json;

use crate::exit_codes::{CliError, CliResult};

pub fn run(path: &Path, json_out: bool) -> CliResult<String> {
    let cfg = config::load(path).map_err(|e| CliError::input(e.to_string()))?;
    if cfg.cards.is_empty() {
        return Err(CliError::input(format!("{}: no [[card]] is configured", path.display())));
    }
    let mut out = String::new();
    let mut cards_json = Vec::new();
    for card in &cfg.cards {
        let channels = match card.backend {
            Backend::Simulator => {
                let (tx, _rx) = crossbeam_channel::unbounded();
                let mut sim =
                    SimCard::from_config(&cfg, card.id, tx).map_err(|e| CliError::input(e.to_string()))?;
                sim.poll(Instant::ZERO).map_err(|e| CliError::failure(e.to_string()))?;
                Some(sim.channels())
            }
            // Hardware backends come with the real-cards work; say so rather than guess.
            _ => None,
        };
        if json_out {
            cards_json.push(card_json(card, channels.as_deref()));
        } else {
            out.push_str(&card_text(card, channels.as_deref()));
        }
    }
    if json_out {
        return Ok(format!("{}\n", json!({ "cards": cards_json })));
    }
    Ok(out)
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Simulator => "simulator",
        Backend::Dahdi => "dahdi",
        Backend::Synway => "synway",
        Backend::Dialogic => "dialogic",
    }
}

fn state_name(s: ChannelState) -> &'static str {
    match s {
        ChannelState::Idle => "idle",
        ChannelState::Offered => "offered",
        ChannelState::Dialing => "dialing",
        ChannelState::Alerting => "alerting",
        ChannelState::Connected => "connected",
        ChannelState::Releasing => "releasing",
        ChannelState::OffHook => "off hook",
        ChannelState::Blocked => "blocked",
    }
}

/// Channels grouped as an installer thinks of them: each span, the FXO lines, the stations.
fn group(ch: &ChannelInfo) -> String {
    match ch.id.addr {
        ChannelAddr::E1 { span, .. } => format!("span {span}"),
        ChannelAddr::Fxo { .. } => "fxo".to_string(),
        ChannelAddr::Fxs { .. } => "fxs".to_string(),
    }
}

fn card_text(card: &CardConfig, channels: Option<&[ChannelInfo]>) -> String {
    let mut out = format!(
        "card {}  backend {}  tone plan {}  conference bridges {} x {} members\n",
        card.id,
        backend_name(card.backend),
        card.tone_plan.name,
        card.conference_bridges,
        card.conference_members
    );
    let Some(channels) = channels else {
        // A hardware card is not opened just to list it: show what is configured.
        for s in &card.spans {
            out.push_str(&format!("  span {}  {:<22} 30 channels configured\n", s.span, s.signalling.name()));
        }
        if let Some(fxo) = &card.fxo {
            out.push_str(&format!("  fxo     ports {}-{} configured\n", fxo.ports.first, fxo.ports.last));
        }
        if let Some(fxs) = &card.fxs {
            out.push_str(&format!("  fxs     ports {}-{} configured\n", fxs.ports.first, fxs.ports.last));
        }
        out.push_str("  (not opened here: `hotline cards probe` shows what the hardware reports)\n");
        return out;
    };
    // Spans first, then FXO lines, then stations: channel order, as on the card.
    let mut sorted: Vec<&ChannelInfo> = channels.iter().collect();
    sorted.sort_by_key(|c| c.id);
    let mut groups: Vec<(String, Vec<&ChannelInfo>)> = Vec::new();
    for ch in sorted {
        let name = group(ch);
        match groups.last_mut() {
            Some((last, chans)) if *last == name => chans.push(ch),
            _ => groups.push((name, vec![ch])),
        }
    }
    for (name, chans) in &groups {
        let mut states: BTreeMap<&str, usize> = BTreeMap::new();
        for c in chans {
            *states.entry(state_name(c.state)).or_default() += 1;
        }
        let states: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let first = chans.first().map(|c| c.id.to_string()).unwrap_or_default();
        let last = chans.last().map(|c| c.id.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "  {name:<7} {:<22} {:>2} channels {first}..{last}: {}\n",
            chans[0].signalling,
            chans.len(),
            states.join(", ")
        ));
    }
    out
}

fn card_json(card: &CardConfig, channels: Option<&[ChannelInfo]>) -> serde_json::Value {
    json!({
        "id": card.id,
        "backend": backend_name(card.backend),
        "tone_plan": card.tone_plan.name,
        "available": channels.is_some(),
        "channels": channels.map(|chs| chs.iter().map(|c| json!({
            "id": c.id.to_string(),
            "kind": c.kind,
            "state": c.state,
            "signalling": c.signalling,
        })).collect::<Vec<_>>()),
    })
}

/// `hotline cards probe`: what telephony hardware this machine has: DAHDI's kernel
/// interface and spans, and the vendor SDK libraries the installation file names.
pub fn probe(root: &Path, config_path: Option<&Path>) -> CliResult<String> {
    let report = hotline_drivers::dahdi::probe(root);
    let mut out = report.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let Some(path) = config_path else {
        out.push_str(
            "\nVendor SDKs (Synway-style, Dialogic-style): give --config FILE to check the \
             sdk_path of each card with backend = \"synway\" or \"dialogic\".\n",
        );
        return Ok(out);
    };
    let cfg = config::load(path).map_err(|e| CliError::input(e.to_string()))?;
    let mut vendor_cards = 0;
    for card in &cfg.cards {
        let Some(sdk) = &card.sdk_path else { continue };
        vendor_cards += 1;
        let name = backend_name(card.backend);
        let result = match card.backend {
            Backend::Synway => hotline_drivers::vendor::synway::probe(sdk),
            Backend::Dialogic => hotline_drivers::vendor::dialogic::probe(sdk),
            _ => continue,
        };
        match result {
            Ok(()) => out.push_str(&format!(
                "\ncard {}: {name} SDK at {}: loaded, every function Hotline calls is present\n",
                card.id,
                sdk.display()
            )),
            Err(e) => out.push_str(&format!("\ncard {}: {name} SDK: {e}\n", card.id)),
        }
    }
    if vendor_cards == 0 {
        out.push_str(&format!("\n{}: no card uses a vendor SDK backend\n", path.display()));
    }
    Ok(out)
}
