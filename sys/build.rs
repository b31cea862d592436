//! Links libpri when the `libpri` feature is on, and with the `bindgen` feature
//! regenerates the bindings (each interface's generator is in `build/`).

#[cfg(feature = "bindgen")]
#[path = "build/dahdi.rs"]
mod dahdi;
#[cfg(feature = "bindgen")]
#[path = "build/libpri.rs"]
mod libpri;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HOTLINE_LIBPRI_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_LIBPRI").is_some() {
        if let Some(dir) = std::env::var_os("HOTLINE_LIBPRI_LIB_DIR") {
            println!("cargo:rustc-link-search=native={}", std::path::Path::new(&dir).display());
        }
        println!("cargo:rustc-link-lib=pri");
    }
    #[cfg(feature = "bindgen")]
    {
        if std::env::var_os("CARGO_FEATURE_DAHDI").is_some() {
            dahdi::generate();
        }
        if std::env::var_os("CARGO_FEATURE_LIBPRI").is_some() {
            libpri::generate();
        }
    }
}
