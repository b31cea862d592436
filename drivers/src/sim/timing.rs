//! How long things take on each kind of line, and which release causes each signalling
//! system can carry. Figures are typical of live networks, drawn from ranges so traffic
//! does not march in lockstep.

use std::time::Duration;

use crate::cause::Cause;
use crate::config::Signalling;

use super::rng::Rng;
use super::world::Outcome;

pub(crate) fn ms(rng: &mut Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + rng.below(hi - lo + 1))
}

/// One compelled MFC-R2 cycle: forward signal on, backward signal on, forward off,
/// backward off. Each of the four transitions waits for the other side's tone receiver,
/// so a digit costs 100–150 ms.
pub(crate) fn r2_digit(rng: &mut Rng) -> Duration {
    ms(rng, 100, 150)
}

/// Time from the network's seizure to our `Offered`: ISDN SETUP and ISUP IAM carry the
/// numbers en bloc; R2 pulls them one compelled digit at a time (called number, the
/// caller's category KA, then the calling number when the register asks for it with A-6).
pub(crate) fn inbound_setup(sig: Signalling, dnis: &str, ani: Option<&str>, rng: &mut Rng) -> Duration {
    match sig {
        Signalling::IsdnPri => ms(rng, 2, 10),
        Signalling::Ss7Isup => ms(rng, 2, 10),
        Signalling::ChinaNo1 => {
            let digits = dnis.len() + 1 + ani.map_or(1, |a| a.len() + 1);
            (0..digits).map(|_| r2_digit(rng)).sum::<Duration>() + ms(rng, 20, 60)
        }
    }
}

/// From our answer command to the answer taking effect (CONNECT/CONNECT ACK, ANM, R2
/// answer line signal).
pub(crate) fn answer_delay(sig: Signalling, rng: &mut Rng) -> Duration {
    match sig {
        Signalling::IsdnPri => ms(rng, 10, 30),
        Signalling::Ss7Isup => ms(rng, 5, 20),
        Signalling::ChinaNo1 => ms(rng, 20, 60),
    }
}

/// From our release to the channel being idle again (DISCONNECT/RELEASE/RELEASE
/// COMPLETE, REL/RLC, R2 clear-forward/release-guard).
pub(crate) fn release_delay(sig: Signalling, rng: &mut Rng) -> Duration {
    match sig {
        Signalling::IsdnPri => ms(rng, 20, 40),
        Signalling::Ss7Isup => ms(rng, 10, 30),
        Signalling::ChinaNo1 => ms(rng, 100, 200),
    }
}

/// Network latency of a far-end clearing reaching us.
pub(crate) fn remote_clear_delay(sig: Signalling, rng: &mut Rng) -> Duration {
    match sig {
        Signalling::IsdnPri | Signalling::Ss7Isup => ms(rng, 10, 40),
        Signalling::ChinaNo1 => ms(rng, 30, 80),
    }
}

/// From our PlaceCall to the far end's first answer to it (alerting or a failure):
/// ISDN CALL PROCEEDING then ALERTING; ISUP ACM; R2 digits out then the B-signal.
pub(crate) fn outbound_progress(
    sig: Signalling,
    called: &str,
    calling: Option<&str>,
    rng: &mut Rng,
) -> Duration {
    match sig {
        Signalling::IsdnPri => ms(rng, 60, 300),
        Signalling::Ss7Isup => ms(rng, 100, 500),
        Signalling::ChinaNo1 => {
            let digits = called.len() + 1 + calling.map_or(0, |c| c.len() + 1);
            ms(rng, 20, 50) + (0..digits).map(|_| r2_digit(rng)).sum::<Duration>() + ms(rng, 100, 300)
        }
    }
}

/// Failures come back sooner than alerting on digital signalling (no routing past the
/// first exchange that refuses).
pub(crate) fn outbound_failure(
    sig: Signalling,
    called: &str,
    calling: Option<&str>,
    rng: &mut Rng,
) -> Duration {
    match sig {
        Signalling::IsdnPri => ms(rng, 30, 150),
        Signalling::Ss7Isup => ms(rng, 50, 250),
        Signalling::ChinaNo1 => outbound_progress(sig, called, calling, rng),
    }
}

/// The cause an outcome is reported with on this signalling. ISDN and ISUP carry any
/// Q.850 cause; China No.1 only has its backward B-signals (KB): subscriber busy,
/// vacant number, congestion, and plain clearing.
pub(crate) fn failure_cause(sig: Signalling, outcome: &Outcome) -> Cause {
    let r2 = sig == Signalling::ChinaNo1;
    match outcome {
        Outcome::Busy => Cause::USER_BUSY,
        Outcome::Unallocated => Cause::UNALLOCATED_NUMBER,
        Outcome::Congestion if r2 => Cause::SWITCHING_EQUIPMENT_CONGESTION,
        Outcome::Congestion => Cause::NO_CIRCUIT_AVAILABLE,
        Outcome::OutOfOrder if r2 => Cause::SWITCHING_EQUIPMENT_CONGESTION,
        Outcome::OutOfOrder => Cause::DESTINATION_OUT_OF_ORDER,
        Outcome::NoAnswer => Cause::NO_ANSWER,
        Outcome::Answer { .. } => Cause::NORMAL_CLEARING,
    }
}

/// Analog line timings.
pub(crate) mod analog {
    use std::time::Duration;

    /// A dial tone must come within this long of going off hook, or the line is dead.
    pub const DIAL_TONE_WAIT: Duration = Duration::from_secs(3);
    /// Hook flash window (on hook this long or less is a flash; ETSI ES 201 970 uses
    /// 100 ms minimum recall, and most PBXs take up to 800 ms).
    pub const FLASH_MIN: Duration = Duration::from_millis(100);
    pub const FLASH_MAX: Duration = Duration::from_millis(800);
    /// Caller ID begins this long after the first ring ends (ETSI EN 300 659-1: ≥ 500 ms).
    pub const CID_AFTER_RING: Duration = Duration::from_millis(500);
    /// Polarity reversal debounce.
    pub const REVERSAL_DETECT: Duration = Duration::from_millis(30);
    /// On a line without answer supervision, speech after ringback counts as answer.
    pub const VOICE_ANSWER_DETECT: Duration = Duration::from_millis(600);
    /// After this long without a ring the caller is gone.
    pub const RING_GONE_MARGIN: Duration = Duration::from_millis(1500);
    /// DTMF timing of people pressing keys and of the card's SendDigits.
    pub const DTMF_ON: Duration = Duration::from_millis(100);
    pub const DTMF_OFF: Duration = Duration::from_millis(100);
}
