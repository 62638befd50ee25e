//! `<t:…>` timestamps: `<t:1630360800:R>`, `<t:2025-07-22T10:00:00.000+02:00>`, `<t:10:00+02:00>`.
//!
//! Dates are turned into Unix seconds like Rocket.Chat's JavaScript does: dates without an
//! offset are in the server's zone (taken as UTC here), out-of-range fields give `"0"`, and the
//! result is truncated to a 32-bit integer (`… | 0`). A time of day is taken on today's date.

use serde_json::json;

use super::ast::{Inline, string, with_fallback};
use super::chars::{is_ascii, is_digit};
use super::parser::{Parser, Res};

/// A parsed date of a timestamp: its source end and its Unix seconds.
type Date = (usize, String);

impl Parser<'_> {
    /// `<t:date:format>` or `<t:date>`; the fallback is the source range of the tag.
    pub(super) fn timestamp(&self, p: usize) -> Res<Inline> {
        let q = self.lit(p, "<t:")?;
        let (end, seconds) = self.timestamp_date(q)?;
        let (format, r) = self.timestamp_format(end)?;
        let node = json!({"type": "TIMESTAMP", "value": {"timestamp": seconds, "format": format}});
        Some((Inline::node(with_fallback(node, p, r)), r))
    }

    /// `\<t:…>`: the tag as text, without the backslash.
    pub(super) fn escaped_timestamp(&self, p: usize) -> Res<Inline> {
        let q = self.lit(p, "\\")?;
        let r = self.lit(q, "<t:")?;
        let (end, _) = self.timestamp_date(r)?;
        let (_, s) = self.timestamp_format(end)?;
        Some((Inline::plain(self.slice(q, s)), s))
    }

    /// `:F>` or `>`, with `t` as the default format.
    fn timestamp_format(&self, p: usize) -> Option<(String, usize)> {
        if let Some(q) = self.lit(p, ":")
            && let Some(r) = self.one(q, |c| is_ascii(c, b"tTdDfFR"))
            && let Some(s) = self.lit(r, ">")
        {
            return Some((string(self.slice(q, r)), s));
        }
        Some(("t".to_string(), self.lit(p, ">")?))
    }

    /// `Unixtime / ISO8601Date / ISO8601DateWithoutMilliseconds / Timestamp`
    fn timestamp_date(&self, p: usize) -> Option<Date> {
        if let Some(q) = self.digits(p, 10) {
            return Some((q, string(self.slice(p, q))));
        }
        self.iso_date(p, true)
            .or_else(|| self.iso_date(p, false))
            .or_else(|| self.time_of_day(p))
    }

    /// `YYYY-MM-DDTHH:MM:SS(.mmm)?(±HH:MM)?`
    fn iso_date(&self, p: usize, with_millis: bool) -> Option<Date> {
        let mut fields = [0i64; 7];
        let mut q = p;
        let layout: [(usize, &str); 6] =
            [(4, "-"), (2, "-"), (2, "T"), (2, ":"), (2, ":"), (2, "")];
        for (i, (width, sep)) in layout.into_iter().enumerate() {
            let r = self.digits(q, width)?;
            fields[i] = number(self.slice(q, r));
            q = if sep.is_empty() { r } else { self.lit(r, sep)? };
        }
        if with_millis {
            let r = self.lit(q, ".")?;
            let s = self.digits(r, 3)?;
            fields[6] = number(self.slice(r, s));
            q = s;
        }
        let (offset, q) = self.timezone(q);
        let [year, month, day, hour, minute, second, millis] = fields;
        let seconds = unix_seconds(year, month, day, hour, minute, second, millis, offset);
        Some((q, seconds))
    }

    /// `HH:MM(:SS)?(±HH:MM)?`: that time today.
    fn time_of_day(&self, p: usize) -> Option<Date> {
        let hour_end = self.digits(p, 2)?;
        let minute_start = self.lit(hour_end, ":")?;
        let minute_end = self.digits(minute_start, 2)?;
        let (second, q) = match self
            .lit(minute_end, ":")
            .and_then(|r| Some((r, self.digits(r, 2)?)))
        {
            Some((r, s)) => (number(self.slice(r, s)), s),
            None => (0, minute_end),
        };
        let (offset, q) = self.timezone(q);
        if offset.is_none() {
            // Rocket.Chat appends the missing offset as the text "null": an invalid date.
            return Some((q, "0".to_string()));
        }
        let today = chrono::Utc::now().date_naive();
        let (year, month, day) = {
            use chrono::Datelike;
            (
                i64::from(today.year()),
                i64::from(today.month()),
                i64::from(today.day()),
            )
        };
        let hour = number(self.slice(p, hour_end));
        let minute = number(self.slice(minute_start, minute_end));
        Some((
            q,
            unix_seconds(year, month, day, hour, minute, second, 0, offset),
        ))
    }

    /// `(+|-)HH:MM`: the offset with its validity, or `None` when absent.
    fn timezone(&self, p: usize) -> (Option<(i64, i64, i64)>, usize) {
        let parsed = (|| {
            let sign = if self.is(p, b'+') {
                1
            } else if self.is(p, b'-') {
                -1
            } else {
                return None;
            };
            let h = self.digits(p + 1, 2)?;
            let m = self.lit(h, ":")?;
            let e = self.digits(m, 2)?;
            Some((
                (sign, number(self.slice(p + 1, h)), number(self.slice(m, e))),
                e,
            ))
        })();
        match parsed {
            Some((offset, q)) => (Some(offset), q),
            None => (None, p),
        }
    }

    /// Exactly `n` digits.
    fn digits(&self, p: usize, n: usize) -> Option<usize> {
        self.repeat(p, n, n, is_digit)
    }
}

fn number(digits: &[u16]) -> i64 {
    digits
        .iter()
        .fold(0, |acc, &d| acc * 10 + i64::from(d - u16::from(b'0')))
}

/// `(new Date(iso).getTime() / 1000) | 0` as a string.
#[allow(clippy::too_many_arguments)]
fn unix_seconds(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
    offset: Option<(i64, i64, i64)>,
) -> String {
    let valid_time = (hour < 24 && minute < 60 && second < 60)
        || (hour == 24 && minute == 0 && second == 0 && millis == 0);
    let valid_offset = offset.is_none_or(|(_, h, m)| h < 24 && m < 60);
    // JavaScript accepts day 31 of any month and rolls over into the next one.
    let valid_date = (1..=12).contains(&month) && (1..=31).contains(&day);
    if !(valid_time && valid_offset && valid_date) {
        return "0".to_string();
    }
    let offset_minutes = offset.map_or(0, |(sign, h, m)| sign * (h * 60 + m));
    let days = days_from_civil(year, month, 1) + day - 1;
    let millis_total =
        (((days * 24 + hour) * 60 + minute - offset_minutes) * 60 + second) * 1000 + millis;
    // JavaScript dates stop at ±8.64e15 ms; beyond that the date is invalid.
    if millis_total.abs() > 8_640_000_000_000_000 {
        return "0".to_string();
    }
    let seconds = (millis_total as f64 / 1000.0).trunc() as i64;
    // `| 0`: ToInt32, i.e. wrap modulo 2^32.
    (seconds as i32).to_string()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
