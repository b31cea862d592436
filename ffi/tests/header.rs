//! The checked-in header `ffi/include/hotline.h` is what cbindgen makes of the code
//! today; this fails when they drift and says how to regenerate.

use std::path::Path;

fn generate() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(dir).join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml is readable and valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen understands the crate");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen writes UTF-8")
}

#[test]
fn the_checked_in_header_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/hotline.h");
    let fresh = generate();
    if std::env::var_os("HOTLINE_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write ffi/include/hotline.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != fresh {
        let line = checked_in
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(fresh.lines().count()))
            + 1;
        panic!(
            "ffi/include/hotline.h differs from the code (first at line {line}).\n\
             Regenerate it with:\n    HOTLINE_UPDATE_HEADER=1 cargo test -p hotline-ffi --test header\n\
             and commit the result."
        );
    }
}

#[test]
fn the_header_declares_every_exported_function() {
    let header = generate();
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi.rs"))
        .expect("read src/ffi.rs");
    let exported: Vec<&str> = src
        .split("pub unsafe extern \"C\" fn ")
        .skip(1)
        .chain(src.split("pub extern \"C\" fn ").skip(1))
        .map(|rest| rest.split('(').next().unwrap_or(""))
        .collect();
    assert!(exported.len() >= 20, "found only {exported:?}");
    for name in exported {
        assert!(header.contains(&format!("{name}(")), "{name} is missing from the header");
    }
}

/// docs/c-api.md has a row for every exported function in its reference, with the
/// errors it returns (issue 12, point 8).
#[test]
fn p12_8_docs_c_api_lists_every_function_with_its_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(dir.join("src/ffi.rs")).expect("read src/ffi.rs");
    let doc = std::fs::read_to_string(dir.join("../docs/c-api.md")).expect("read docs/c-api.md");
    let exported: Vec<&str> = src
        .split("pub unsafe extern \"C\" fn ")
        .skip(1)
        .chain(src.split("pub extern \"C\" fn ").skip(1))
        .map(|rest| rest.split('(').next().unwrap_or(""))
        .collect();
    assert!(exported.len() >= 40, "found only {exported:?}");
    let mut missing = Vec::new();
    for name in &exported {
        let row = doc.lines().find(|l| l.starts_with(&format!("| `{name}`")));
        match row {
            // The row's last column names the errors (or says there are none).
            Some(r) if r.matches('|').count() >= 4 && r.trim_end().ends_with('|') => {}
            _ => missing.push(*name),
        }
    }
    assert!(missing.is_empty(), "docs/c-api.md has no reference row for {missing:?}");
}
