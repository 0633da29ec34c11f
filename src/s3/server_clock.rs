//! The store's clock, read from the `Date` header of a cheap request.
//!
//! SigV4 signatures carry the signing time; S3 refuses requests more than
//! 15 minutes off, so a wrong local clock shows up as a puzzling 403.

use super::Client;
use crate::error::Result;
use crate::store::PageRequest;

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

/// The number of days in `month` (1 to 12) of `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A field of ASCII digits as a number: no sign, no space.
fn digits(field: &str) -> Option<i64> {
    let all_digits = !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| field.parse().ok()).flatten()
}

/// Seconds since the Unix epoch of an HTTP `Date` in the one format HTTP
/// servers send (`Tue, 24 Nov 2026 01:28:06 GMT`); `None` for any other.
pub(crate) fn parse_http_date(date: &str) -> Option<i64> {
    let fields: Vec<&str> = date.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = fields[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let clock: Vec<i64> = time.split(':').map(digits).collect::<Option<_>>()?;
    let [hour, minute, second] = clock[..] else {
        return None;
    };
    let (day, year) = (digits(day)?, digits(year)?);
    let valid = (1..=days_in_month(year, month)).contains(&day)
        && (1970..=9999).contains(&year)
        && hour < 24
        && minute < 60
        && second <= 60;
    // A leap second counts as the second before it: Unix time has none.
    let second = second.min(59);
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Milliseconds since the Unix epoch of an ISO 8601 time in UTC as S3
/// listings give `LastModified` (`2026-11-24T01:28:06.123Z`, the fraction
/// optional); `None` for anything else.
pub(crate) fn parse_timestamp_ms(time: &str) -> Option<i64> {
    let rest = time.strip_suffix('Z')?;
    let (date, clock) = rest.split_once('T')?;
    let fields: Vec<i64> = date.split('-').map(digits).collect::<Option<_>>()?;
    let [year, month, day] = fields[..] else {
        return None;
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let clock: Vec<i64> = clock.split(':').map(digits).collect::<Option<_>>()?;
    let [hour, minute, second] = clock[..] else {
        return None;
    };
    let millis = match fraction {
        "" => 0,
        _ => {
            let padded = format!("{fraction:0<3}");
            digits(&padded[..3])?
        }
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (1970..=9999).contains(&year)
        && hour < 24
        && minute < 60
        && second <= 60
        && fraction.bytes().all(|b| b.is_ascii_digit());
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59);
    valid.then_some(seconds * 1000 + millis)
}

impl Client {
    /// The store's time in seconds since the Unix epoch, from the `Date`
    /// of a one-key listing of `prefix`. Fails like the listing does (bad
    /// credentials, missing bucket).
    pub fn server_time(&self, prefix: &str) -> Result<Option<i64>> {
        let page = PageRequest {
            prefix,
            start_after: None,
            continuation: None,
            max_keys: 1,
        };
        let (request, response) = self.call(|signer| signer.list_objects(&page))?;
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
    fn a_listing_time_parses_to_unix_milliseconds() {
        assert_eq!(
            parse_timestamp_ms("2026-11-24T01:28:06.123Z"),
            Some(1_795_483_686_123)
        );
        assert_eq!(
            parse_timestamp_ms("2026-11-24T01:28:06Z"),
            Some(1_795_483_686_000)
        );
        assert_eq!(
            parse_timestamp_ms("2026-11-24T01:28:06.5Z"),
            Some(1_795_483_686_500)
        );
        for bad in [
            "2026-11-24 01:28:06Z",
            "2026-13-24T01:28:06Z",
            "2026-11-24T01:28:06",
            "",
        ] {
            assert_eq!(parse_timestamp_ms(bad), None, "{bad}");
        }
    }

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

    /// jiff's RFC 2822 parser, an oracle: HTTP's date format is a subset
    /// of RFC 2822's. The day name is not checked, as s3wal does not.
    fn jiff(date: &str) -> Option<i64> {
        let parser = jiff::fmt::rfc2822::DateTimeParser::new().relaxed_weekday(true);
        parser.parse_timestamp(date).ok().map(|t| t.as_second())
    }

    #[test]
    fn http_dates_read_as_jiff_reads_them() {
        for date in [
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Tue, 24 Nov 2026 01:28:06 GMT",
            "Tue, 29 Feb 2028 12:00:00 GMT",
            "Sun, 31 Dec 2000 23:59:59 GMT",
            "Wed, 01 Mar 2100 00:00:00 GMT",
            "Sat, 01 Jan 2500 00:00:00 GMT",
            "Sat, 31 Dec 2016 23:59:60 GMT",
            "Mon, 24 Nov 2026 01:28:06 GMT",
            "Tue, 4 Nov 2026 01:28:06 GMT",
            "Tue,  24  Nov  2026  01:28:06  GMT",
        ] {
            assert!(jiff(date).is_some(), "{date}");
            assert_eq!(parse_http_date(date), jiff(date), "{date}");
        }
    }

    #[test]
    fn what_jiff_refuses_is_refused() {
        for date in [
            "Thu, 29 Feb 2029 00:00:00 GMT",
            "Thu, 31 Apr 2026 00:00:00 GMT",
            "Thu, 30 Feb 2028 00:00:00 GMT",
            "Thu, 29 Feb 2100 00:00:00 GMT",
            "Thu, 00 Jan 2026 00:00:00 GMT",
            "Thu, 32 Jan 2026 00:00:00 GMT",
            "Thu, 01 Jan 2026 24:00:00 GMT",
            "Thu, 01 Jan 2026 00:60:00 GMT",
            "Thu, 01 Jan 2026 00:00:61 GMT",
            "Thu, 01 Foo 2026 00:00:00 GMT",
            "Thu, 01 Jan 2026 0:0:0:0 GMT",
            "Thu, 01 Jan 2026 -1:00:00 GMT",
            "Thu, +1 Jan 2026 00:00:00 GMT",
            "",
            "yesterday",
        ] {
            assert_eq!(parse_http_date(date), None, "{date}");
            assert_eq!(jiff(date), None, "{date}");
        }
    }

    /// RFC 2822 allows more than the one format HTTP servers send (RFC
    /// 9110's IMF-fixdate); s3wal reads only that one.
    #[test]
    fn rfc_2822_forms_that_http_does_not_use_are_none() {
        for date in [
            "Thu, 01 Jan 2026 00:00 GMT",
            "01 Jan 2026 00:00:00 GMT",
            "Thu, 01 Jan 2026 00:00:00 +0000",
            "Thu, 01 Jan 2026 00:00:00 UT",
            "Thu, 01 Jan 2026 00:00:00 CET",
        ] {
            assert!(jiff(date).is_some(), "{date}");
            assert_eq!(parse_http_date(date), None, "{date}");
        }
    }
}
