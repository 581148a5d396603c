//! The error a step or a run ends with.

use std::fmt;

use crate::bindings::drover::runbook::types::Error as WitError;

/// An error with a code, a message for a human, whether retrying may help,
/// and the resource it concerns.
///
/// Any `std::error::Error` converts into it with `?` (as a terminal error with
/// code `error`); use [`Error::retryable`] for errors worth retrying, and
/// [`Context::context`] to say what was being done.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: String,
    message: String,
    retryable: bool,
    resource: Option<String>,
}

impl Error {
    /// A terminal error: retrying will not help (bad input, missing resource).
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error { code: code.into(), message: message.into(), retryable: false, resource: None }
    }

    /// A retryable error: another attempt may succeed (throttling, timeouts).
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error { retryable: true, ..Error::new(code, message) }
    }

    /// Names the resource the error concerns (an ARN, an id, a record name).
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The machine-readable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The resource concerned, if any.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    pub(crate) fn to_wit(&self) -> WitError {
        WitError { code: self.code.clone(), message: self.message.clone(), retryable: self.retryable, resource: self.resource.clone() }
    }

    pub(crate) fn from_wit(e: WitError) -> Self {
        Error { code: e.code, message: e.message, retryable: e.retryable, resource: e.resource }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(r) = &self.resource {
            write!(f, " (resource: {r})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Any standard error becomes a terminal `Error` with code `error` and its
/// full chain of causes as the message. (`Error` itself deliberately does not
/// implement `std::error::Error`, like `anyhow::Error`, so this can exist.)
impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Error::new("error", message)
    }
}

/// Adds context to the error of a `Result` or to a missing `Option` value.
pub trait Context<T> {
    /// On error, prefix the message with `context`; on `None`, a terminal
    /// `not-found` error saying `context`.
    fn context(self, context: impl fmt::Display) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|e| e.into().context(context))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl fmt::Display) -> Result<T, Error> {
        self.ok_or_else(|| Error::new("not-found", context.to_string()))
    }
}

/// Returns early with a terminal error: `bail!("code", "message {}", x)`.
#[macro_export]
macro_rules! bail {
    ($code:expr, $($fmt:tt)+) => {
        return ::core::result::Result::Err($crate::Error::new($code, ::std::format!($($fmt)+)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_convert_with_their_causes() {
        let e: Error = "x".parse::<u32>().unwrap_err().into();
        assert_eq!(e.code(), "error");
        assert!(e.message().contains("invalid digit"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn context_prefixes_and_option_is_not_found() {
        let r: Result<(), Error> = Err(Error::retryable("throttled", "slow down"));
        let e = r.context("promoting orders-db").unwrap_err();
        assert_eq!(e.message(), "promoting orders-db: slow down");
        assert!(e.is_retryable());
        let e = None::<u8>.context("replica orders-db-replica").unwrap_err();
        assert_eq!(e.code(), "not-found");
        assert_eq!(e.to_string(), "not-found: replica orders-db-replica");
    }

    #[test]
    fn round_trips_through_wit() {
        let e = Error::new("c", "m").with_resource("arn:x");
        assert_eq!(Error::from_wit(e.to_wit()), e);
    }
}
