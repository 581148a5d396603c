//! Simulated Amazon CloudWatch metric alarms, the signals a health gate reads.

use serde::Serialize;

use super::{Cloud, Regional, Target, aws_error, ms_time};
use crate::scenario::CloudWatchSeed;
use drover_cloud::CloudError;
use drover_cloud::cloudwatch::{Alarm, AlarmState};

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct CloudWatch {
    pub(crate) alarms: Regional<Alarm>,
    /// Alarms that fire at a given simulated time (ms).
    #[serde(skip)]
    fires_at: Vec<(String, String, i64)>,
}

impl CloudWatch {
    pub(crate) fn load(&mut self, seed: &CloudWatchSeed, now: i64) -> Result<(), String> {
        for a in &seed.alarms {
            let state = match a.state.as_str() {
                "OK" => AlarmState::Ok,
                "ALARM" => AlarmState::Alarm,
                "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
                other => return Err(format!("cloudwatch alarm {}: state must be OK, ALARM or INSUFFICIENT_DATA, not '{other}'", a.name)),
            };
            let alarm = Alarm {
                name: a.name.clone(),
                arn: format!("arn:aws:cloudwatch:{}:{}:alarm:{}", a.region, super::ACCOUNT, a.name),
                state,
                reason: a.reason.clone(),
                since: Some(ms_time(now)),
            };
            self.alarms.entry(a.region.clone()).or_default().insert(a.name.clone(), alarm);
            if let Some(after) = a.alarm_after_seconds {
                self.fires_at.push((a.region.clone(), a.name.clone(), now + (after as i64) * 1000));
            }
        }
        Ok(())
    }
}

impl Cloud {
    /// `cloudwatch.describe-alarms`, as the agent's capability behaves, on the simulated cloud.
    pub fn cloudwatch_describe_alarms(&mut self, region: &str, names: &[String]) -> Result<Vec<Alarm>, CloudError> {
        let resource = names.join(",");
        let t = Target { service: "cloudwatch", operation: "describe-alarms", api: "DescribeAlarms", region, resource: &resource };
        let due: Vec<(String, String, i64)> = self.cloudwatch.fires_at.iter().filter(|f| f.2 <= self.now_ms).cloned().collect();
        self.cloudwatch.fires_at.retain(|f| f.2 > self.now_ms);
        for (r, n, at) in due {
            if let Some(a) = self.cloudwatch.alarms.get_mut(&r).and_then(|m| m.get_mut(&n)) {
                a.state = AlarmState::Alarm;
                a.reason = "Threshold Crossed (simulated incident)".into();
                a.since = Some(ms_time(at));
            }
        }
        self.call(t, |c, t| {
            let mut found = Vec::new();
            for n in names {
                let a = c
                    .cloudwatch
                    .alarms
                    .get(region)
                    .and_then(|m| m.get(n))
                    .ok_or_else(|| aws_error(t, "alarm-not-found", &format!("no metric alarm named {n} in {region}"), false))?;
                found.push(a.clone());
            }
            Ok((found, false))
        })
    }

    /// Sets an alarm's state, as a test does to simulate an incident.
    pub fn set_alarm(&mut self, region: &str, name: &str, state: AlarmState, reason: &str) -> bool {
        let now = ms_time(self.now_ms);
        match self.cloudwatch.alarms.get_mut(region).and_then(|m| m.get_mut(name)) {
            Some(a) => {
                a.state = state;
                a.reason = reason.to_string();
                a.since = Some(now);
                true
            }
            None => false,
        }
    }
}
