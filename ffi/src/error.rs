//! Numbered result codes (`hotline_result`) and their messages.
//!
//! Codes come in ranges so that a C caller can tell the kind of failure at a glance:
//! 1xx its own arguments, 2xx the connection, 3xx the server refused the request (the
//! CSTA error values of the link protocol), 9xx a bug inside the library.

use std::fmt;

/// The result of every `hotline_*` function that can fail.
///
/// What the caller should do: 1xx fix the call; 2xx reconnect (or retry after a
/// timeout); 3xx the request was understood and refused, see `hotline_last_error` for
/// the server's text; 9xx report a bug.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum hotline_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullParameter = 100,
    /// The connection handle is not (or no longer) one the library handed out: it was
    /// freed, or never came from `hotline_connect`.
    InvalidHandle = 101,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 102,
    /// An argument is out of range (an unknown enum value, an empty name, a zero call id).
    InvalidArgument = 103,
    /// The output buffer was too small; it holds a truncated, NUL-terminated text.
    BufferTooSmall = 104,
    /// The host name did not resolve or no address accepted the connection.
    ConnectFailed = 200,
    /// The connection is closed (by `hotline_disconnect`, by the server, or by a network
    /// error); free the handle and connect again.
    Closed = 201,
    /// No reply arrived within the request timeout (`hotline_set_timeout`).
    Timeout = 202,
    /// Writing the request to the socket failed; the connection is closed.
    Io = 203,
    /// The server's reply could not be understood.
    Protocol = 204,
    /// Log in first: the server accepts only Login and Ping before, and an omitted
    /// agent or device defaults to the logged-in one.
    NotLoggedIn = 205,
    /// The server refused with an error code this library does not know; see
    /// `hotline_last_error`.
    ServerError = 300,
    /// CSTA: the call named does not exist.
    InvalidCallId = 301,
    /// CSTA: the device named does not exist.
    InvalidDeviceId = 302,
    /// CSTA: the agent named does not exist.
    InvalidAgentId = 303,
    /// CSTA: the connection is not in a state for this service.
    InvalidConnectionState = 304,
    /// CSTA: the device is not in a state for this service.
    InvalidDeviceState = 305,
    /// CSTA: the agent is not in a state for this request.
    InvalidAgentState = 306,
    /// The user or password is wrong.
    InvalidPassword = 307,
    /// The device cannot do this (an analog phone cannot go off hook remotely).
    ServiceNotSupported = 308,
    /// No free trunk channel or conference bridge; try again later.
    ResourceBusy = 309,
    /// The logged-in user may not do this (an agent controls only its own calls).
    PrivilegeViolation = 310,
    /// An outbound call now would leave a queue without the agents it keeps for inbound.
    ReservedForInbound = 311,
    /// The server could not parse the request (a bug in this library or a version skew).
    MalformedRequest = 312,
    /// Too many requests on this connection; slow down and retry.
    RateLimited = 313,
    /// The engine's input queue is full; retry shortly.
    EngineBusy = 314,
    /// MonitorStop of a monitor id this connection does not have.
    UnknownMonitor = 315,
    /// A panic inside the library was caught at the boundary; the handle may be unusable.
    Panic = 900,
}

/// Every code, in numeric order.
const ALL: [hotline_result; 29] = [
    hotline_result::Ok,
    hotline_result::NullParameter,
    hotline_result::InvalidHandle,
    hotline_result::InvalidUtf8,
    hotline_result::InvalidArgument,
    hotline_result::BufferTooSmall,
    hotline_result::ConnectFailed,
    hotline_result::Closed,
    hotline_result::Timeout,
    hotline_result::Io,
    hotline_result::Protocol,
    hotline_result::NotLoggedIn,
    hotline_result::ServerError,
    hotline_result::InvalidCallId,
    hotline_result::InvalidDeviceId,
    hotline_result::InvalidAgentId,
    hotline_result::InvalidConnectionState,
    hotline_result::InvalidDeviceState,
    hotline_result::InvalidAgentState,
    hotline_result::InvalidPassword,
    hotline_result::ServiceNotSupported,
    hotline_result::ResourceBusy,
    hotline_result::PrivilegeViolation,
    hotline_result::ReservedForInbound,
    hotline_result::MalformedRequest,
    hotline_result::RateLimited,
    hotline_result::EngineBusy,
    hotline_result::UnknownMonitor,
    hotline_result::Panic,
];

impl hotline_result {
    /// Every code, in numeric order (for the message table and tests).
    pub fn all() -> &'static [hotline_result] {
        &ALL
    }

    /// The code for a number received from C, if it is one.
    pub fn from_u32(n: u32) -> Option<hotline_result> {
        ALL.iter().copied().find(|r| *r as u32 == n)
    }

    /// The code for an error code in a server reply (`{"error":{"code":...}}`).
    pub fn from_server_code(code: &str) -> hotline_result {
        // The codes of docs/protocol.md, "Replies".
        match code {
            "malformed" => hotline_result::MalformedRequest,
            "not_logged_in" => hotline_result::NotLoggedIn,
            "invalid_password" => hotline_result::InvalidPassword,
            "privilege_violation" => hotline_result::PrivilegeViolation,
            "rate_limited" => hotline_result::RateLimited,
            "engine_busy" => hotline_result::EngineBusy,
            "unknown_monitor" => hotline_result::UnknownMonitor,
            "invalid_call_id" => hotline_result::InvalidCallId,
            "invalid_device_id" => hotline_result::InvalidDeviceId,
            "invalid_agent_id" => hotline_result::InvalidAgentId,
            "invalid_connection_state" => hotline_result::InvalidConnectionState,
            "invalid_device_state" => hotline_result::InvalidDeviceState,
            "invalid_agent_state" => hotline_result::InvalidAgentState,
            "service_not_supported" => hotline_result::ServiceNotSupported,
            "resource_busy" => hotline_result::ResourceBusy,
            "reserved_for_inbound" => hotline_result::ReservedForInbound,
            _ => hotline_result::ServerError,
        }
    }

    /// A sentence for the code, without a trailing newline.
    pub fn message(self) -> &'static str {
        match self {
            hotline_result::Ok => "ok",
            hotline_result::NullParameter => "a required pointer argument was NULL",
            hotline_result::InvalidHandle => {
                "the connection handle is not valid (freed, or not from hotline_connect)"
            }
            hotline_result::InvalidUtf8 => "a string argument is not valid UTF-8",
            hotline_result::InvalidArgument => "an argument is out of range",
            hotline_result::BufferTooSmall => "the output buffer is too small (text truncated)",
            hotline_result::ConnectFailed => "could not connect to the CTI link server",
            hotline_result::Closed => "the connection is closed",
            hotline_result::Timeout => "no reply from the server within the request timeout",
            hotline_result::Io => "writing to the connection failed; it is closed",
            hotline_result::Protocol => "the server's reply could not be understood",
            hotline_result::NotLoggedIn => "log in first",
            hotline_result::ServerError => "the server refused the request",
            hotline_result::InvalidCallId => "no such call",
            hotline_result::InvalidDeviceId => "no such device",
            hotline_result::InvalidAgentId => "no such agent",
            hotline_result::InvalidConnectionState => "the connection is not in a state for this request",
            hotline_result::InvalidDeviceState => "the device is not in a state for this request",
            hotline_result::InvalidAgentState => "the agent is not in a state for this request",
            hotline_result::InvalidPassword => "wrong user or password",
            hotline_result::ServiceNotSupported => "the device does not support this service",
            hotline_result::ResourceBusy => "no resource free (trunk channel, conference bridge)",
            hotline_result::PrivilegeViolation => "the logged-in user may not do this",
            hotline_result::ReservedForInbound => "the queue's agents are reserved for inbound calls",
            hotline_result::MalformedRequest => "the server could not parse the request",
            hotline_result::RateLimited => "too many requests on this connection; retry later",
            hotline_result::EngineBusy => "the engine is busy; retry shortly",
            hotline_result::UnknownMonitor => "no such monitor on this connection",
            hotline_result::Panic => "internal error in libhotline (a caught panic)",
        }
    }
}

impl fmt::Display for hotline_result {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), *self as u32)
    }
}

/// A failure of the Rust client: a code for C and the text behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: hotline_result,
    pub message: String,
}

impl Error {
    pub fn new(code: hotline_result, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.message(), self.message)
    }
}

impl std::error::Error for Error {}
