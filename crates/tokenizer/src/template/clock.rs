//! `strftime_now(fmt)` for templates (Llama 3.x writes today's date into its system prompt).
//!
//! A small `strftime` over UTC civil time, so the crate needs no date library. It covers
//! the directives chat templates use; any other directive is an error rather than a
//! silently wrong date.

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A UTC calendar time.
#[derive(Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Monday.
    weekday: u32,
    /// 1-based day of the year.
    yday: u32,
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn civil(unix_secs: i64) -> Civil {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    const CUMULATIVE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap_day = u32::from(month > 2 && is_leap(year));
    Civil {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        // 1970-01-01 was a Thursday (index 3).
        weekday: (days + 3).rem_euclid(7) as u32,
        yday: CUMULATIVE[(month - 1) as usize] + day + leap_day,
    }
}

/// Formats `unix_secs` (UTC) with a C/Python `strftime` format string. Supported:
/// `%a %A %b %B %d %e %H %I %j %m %M %p %S %y %Y %Z %z %%`. Returns the offending
/// directive on anything else.
pub(crate) fn strftime(fmt: &str, unix_secs: i64) -> Result<String, String> {
    let t = civil(unix_secs);
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(d) = chars.next() else {
            return Err("%".into());
        };
        let month = MONTHS[(t.month - 1) as usize];
        let weekday = WEEKDAYS[t.weekday as usize];
        let hour12 = if t.hour.is_multiple_of(12) {
            12
        } else {
            t.hour % 12
        };
        let piece = match d {
            'a' => weekday[..3].to_string(),
            'A' => weekday.to_string(),
            'b' => month[..3].to_string(),
            'B' => month.to_string(),
            'd' => format!("{:02}", t.day),
            'e' => format!("{:2}", t.day),
            'H' => format!("{:02}", t.hour),
            'I' => format!("{hour12:02}"),
            'j' => format!("{:03}", t.yday),
            'm' => format!("{:02}", t.month),
            'M' => format!("{:02}", t.minute),
            'p' => (if t.hour < 12 { "AM" } else { "PM" }).to_string(),
            'S' => format!("{:02}", t.second),
            'y' => format!("{:02}", t.year.rem_euclid(100)),
            'Y' => t.year.to_string(),
            'Z' => "UTC".to_string(),
            'z' => "+0000".to_string(),
            '%' => "%".to_string(),
            other => return Err(format!("%{other}")),
        };
        out.push_str(&piece);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known instants format as Python's `time.strftime` does in UTC.
    #[test]
    fn formats_known_dates() {
        // 2024-07-26 14:05:09 UTC, a Friday.
        let t = 1_722_002_709;
        assert_eq!(strftime("%d %b %Y", t).as_deref(), Ok("26 Jul 2024"));
        assert_eq!(
            strftime("%A %B %e, %y %H:%M:%S %p %I %j %% %Z", t).as_deref(),
            Ok("Friday July 26, 24 14:05:09 PM 02 208 % UTC")
        );
        // Leap day and the epoch.
        assert_eq!(
            strftime("%Y-%m-%d %a %j", 1_709_164_800).as_deref(),
            Ok("2024-02-29 Thu 060")
        );
        assert_eq!(strftime("%Y-%m-%d %a", 0).as_deref(), Ok("1970-01-01 Thu"));
        assert_eq!(strftime("%Y-%m-%d", -86_400).as_deref(), Ok("1969-12-31"));
    }

    /// Unsupported directives are reported, not guessed.
    #[test]
    fn rejects_unknown_directive() {
        assert_eq!(strftime("%Q", 0), Err("%Q".to_string()));
        assert_eq!(strftime("50%", 0), Err("%".to_string()));
    }
}
