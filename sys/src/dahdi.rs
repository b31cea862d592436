//! DAHDI's userspace API (`dahdi/user.h`, Debian package `dahdi-source`): the structs and
//! constants bindgen generated from the header, checked in as `dahdi/bindings.rs`
//! (regenerate with `sys/regen-bindings.sh`), and the ioctl request numbers, which
//! bindgen cannot expand from DAHDI's `_IOW`/`_IOR`/`_IOWR` macros and which are written
//! here with nix's `request_code_*` macros. `tests/dahdi_abi.rs` compiles a C program
//! against the real header and checks every number and struct size below against it.
//!
//! The functions (`specify`, `get_params`, ...) are nix's thin ioctl wrappers: `unsafe`,
//! taking a raw file descriptor of `/dev/dahdi/channel` (or a span's channel) and a
//! pointer. Safe types live in `hotline_drivers::dahdi`.

#[rustfmt::skip]
mod bindings;
pub use bindings::*;

use core::ffi::c_int;
use core::mem::size_of;

pub use nix::sys::ioctl::ioctl_num_type;

/// `DAHDI_CODE`, the ioctl type byte of every DAHDI request.
const CODE: u8 = 0xDA;

macro_rules! requests {
    ($($(#[$doc:meta])* $name:ident = $dir:ident($nr:expr, $ty:ty), $func:ident;)*) => {
        $(
            $(#[$doc])*
            pub const $name: ioctl_num_type = requests!(@code $dir, $nr, $ty);
        )*
        $( requests!(@func $dir, $name, $func, $ty); )*
        /// Every request number above with its C name, for the check against the header.
        pub const IOCTLS: &[(&str, ioctl_num_type)] = &[$((stringify!($name), $name)),*];
    };
    (@code r, $nr:expr, $ty:ty) => { nix::request_code_read!(CODE, $nr, size_of::<$ty>()) };
    (@code w, $nr:expr, $ty:ty) => { nix::request_code_write!(CODE, $nr, size_of::<$ty>()) };
    (@code rw, $nr:expr, $ty:ty) => { nix::request_code_readwrite!(CODE, $nr, size_of::<$ty>()) };
    (@func r, $name:ident, $func:ident, $ty:ty) => { nix::ioctl_read_bad!($func, $name, $ty); };
    (@func w, $name:ident, $func:ident, $ty:ty) => { nix::ioctl_write_ptr_bad!($func, $name, $ty); };
    (@func rw, $name:ident, $func:ident, $ty:ty) => { nix::ioctl_readwrite_bad!($func, $name, $ty); };
}

requests! {
    /// Read the channel's block size (samples per read/write in law mode).
    DAHDI_GET_BLOCKSIZE = r(1, c_int), get_blocksize;
    /// Set the block size: 160 for 20 ms frames.
    DAHDI_SET_BLOCKSIZE = w(1, c_int), set_blocksize;
    /// Channel parameters: number, span, position, signalling, hook state, law.
    DAHDI_GET_PARAMS = rw(5, dahdi_params), get_params;
    /// Hook control: `DAHDI_ONHOOK`, `DAHDI_OFFHOOK`, `DAHDI_WINK`, `DAHDI_FLASH`,
    /// `DAHDI_RING`, `DAHDI_RINGOFF`.
    DAHDI_HOOK = w(7, c_int), hook;
    /// The next `DAHDI_EVENT_*` on the channel (`DAHDI_EVENT_NONE` when none).
    DAHDI_GETEVENT = r(8, c_int), get_event;
    /// A span's status: alarms, counters, names (set `spanno` first).
    DAHDI_SPANSTAT = rw(10, dahdi_spaninfo), span_stat;
    /// The channel's conference setting.
    DAHDI_GETCONF = rw(12, dahdi_confinfo), get_conf;
    /// Put the channel in a conference or monitor mode; `confno` 0 with a conference
    /// mode asks DAHDI for a free conference number, written back.
    DAHDI_SETCONF = rw(13, dahdi_confinfo), set_conf;
    /// Link two conferences.
    DAHDI_CONFLINK = w(14, dahdi_confinfo), conf_link;
    /// The channel's receive and transmit gain tables.
    DAHDI_GETGAINS = rw(16, dahdi_gains), get_gains;
    DAHDI_SETGAINS = w(16, dahdi_gains), set_gains;
    /// Buffer policy and counts.
    DAHDI_GET_BUFINFO = r(27, dahdi_bufferinfo), get_bufinfo;
    DAHDI_SET_BUFINFO = w(27, dahdi_bufferinfo), set_bufinfo;
    /// Dial a string with the kernel's own DTMF/MF generator.
    DAHDI_DIAL = w(31, dahdi_dialoperation), dial;
    /// Bind the open `/dev/dahdi/channel` file to a channel number.
    DAHDI_SPECIFY = w(38, c_int), specify;
    /// Companding of the channel's audio: `DAHDI_LAW_ALAW`, `DAHDI_LAW_MULAW`.
    DAHDI_SETLAW = w(39, c_int), set_law;
    /// 16-bit linear audio instead of law bytes (non-zero) or back (zero).
    DAHDI_SETLINEAR = w(40, c_int), set_linear;
    /// The ring cadence of an FXS port, in ms on/off pairs.
    DAHDI_SETCADENCE = w(42, dahdi_ring_cadence), set_cadence;
}

/// The device a channel backend opens, then binds with [`DAHDI_SPECIFY`].
pub const CHANNEL_DEVICE: &str = "/dev/dahdi/channel";

/// Struct sizes, for the check against the header.
pub const STRUCTS: &[(&str, usize)] = &[
    ("dahdi_params", size_of::<dahdi_params>()),
    ("dahdi_bufferinfo", size_of::<dahdi_bufferinfo>()),
    ("dahdi_confinfo", size_of::<dahdi_confinfo>()),
    ("dahdi_spaninfo", size_of::<dahdi_spaninfo>()),
    ("dahdi_gains", size_of::<dahdi_gains>()),
    ("dahdi_dialoperation", size_of::<dahdi_dialoperation>()),
    ("dahdi_ring_cadence", size_of::<dahdi_ring_cadence>()),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
    // ioctl_num_type is c_ulong on glibc and c_int on musl: the cast is needed on one.
    #[allow(clippy::unnecessary_cast)]
    fn request_numbers_are_linux_encodings_of_dahdi_code_0xda() {
        // _IOW(0xDA, 38, int): direction 1 (write) << 30, size 4 << 16, type << 8, nr.
        assert_eq!(DAHDI_SPECIFY as u64, 0x4004_DA26);
        // _IOR(0xDA, 8, int): direction 2 (read).
        assert_eq!(DAHDI_GETEVENT as u64, 0x8004_DA08);
        // _IOWR(0xDA, 13, struct dahdi_confinfo): three ints.
        assert_eq!(DAHDI_SETCONF as u64, 0xC00C_DA0D);
    }

    #[test]
    fn every_request_has_its_own_number() {
        let mut seen = std::collections::HashMap::new();
        for (name, code) in IOCTLS {
            if let Some(other) = seen.insert(*code, *name) {
                panic!("{name} and {other} have the same request number {code:#x}");
            }
        }
        assert_eq!(seen.len(), IOCTLS.len());
    }
}
