//! The store's clock, read from the `Date` header of a cheap request.
//!
//! SigV4 signatures carry the signing time; S3 refuses requests more than
//! 15 minutes off, so a wrong local clock shows up as a puzzling 403.

use super::{Client, PageRequest};
use crate::error::Result;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds since the Unix epoch of an HTTP `Date` in the one format HTTP
/// servers send (`Tue, 24 Nov 2026 01:28:06 GMT`); `None` for any other.
pub(crate) fn parse_http_date(date: &str) -> Option<i64> {
    let fields: Vec<&str> = date.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = fields[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let clock: Vec<i64> = time
        .split(':')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let [hour, minute, second] = clock[..] else {
        return None;
    };
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let valid = (1..=31).contains(&day)
        && (1970..=9999).contains(&year)
        && hour < 24
        && minute < 60
        && second <= 60;
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

impl Client {
    /// The store's time in seconds since the Unix epoch, from the `Date`
    /// of a one-key listing of `prefix`. Fails like the listing does (bad
    /// credentials, missing bucket).
    pub fn server_time(&self, prefix: &str) -> Result<Option<i64>> {
        let request = self.signer.list_objects(&PageRequest {
            prefix,
            start_after: None,
            continuation: None,
            max_keys: 1,
        });
        let response = self.send(&request)?;
        if response.status != 200 {
            return Err(response.into_error(&request));
        }
        Ok(response.date.as_deref().and_then(parse_http_date))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_parses_to_unix_seconds() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:01 GMT"), Some(1));
        assert_eq!(
            parse_http_date("Tue, 24 Nov 2026 01:28:06 GMT"),
            Some(1_795_483_686)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
    }

    #[test]
    fn other_formats_are_none() {
        for date in [
            "yesterday",
            "",
            "Tue, 24 Nov 2026 01:28:06 CET",
            "Tue, 24 Foo 2026 01:28:06 GMT",
        ] {
            assert_eq!(parse_http_date(date), None, "{date}");
        }
    }
}
