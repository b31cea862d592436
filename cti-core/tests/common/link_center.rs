//! The link server wired to a real engine on threads, on loopback: the center the link
//! tests (link.rs, link_abuse.rs) log in to. Included with `#[path]`.

use std::sync::Arc;

use crossbeam_channel::Sender;
use hotline_cti::link::{self, LinkConfig, LinkHandle, LinkMsg, NoHistory};
use hotline_cti::runtime::{run, RealClock};
use hotline_cti::{Config, Engine, Input};

pub fn config_text(hash: &str) -> String {
    format!(
        r#"
[[station]]
port = "1/fxs/1"
extension = "2001"

[[station]]
port = "1/fxs/2"
extension = "2002"

[[queue]]
name = "sales"

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[agent]]
id = "1001"
name = "Li Wei"
password = "pw1001"
queues = {{ sales = 5 }}

[[agent]]
id = "1002"
name = "Zhang Min"
password_hash = "{hash}"
queues = {{ sales = 5 }}

[[supervisor]]
id = "9001"
name = "Chen Jing"
password = "boss"
"#
    )
}

pub struct Center {
    pub link: LinkHandle,
    pub engine: Sender<Input>,
}

impl Drop for Center {
    fn drop(&mut self) {
        self.link.shutdown();
    }
}

impl Center {
    pub fn start(tune: impl FnOnce(&mut LinkConfig)) -> Center {
        let hash = link::auth::hash_password("pw1002").expect("hash");
        let cfg = Config::parse(&config_text(&hash), "test.toml").expect("valid config");
        let mut lcfg = LinkConfig::new(&cfg);
        lcfg.tcp = Some("127.0.0.1:0".parse().expect("addr"));
        lcfg.http = Some("127.0.0.1:0".parse().expect("addr"));
        tune(&mut lcfg);
        let (in_tx, in_rx) = crossbeam_channel::bounded::<Input>(1024);
        let (out_tx, out_rx) = crossbeam_channel::bounded(1024);
        let link = link::spawn(lcfg, in_tx.clone(), Arc::new(NoHistory)).expect("link starts");
        std::thread::spawn(move || {
            run(Engine::new(cfg), &RealClock::new(), &in_rx, &out_tx);
        });
        let handle = link.clone();
        std::thread::spawn(move || {
            for output in out_rx {
                handle.send(LinkMsg::Output { at_unix_ms: 1_740_821_412_000, output });
            }
        });
        Center { link, engine: in_tx }
    }
}
