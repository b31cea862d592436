//! Raw FFI for the telephony interfaces Hotline drives, and nothing else: bindgen output
//! (checked in, regenerated with the `bindgen` feature), ioctl request numbers, and our
//! own declarations of vendor SDK functions (their headers are proprietary).
//!
//! Each interface is behind its own feature; safe types live in `hotline-drivers`.
//!
//! | feature | module | what |
//! | --- | --- | --- |
//! | `dahdi` | [`dahdi`] | DAHDI's userspace API (`dahdi/user.h`) |
//! | `libpri` | `libpri` | libpri, ISDN PRI (Q.921/Q.931) |
//! | `synway` | `synway` | Synway-style `Ssm…` SDK declarations |
//! | `dialogic` | `dialogic` | Dialogic-style `gc_…`, `dx_…`, `sr_…` declarations |

#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

#[cfg(feature = "dahdi")]
pub mod dahdi;
#[cfg(feature = "dialogic")]
pub mod dialogic;
#[cfg(feature = "libpri")]
pub mod libpri;
#[cfg(feature = "synway")]
pub mod synway;
