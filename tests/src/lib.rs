//! End-to-end scenarios across the whole installation (see `tests/`).

use std::path::Path;

/// A small center on the card simulator with real audio (`seed` for its randomness): one
/// PRI span into the queue `service` (access number 4008001000), two analog phones 2001
/// and 2002, agents 1001 and 1002 (password `pw`). Callers are the test's own.
pub fn two_phone_center(seed: u64) -> String {
    format!(
        r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[card.fxs]
ports = "1-2"

[simulator]
media = "audio"
seed = {seed}

[[simulator.station]]
ports = "1-2"
answer_after_s = 1
hang_up_after_release_s = 1

[[trunk_group]]
name = "pri"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1"
extension = "2001"

[[station]]
port = "1/fxs/2"
extension = "2002"

[[queue]]
name = "service"
wrap_up = 1

[[access_number]]
dnis = "4008001000"
target = "queue:service"

[[agent]]
id = "1001"
name = "Li Wei"
password = "pw"
queues = {{ service = 5 }}

[[agent]]
id = "1002"
name = "Wang Fang"
password = "pw"
queues = {{ service = 5 }}
"#
    )
}

/// An installation: `center` with its callers, the store at `db` and stereo WAV
/// recordings in `recordings`.
pub fn with_store(center: &str, db: &Path, recordings: &Path) -> String {
    format!(
        "{center}\n[store]\npath = \"{}\"\n\n[recording]\ndir = \"{}\"\nformat = \"wav\"\nlayout = \"stereo\"\n",
        db.display(),
        recordings.display()
    )
}

/// No link server (for `ServeOptions::link_override`): these tests need no network.
pub fn no_link(l: &mut hotline_cti::link::LinkConfig) {
    l.tcp = None;
    l.http = None;
}
