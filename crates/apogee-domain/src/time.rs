//! Timestamps as Rocket.Chat's REST API writes them: ISO-8601 with milliseconds and `Z`.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with millisecond precision (the precision Rocket.Chat's clients see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_millis(Utc::now().timestamp_millis())
    }

    pub fn from_millis(ms: i64) -> Self {
        Self(Utc.timestamp_millis_opt(ms).single().unwrap_or_default())
    }

    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Parses ISO-8601/RFC 3339 (`2016-12-09T12:50:51.555Z`) or a bare date.
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::from_millis(t.timestamp_millis()));
        }
        let date = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        Some(Self::from_millis(
            date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
        ))
    }

    pub fn to_iso(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn plus_days(&self, days: i64) -> Self {
        Self::from_millis(self.millis() + days * 86_400_000)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_iso_with_millis() {
        let t = Timestamp::parse("2016-12-09T12:50:51.555Z").unwrap();
        assert_eq!(t.to_iso(), "2016-12-09T12:50:51.555Z");
        assert_eq!(Timestamp::from_millis(t.millis()), t);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2016-12-09T12:50:51.555Z\"");
    }

    #[test]
    fn parses_offsets_and_dates() {
        assert_eq!(
            Timestamp::parse("2016-12-09T13:50:51.555+01:00")
                .unwrap()
                .to_iso(),
            "2016-12-09T12:50:51.555Z"
        );
        assert_eq!(
            Timestamp::parse("2020-01-02").unwrap().to_iso(),
            "2020-01-02T00:00:00.000Z"
        );
        assert!(Timestamp::parse("yesterday").is_none());
    }
}
