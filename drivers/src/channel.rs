//! Channels and their ids.
//!
//! A card has E1 spans of 30 bearer channels (timeslots 1–15 and 17–31; 0 carries framing
//! and 16 the signalling), analog FXO ports (trunks to an exchange line), analog FXS
//! ports (stations: an agent's phone) and conference bridges (a card resource).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a channel sits on its card.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelAddr {
    /// A bearer channel of an E1 span: `span` counts from 1, `timeslot` is 1–15 or 17–31.
    E1 { span: u8, timeslot: u8 },
    /// An FXO port (counts from 1): a trunk to an analog exchange line.
    Fxo { port: u16 },
    /// An FXS port (counts from 1): a station, an analog phone.
    Fxs { port: u16 },
}

/// A channel: its card (counting from 1) and its place on that card.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId {
    pub card: u16,
    pub addr: ChannelAddr,
}

impl ChannelId {
    pub const fn e1(card: u16, span: u8, timeslot: u8) -> Self {
        ChannelId { card, addr: ChannelAddr::E1 { span, timeslot } }
    }
    pub const fn fxo(card: u16, port: u16) -> Self {
        ChannelId { card, addr: ChannelAddr::Fxo { port } }
    }
    pub const fn fxs(card: u16, port: u16) -> Self {
        ChannelId { card, addr: ChannelAddr::Fxs { port } }
    }
    pub fn kind(&self) -> ChannelKind {
        match self.addr {
            ChannelAddr::E1 { .. } => ChannelKind::E1Bearer,
            ChannelAddr::Fxo { .. } => ChannelKind::Fxo,
            ChannelAddr::Fxs { .. } => ChannelKind::Fxs,
        }
    }
    /// Trunks (E1 bearer channels and FXO ports) carry calls to and from the network.
    pub fn is_trunk(&self) -> bool {
        matches!(self.kind(), ChannelKind::E1Bearer | ChannelKind::Fxo)
    }
}

/// The E1 timeslots that carry bearer channels, in order.
pub fn e1_bearer_timeslots() -> impl Iterator<Item = u8> {
    (1..=31).filter(|&ts| ts != 16)
}

impl fmt::Display for ChannelId {
    /// `1/2/15` for card 1 span 2 timeslot 15; `1/fxo/3`, `1/fxs/12` for analog ports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            ChannelAddr::E1 { span, timeslot } => write!(f, "{}/{}/{}", self.card, span, timeslot),
            ChannelAddr::Fxo { port } => write!(f, "{}/fxo/{}", self.card, port),
            ChannelAddr::Fxs { port } => write!(f, "{}/fxs/{}", self.card, port),
        }
    }
}

/// The text of a channel id was not `card/span/timeslot`, `card/fxo/port` or `card/fxs/port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseChannelIdError(String);

impl fmt::Display for ParseChannelIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad channel id {:?}: expected card/span/timeslot (1/1/5), card/fxo/port or card/fxs/port",
            self.0
        )
    }
}

impl std::error::Error for ParseChannelIdError {}

impl FromStr for ChannelId {
    type Err = ParseChannelIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseChannelIdError(s.to_string());
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() != 3 {
            return Err(err());
        }
        let card: u16 = parts[0].parse().map_err(|_| err())?;
        let addr = match parts[1] {
            "fxo" => ChannelAddr::Fxo { port: parts[2].parse().map_err(|_| err())? },
            "fxs" => ChannelAddr::Fxs { port: parts[2].parse().map_err(|_| err())? },
            span => {
                let span: u8 = span.parse().map_err(|_| err())?;
                let timeslot: u8 = parts[2].parse().map_err(|_| err())?;
                if !(1..=31).contains(&timeslot) || timeslot == 16 {
                    return Err(err());
                }
                ChannelAddr::E1 { span, timeslot }
            }
        };
        Ok(ChannelId { card, addr })
    }
}

/// What a channel is, which decides what it can do.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// An E1 bearer channel: a trunk to the network, digital signalling.
    E1Bearer,
    /// An FXO port: a trunk to an analog exchange line (loop start).
    Fxo,
    /// An FXS port: a station, an agent's analog phone.
    Fxs,
}

/// A conference bridge on a card (a card resource, not a channel).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConferenceId {
    pub card: u16,
    pub bridge: u16,
}

impl fmt::Display for ConferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/conf/{}", self.card, self.bridge)
    }
}

/// The state of a channel, as a backend reports it for `hotline cards`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// Free for a call.
    Idle,
    /// A call is being offered to us (inbound) and not yet answered.
    Offered,
    /// We placed a call and wait for the far end (outbound).
    Dialing,
    /// The far end (or the station) is being alerted.
    Alerting,
    /// The call is answered; media flows.
    Connected,
    /// Releasing.
    Releasing,
    /// A station whose handset is off hook with no call.
    OffHook,
    /// Blocked: out of service by maintenance, alarm or the far end.
    Blocked,
}

/// A channel as a backend describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub id: ChannelId,
    pub kind: ChannelKind,
    pub state: ChannelState,
    /// Signalling in words the installer knows: "ISDN PRI", "China No.1 (MFC-R2)", "loop start".
    pub signalling: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        for id in [ChannelId::e1(1, 2, 17), ChannelId::fxo(1, 3), ChannelId::fxs(2, 12)] {
            assert_eq!(id.to_string().parse::<ChannelId>().unwrap(), id);
        }
        assert!("1/1/16".parse::<ChannelId>().is_err(), "timeslot 16 is signalling");
        assert!("1/1".parse::<ChannelId>().is_err());
        assert_eq!(e1_bearer_timeslots().count(), 30);
    }
}
