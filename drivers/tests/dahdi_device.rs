//! The real device path (`/dev/dahdi/channel` and nix ioctls) where there is no DAHDI:
//! errors name the file or the ioctl, nothing panics.
#![cfg(feature = "dahdi")]

use hotline_drivers::dahdi::device::DahdiDevices;
use hotline_drivers::dahdi::ChannelOpener;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hotline-dahdi-dev-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn opening_a_channel_without_dahdi_names_the_missing_device_file() {
    let d = dir("missing");
    let err = DahdiDevices::at(&d).open(1).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("channel"), "{err}");
}

#[test]
fn a_file_that_is_not_a_dahdi_device_fails_at_dahdi_specify() {
    let d = dir("plain");
    std::fs::write(d.join("channel"), b"").unwrap();
    // A plain file takes no ioctls: the kernel answers ENOTTY to DAHDI_SPECIFY.
    let err = DahdiDevices::at(&d).open(5).unwrap_err();
    assert!(err.to_string().contains("DAHDI_SPECIFY on DAHDI channel 5"), "{err}");
}

#[test]
fn opening_a_configured_card_on_a_machine_without_dahdi_says_what_to_install() {
    if std::path::Path::new("/proc/dahdi").exists() {
        eprintln!("this machine has DAHDI; the no-DAHDI message cannot be seen here");
        return;
    }
    let cfg = hotline_drivers::config::parse(
        "[[card]]\nid = 1\nbackend = \"dahdi\"\n[card.fxs]\nports = \"1-4\"\n",
        "t.toml",
    )
    .unwrap();
    let (tx, _rx) = crossbeam_channel::unbounded();
    let err =
        hotline_drivers::dahdi::DahdiCard::open_system(&cfg.cards[0], hotline_drivers::dahdi::Law::Alaw, tx)
            .unwrap_err();
    assert_eq!(err.kind(), hotline_drivers::ErrorKind::Config);
    assert!(err.message().contains("modprobe dahdi"), "{}", err.message());
}
