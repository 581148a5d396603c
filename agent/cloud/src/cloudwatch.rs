//! CloudWatch: metric alarms.

use std::time::SystemTime;

/// The state of a CloudWatch alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AlarmState {
    /// The metric is within its threshold.
    Ok,
    /// The metric breached its threshold.
    Alarm,
    /// Not enough data to decide (a new alarm, or a metric that stopped).
    InsufficientData,
}

/// An alarm and its current state.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Alarm {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its state now.
    pub state: AlarmState,
    /// Why it is in that state, as CloudWatch words it.
    pub reason: String,
    /// When it entered that state.
    pub since: Option<SystemTime>,
}
