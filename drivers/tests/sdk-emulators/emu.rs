//! Test support: build an SDK emulator (a C test fixture in this folder) into a shared
//! library with the system C compiler, and call its control API.

#![allow(unsafe_code, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The emulators are process-global, like the SDKs: one test at a time drives one.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Compile `sdk-emulators/{name}.c` into `{name}.so` in the test temp dir (once per run).
pub fn build(name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-emulators").join(format!("{name}.c"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.so", std::process::id()));
    if !out.exists() {
        // Earlier runs' builds are stale; unlinking a library another test process has
        // loaded is harmless on Linux (its mapping stays).
        if let Ok(dir) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) {
            for e in dir.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(&format!("{name}-")) && n.ends_with(".so") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("a C compiler (cc) is needed to build the SDK emulator");
        assert!(status.success(), "building {} failed", src.display());
    }
    out
}

/// The emulator's control API, opened separately from the adapter's copy: the dynamic
/// loader maps one library once, so both see the same emulator state.
pub struct Emu {
    lib: libloading::Library,
}

impl Emu {
    pub fn open(path: &Path) -> Emu {
        Emu { lib: unsafe { libloading::Library::new(path) }.expect("emulator loads") }
    }
    pub fn f<T: Copy>(&self, name: &str) -> T {
        *unsafe { self.lib.get::<T>(name.as_bytes()) }.unwrap_or_else(|_| panic!("emulator has {name}"))
    }
    pub fn log(&self) -> String {
        let f: unsafe extern "C" fn() -> *const std::ffi::c_char = self.f("emu_calls_log");
        unsafe { std::ffi::CStr::from_ptr(f()) }.to_string_lossy().into_owned()
    }
}
