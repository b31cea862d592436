//! The bindings link against the installed libpri and its ABI is what they say: a
//! controller made with custom callbacks starts Q.921 by writing a SABME through them.

#![cfg(feature = "libpri")]

use std::os::raw::{c_int, c_void};

use hotline_sys::libpri as pri;

unsafe extern "C" fn no_read(_: *mut pri::pri, _: *mut c_void, _: c_int) -> c_int {
    0
}

unsafe extern "C" fn count_write(ctrl: *mut pri::pri, buf: *mut c_void, len: c_int) -> c_int {
    // SAFETY: the user data is the `Vec` the test owns for the controller's lifetime,
    // and libpri passes a buffer of `len` bytes.
    unsafe {
        let frames = pri::pri_get_userdata(ctrl) as *mut Vec<Vec<u8>>;
        (*frames).push(std::slice::from_raw_parts(buf as *const u8, len as usize).to_vec());
    }
    len
}

#[test]
fn a_cpe_controller_sends_sabme_through_its_write_callback_at_creation() {
    let mut frames: Vec<Vec<u8>> = Vec::new();
    // SAFETY: callbacks match `pri_io_cb`; `frames` outlives the controller, freed below.
    unsafe {
        let ctrl = pri::pri_new_cb(
            -1,
            pri::PRI_CPE as c_int,
            pri::PRI_SWITCH_EUROISDN_E1 as c_int,
            Some(no_read),
            Some(count_write),
            &mut frames as *mut Vec<Vec<u8>> as *mut c_void,
        );
        assert!(!ctrl.is_null());
        assert_eq!(pri::pri_fd(ctrl), -1, "the fd is only stored");
        // libpri has no destructor for a controller; the test leaves it allocated.
    }
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    // Address: SAPI 0 and TEI 0 (PRI); Q.921 3.3.2: a command from the user side has
    // C/R = 0. Control: SABME with the P bit is 0x7F.
    assert_eq!(f.len(), 3 + 2, "address (2), control (1), and two FCS placeholder bytes");
    assert_eq!(f[0] & 0xFC, 0, "SAPI 0: call control");
    assert_eq!(f[0] & 0x02, 0, "a command from the user side has C/R = 0");
    assert_eq!(f[1], 0x01, "TEI 0, EA = 1");
    assert_eq!(f[2], 0x7F, "SABME with the P bit");
}
