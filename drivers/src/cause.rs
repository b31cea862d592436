//! Release causes, as ITU-T Q.850 numbers them. Every backend maps its own signalling
//! (ISDN, ISUP, MFC-R2, an analog line's tones) onto these.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Q.850 cause value (1–127).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cause(pub u8);

impl Cause {
    pub const UNALLOCATED_NUMBER: Cause = Cause(1);
    pub const NO_ROUTE_TO_DESTINATION: Cause = Cause(3);
    pub const NORMAL_CLEARING: Cause = Cause(16);
    pub const USER_BUSY: Cause = Cause(17);
    pub const NO_USER_RESPONDING: Cause = Cause(18);
    pub const NO_ANSWER: Cause = Cause(19);
    pub const SUBSCRIBER_ABSENT: Cause = Cause(20);
    pub const CALL_REJECTED: Cause = Cause(21);
    pub const NUMBER_CHANGED: Cause = Cause(22);
    pub const DESTINATION_OUT_OF_ORDER: Cause = Cause(27);
    pub const INVALID_NUMBER_FORMAT: Cause = Cause(28);
    pub const NORMAL_UNSPECIFIED: Cause = Cause(31);
    pub const NO_CIRCUIT_AVAILABLE: Cause = Cause(34);
    pub const NETWORK_OUT_OF_ORDER: Cause = Cause(38);
    pub const TEMPORARY_FAILURE: Cause = Cause(41);
    pub const SWITCHING_EQUIPMENT_CONGESTION: Cause = Cause(42);
    pub const REQUESTED_CHANNEL_NOT_AVAILABLE: Cause = Cause(44);
    pub const RESOURCE_UNAVAILABLE: Cause = Cause(47);
    pub const INCOMPATIBLE_DESTINATION: Cause = Cause(88);
    pub const RECOVERY_ON_TIMER_EXPIRY: Cause = Cause(102);
    pub const PROTOCOL_ERROR: Cause = Cause(111);
    pub const INTERWORKING: Cause = Cause(127);

    /// The Q.850 name of the cause, or "unknown cause".
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "unallocated (unassigned) number",
            3 => "no route to destination",
            16 => "normal call clearing",
            17 => "user busy",
            18 => "no user responding",
            19 => "no answer from user (user alerted)",
            20 => "subscriber absent",
            21 => "call rejected",
            22 => "number changed",
            27 => "destination out of order",
            28 => "invalid number format",
            31 => "normal, unspecified",
            34 => "no circuit/channel available",
            38 => "network out of order",
            41 => "temporary failure",
            42 => "switching equipment congestion",
            44 => "requested circuit/channel not available",
            47 => "resource unavailable, unspecified",
            88 => "incompatible destination",
            102 => "recovery on timer expiry",
            111 => "protocol error, unspecified",
            127 => "interworking, unspecified",
            _ => "unknown cause",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}
