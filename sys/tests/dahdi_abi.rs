//! hotline-sys's DAHDI ioctl numbers and struct sizes against the real header: a small C
//! program (`dahdi_abi.c`) is compiled against `dahdi/user.h` and prints them; every
//! name must be there with the same value.
//!
//! The header comes from `HOTLINE_DAHDI_INCLUDE_DIR`, `/usr/include/dahdi`, or Debian's
//! `dahdi-source` tarball. Without any of them the check cannot run: under CI (`CI=true`)
//! that is a failure; elsewhere the test says what to install and passes.
#![cfg(feature = "dahdi")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotline_sys::dahdi::{IOCTLS, STRUCTS};

fn scratch() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dahdi_abi");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn header_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HOTLINE_DAHDI_INCLUDE_DIR") {
        let dir = PathBuf::from(dir);
        assert!(dir.join("dahdi/user.h").is_file(), "HOTLINE_DAHDI_INCLUDE_DIR has no dahdi/user.h");
        return Some(dir);
    }
    if Path::new("/usr/include/dahdi/user.h").is_file() {
        return Some(PathBuf::from("/usr/include"));
    }
    let tarball = Path::new("/usr/src/dahdi.tar.bz2");
    if !tarball.is_file() {
        return None;
    }
    let dest = scratch().join("src");
    std::fs::create_dir_all(&dest).unwrap();
    let ok = Command::new("tar")
        .arg("-xjf")
        .arg(tarball)
        .arg("-C")
        .arg(&dest)
        .args(["--wildcards", "*/include/dahdi/*.h"])
        .status()
        .expect("run tar")
        .success();
    assert!(ok, "tar could not unpack {}", tarball.display());
    let found = dest.join("modules/dahdi/include");
    assert!(
        found.join("dahdi/user.h").is_file(),
        "{} has no modules/dahdi/include/dahdi/user.h",
        tarball.display()
    );
    Some(found)
}

/// Compile and run dahdi_abi.c against the header in `include`: name -> value.
fn c_values(include: &Path) -> HashMap<String, u64> {
    let exe = scratch().join("dahdi_abi");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dahdi_abi.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(format!("-I{}", include.display()))
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("run {cc}: {e}"));
    assert!(out.status.success(), "{cc} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let printed = Command::new(&exe).output().expect("run dahdi_abi");
    assert!(printed.status.success());
    String::from_utf8(printed.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, value) = l.split_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[test]
// ioctl_num_type is c_ulong on glibc and c_int on musl: the cast is needed on one.
#[allow(clippy::unnecessary_cast)]
fn ioctl_numbers_and_struct_sizes_match_the_c_header() {
    let Some(include) = header_dir() else {
        let msg = "no DAHDI header: apt-get install dahdi-source, or set HOTLINE_DAHDI_INCLUDE_DIR";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    };
    let c = c_values(&include);
    let mut wrong = Vec::new();
    for (name, ours) in IOCTLS {
        match c.get(*name) {
            Some(&theirs) if theirs == *ours as u64 => {}
            Some(&theirs) => wrong.push(format!("{name}: header {theirs:#x}, hotline-sys {ours:#x}")),
            None => wrong.push(format!("{name}: not printed by dahdi_abi.c")),
        }
    }
    for (name, ours) in STRUCTS {
        match c.get(*name) {
            Some(&theirs) if theirs == *ours as u64 => {}
            Some(&theirs) => {
                wrong.push(format!("sizeof(struct {name}): header {theirs}, hotline-sys {ours}"))
            }
            None => wrong.push(format!("struct {name}: not printed by dahdi_abi.c")),
        }
    }
    let ours: Vec<&str> = IOCTLS.iter().map(|x| x.0).chain(STRUCTS.iter().map(|x| x.0)).collect();
    for name in c.keys() {
        if !ours.contains(&name.as_str()) {
            wrong.push(format!("{name}: printed by dahdi_abi.c but hotline-sys has no such name"));
        }
    }
    assert!(wrong.is_empty(), "DAHDI ABI mismatches:\n{}", wrong.join("\n"));
}
