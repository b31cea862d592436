//! `libhotline`: the C ABI client library for CRMs, over the CTI link protocol.
