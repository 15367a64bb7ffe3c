//! The one error type of edgebus: every failure a caller can see, each with a stable code.
//!
//! Codes are part of the public contract (JavaScript receives them as `error.code`), so they never
//! change meaning. Messages name the problem and the offending value.

use crate::topic::{Subject, TopicError};
use std::fmt;

/// Stable error codes, shared by the Rust API and the JavaScript package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A topic given to `publish` breaks the topic rules.
    InvalidTopic,
    /// A pattern given to `subscribe` breaks the pattern rules.
    InvalidPattern,
    /// An option is unknown, of the wrong type, or out of range.
    InvalidOption,
    /// An argument other than an option is of the wrong type (a handler that is not a function…).
    InvalidArgument,
    /// A subscription's queue is full and its overflow policy is `reject` (or `wait` for a
    /// synchronous publish).
    QueueFull,
    /// The bus (or batcher) is closed.
    Closed,
    /// A message is larger than a batch's `maxBytes`.
    MessageTooLarge,
    /// A handler did not settle within its subscription's `timeoutMs`.
    HandlerTimeout,
    /// A handler failed (threw, rejected or returned an error).
    HandlerFailed,
    /// A payload cannot be copied where it has to go (structured clone).
    DataClone,
    /// A request found no subscription that could answer it.
    NoResponders,
    /// A request got no answer within its `timeoutMs`.
    Timeout,
    /// A wait was given up through its `AbortSignal` (or by its caller).
    Aborted,
}

impl ErrorCode {
    /// The code as JavaScript sees it, e.g. `"INVALID_TOPIC"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidTopic => "INVALID_TOPIC",
            ErrorCode::InvalidPattern => "INVALID_PATTERN",
            ErrorCode::InvalidOption => "INVALID_OPTION",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::QueueFull => "QUEUE_FULL",
            ErrorCode::Closed => "CLOSED",
            ErrorCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorCode::HandlerTimeout => "HANDLER_TIMEOUT",
            ErrorCode::HandlerFailed => "HANDLER_FAILED",
            ErrorCode::DataClone => "DATA_CLONE",
            ErrorCode::NoResponders => "NO_RESPONDERS",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Aborted => "ABORTED",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An edgebus error: a stable [`ErrorCode`] and a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
}

impl Error {
    /// An error with `code` and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// `INVALID_OPTION` naming the option and what is wrong with it.
    pub fn invalid_option(name: &str, problem: impl fmt::Display) -> Self {
        Error::new(
            ErrorCode::InvalidOption,
            format!("option `{name}` {problem}"),
        )
    }

    /// `CLOSED`, naming what is closed.
    pub fn closed(what: &str) -> Self {
        Error::new(ErrorCode::Closed, format!("{what} is closed"))
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message, without the code.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<TopicError> for Error {
    fn from(e: TopicError) -> Self {
        let code = match e.subject {
            Subject::Topic => ErrorCode::InvalidTopic,
            Subject::Pattern => ErrorCode::InvalidPattern,
        };
        Error::new(code, e.to_string())
    }
}

/// Shorthand for results whose error is an edgebus [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
