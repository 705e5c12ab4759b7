//! Timestamps: UTC milliseconds since the epoch, spelled RFC 3339 with `Z` and exactly three
//! fractional digits (docs/CONTRACT.md §4). Stored as integers in both databases so that comparisons,
//! sorting and cursors behave identically everywhere.

use std::fmt;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// A point in time with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Range of milliseconds a timestamp may carry (years 0001 to 9999), so every value prints as
/// four-digit-year RFC 3339.
const MIN_MS: i64 = -62_135_596_800_000;
const MAX_MS: i64 = 253_402_300_799_999;

impl Timestamp {
    pub fn now() -> Self {
        let ns = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp((ns / 1_000_000) as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 with any offset; sub-millisecond digits are truncated.
    pub fn parse(s: &str) -> Option<Self> {
        let dt = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
        let ms = (dt.unix_timestamp_nanos() / 1_000_000) as i64;
        (MIN_MS..=MAX_MS).contains(&ms).then_some(Timestamp(ms))
    }

    /// `2026-11-23T10:15:30.123Z`. Written digit by digit into a fixed buffer: every record
    /// rendered carries several timestamps, and `format!` was a twentieth of a v2 page's CPU.
    pub fn to_rfc3339(self) -> String {
        let dt =
            OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        // Years outside 0000-9999 cannot be stored (see MIN_MS / MAX_MS).
        put(0, 4, dt.year().clamp(0, 9999) as u32);
        put(5, 2, u8::from(dt.month()).into());
        put(8, 2, dt.day().into());
        put(11, 2, dt.hour().into());
        put(14, 2, dt.minute().into());
        put(17, 2, dt.second().into());
        put(20, 3, dt.millisecond().into());
        out.iter().map(|&b| b as char).collect()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn offsets_are_converted_to_utc_millis() {
        let t = Timestamp::parse("2026-11-23T11:15:30.123456+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T10:15:30.123Z");
        assert_eq!(Timestamp::parse("2026-11-23T10:15:30Z").unwrap().to_rfc3339(), "2026-11-23T10:15:30.000Z");
        assert_eq!(Timestamp::parse("yesterday"), None);
        assert_eq!(Timestamp::parse("1960-01-01T00:00:00Z").unwrap().to_rfc3339(), "1960-01-01T00:00:00.000Z");
    }

    proptest! {
        #[test]
        fn printing_then_parsing_round_trips(ms in MIN_MS..MAX_MS) {
            let t = Timestamp(ms);
            prop_assert_eq!(Timestamp::parse(&t.to_rfc3339()), Some(t));
        }

        #[test]
        fn printing_matches_the_formatted_spelling(ms in MIN_MS..MAX_MS) {
            let dt = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap();
            let formatted = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                dt.year(), u8::from(dt.month()), dt.day(), dt.hour(), dt.minute(), dt.second(), dt.millisecond()
            );
            prop_assert_eq!(Timestamp(ms).to_rfc3339(), formatted);
        }
    }
}
