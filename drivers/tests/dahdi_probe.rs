//! `hotline cards probe`'s DAHDI part against fake `/proc/dahdi`, `/sys/bus/dahdi_devices`
//! and `/dev/dahdi` trees in a temporary folder.
#![cfg(feature = "dahdi")]

use std::fs;
use std::path::{Path, PathBuf};

use hotline_drivers::channel::ChannelKind;
use hotline_drivers::config;
use hotline_drivers::dahdi::{probe, DahdiOptions};
use hotline_drivers::ChannelId;

fn root(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-dahdi-probe-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

const E1_SPAN: &str = "Span 1: TE2/0/1 \"T2XXP (PCI) Card 0 Span 1\" HDB3/CCS/CRC4 RED \n\n";
const ANALOG_SPAN: &str = "Span 2: WCTDM/0 \"Wildcard TDM410P\" (MASTER) \n\n\
           32 WCTDM/0/0 FXSKS (In use) \n\
           33 WCTDM/0/1 FXSKS \n\
           34 WCTDM/0/2 FXOKS \n\
           35 WCTDM/0/3 \n";

fn e1_span() -> String {
    let mut s = E1_SPAN.to_string();
    for ts in 1..=31 {
        let sig = if ts == 16 { "HardHDLC" } else { "Clear" };
        s.push_str(&format!("\t  {ts:>3} TE2/0/1/{ts} {sig} (In use) \n"));
    }
    s
}

#[test]
fn a_machine_without_dahdi_is_told_what_to_install_and_load() {
    let r = probe(&root("none"));
    assert!(!r.module_loaded && !r.device_present && r.spans.is_empty());
    assert_eq!(r.advice.len(), 1);
    let text = r.to_string();
    assert!(text.contains("modprobe dahdi") && text.contains("dahdi-dkms"), "{text}");
    assert!(text.contains("not loaded"));
}

#[test]
fn a_loaded_module_with_no_card_driver_says_to_load_the_driver() {
    let dir = root("nocard");
    fs::create_dir_all(dir.join("proc/dahdi")).unwrap();
    write(&dir, "dev/dahdi/channel", "");
    let r = probe(&dir);
    assert!(r.module_loaded && r.device_present && r.spans.is_empty());
    assert!(
        r.advice.iter().any(|a| a.contains("card's driver") && a.contains("dahdi_hardware")),
        "{:?}",
        r.advice
    );
}

#[test]
fn spans_channels_signalling_and_alarms_are_read_from_proc_dahdi() {
    let dir = root("cards");
    write(&dir, "proc/dahdi/1", &e1_span());
    write(&dir, "proc/dahdi/2", ANALOG_SPAN);
    fs::create_dir_all(dir.join("sys/bus/dahdi_devices/devices/pci:0000:03:00.0")).unwrap();
    let r = probe(&dir);
    assert_eq!(r.devices, vec!["pci:0000:03:00.0".to_string()]);
    assert!(!r.device_present);
    assert_eq!(r.spans.len(), 2);
    let e1 = &r.spans[0];
    assert_eq!((e1.number, e1.name.as_str()), (1, "TE2/0/1"));
    assert_eq!(e1.description, "T2XXP (PCI) Card 0 Span 1");
    assert_eq!(e1.line_config.as_deref(), Some("HDB3/CCS/CRC4"));
    assert_eq!(e1.alarms, vec!["RED".to_string()]);
    assert_eq!(e1.channels.len(), 31);
    assert_eq!(e1.channels[15].kind, None, "timeslot 16 is the D-channel");
    assert_eq!(r.channels_of(ChannelKind::E1Bearer).count(), 30);
    let analog = &r.spans[1];
    assert_eq!(analog.line_config, None);
    assert_eq!(analog.channels[0].kind, Some(ChannelKind::Fxo), "FXS signalling means an FXO port");
    assert!(analog.channels[0].in_use);
    assert_eq!(analog.channels[2].kind, Some(ChannelKind::Fxs));
    assert_eq!(analog.channels[3].signalling, "", "unconfigured");
    let text = r.to_string();
    assert!(
        text.contains("alarms: RED") && text.contains("FXO port") && text.contains("unconfigured"),
        "{text}"
    );
    assert!(r.advice.iter().any(|a| a.contains("/dev/dahdi/channel")));
    assert!(r.advice.iter().any(|a| a.contains("dahdi_genconf") && a.contains("dahdi_cfg")));
    assert!(r.advice.iter().any(|a| a.contains("Span 1") && a.contains("RED")));
}

#[test]
fn a_garbled_span_file_is_a_problem_that_names_the_file_not_a_panic() {
    let dir = root("garbled");
    write(&dir, "proc/dahdi/1", "this is not a span\n");
    write(&dir, "proc/dahdi/2", ANALOG_SPAN);
    let r = probe(&dir);
    assert_eq!(r.spans.len(), 1);
    assert_eq!(r.problems.len(), 1);
    assert!(r.problems[0].contains("proc/dahdi/1") && r.problems[0].contains("line 1"), "{:?}", r.problems);
}

#[test]
fn the_card_numbering_can_come_from_what_dahdi_reports() {
    let dir = root("numbering");
    write(&dir, "proc/dahdi/1", &e1_span());
    write(&dir, "proc/dahdi/2", ANALOG_SPAN);
    let r = probe(&dir);
    let cfg = config::parse(
        "[[card]]\nid = 1\nbackend = \"dahdi\"\n[[card.span]]\nspan = 1\nsignalling = \"isdn_pri\"\n\
         [card.fxo]\nports = \"1-2\"\n[card.fxs]\nports = \"1\"\n",
        "t.toml",
    )
    .unwrap();
    let opts = DahdiOptions::from_probe(&cfg.cards[0], &r).unwrap();
    assert_eq!(opts.channels[&ChannelId::e1(1, 1, 17)], 17);
    assert_eq!(opts.channels[&ChannelId::fxo(1, 2)], 33);
    assert_eq!(opts.channels[&ChannelId::fxs(1, 1)], 34);
    assert!(!opts.channels.values().any(|&n| n == 16), "the D-channel is no bearer");
    assert_eq!(opts.channels.len(), 30 + 3);
    // Asking for more ports than DAHDI has is a configuration error that counts them.
    let two_fxs =
        config::parse("[[card]]\nid = 1\nbackend = \"dahdi\"\n[card.fxs]\nports = \"1-2\"\n", "t.toml")
            .unwrap();
    let err = DahdiOptions::from_probe(&two_fxs.cards[0], &r).unwrap_err();
    assert!(err.message().contains("DAHDI has 1"), "{}", err.message());
}
