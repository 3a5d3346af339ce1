//! Sizes (`512Ki`, `1Mi`) and durations (`30s`, `5m`, `1h30m`), with bounds.

use std::time::Duration;

use crate::error::{Check, ErrorKind};

/// The smallest volume: one page.
pub const MIN_VOLUME_BYTES: u64 = 4 * 1024;
/// The largest volume: secrets are small, and RAM is shared with the containers.
pub const MAX_VOLUME_BYTES: u64 = 64 * 1024 * 1024;
/// The most secret bytes one spec's volumes may hold together (their `sizeLimit`s).
pub const MAX_SPEC_BYTES: u64 = 64 * 1024 * 1024;
/// The most secret bytes the specs a host runs may hold together, unless its policy says
/// otherwise (`policy.maxSecretBytes`): ramlet keeps a copy of each in its own memory, and the
/// packaged units' `MemoryMax=` is sized for this.
pub const DEFAULT_HOST_BYTES: u64 = 256 * 1024 * 1024;
/// The size of a volume whose spec gives none.
pub const DEFAULT_VOLUME_BYTES: u64 = 1024 * 1024;

/// The shortest refresh interval: providers bill and throttle per call.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);
/// The longest refresh interval.
pub const MAX_REFRESH: Duration = Duration::from_hours(24);
/// The refresh interval of a store whose spec gives none.
pub const DEFAULT_REFRESH: Duration = Duration::from_mins(5);

/// Parses a volume size: a number of bytes, or a number with `Ki`, `Mi` or `Gi`, within
/// [`MIN_VOLUME_BYTES`] and [`MAX_VOLUME_BYTES`].
pub(crate) fn volume_size(text: &str) -> Check<u64> {
    let bytes = bytes(text)?;
    if !(MIN_VOLUME_BYTES..=MAX_VOLUME_BYTES).contains(&bytes) {
        return Err((
            ErrorKind::InvalidSize,
            format!("{text:?} is outside 4Ki to 64Mi"),
        ));
    }
    Ok(bytes)
}

/// Parses a size: a number of bytes, or a number with `Ki`, `Mi` or `Gi`.
pub(crate) fn bytes(text: &str) -> Check<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor = match unit {
        "" => Some(1),
        "Ki" => Some(1 << 10),
        "Mi" => Some(1 << 20),
        "Gi" => Some(1 << 30),
        _ => None,
    };
    let bytes = factor
        .zip(number.parse::<u64>().ok())
        .and_then(|(factor, n)| n.checked_mul(factor))
        .ok_or_else(|| {
            (
                ErrorKind::InvalidSize,
                format!("{text:?} is not a size such as `512Ki` or `1Mi`"),
            )
        })?;
    Ok(bytes)
}

/// Parses a duration made of `<number><unit>` parts with units `s`, `m` and `h` (`90s`, `1h30m`),
/// within `min` and `max`.
pub(crate) fn duration(text: &str, min: Duration, max: Duration) -> Check<Duration> {
    let bad = || {
        (
            ErrorKind::InvalidDuration,
            format!("{text:?} is not a duration such as `30s`, `5m` or `1h30m`"),
        )
    };
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, after) = rest.split_at(split);
        let unit = after.chars().next().ok_or_else(bad)?;
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        rest = &after[1..];
    }
    let value = Duration::from_secs(total);
    if value < min || value > max {
        return Err((
            ErrorKind::InvalidDuration,
            format!(
                "{text:?} is outside {}s to {}s",
                min.as_secs(),
                max.as_secs()
            ),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(volume_size("1Mi"), Ok(1 << 20));
        assert_eq!(volume_size("512Ki"), Ok(512 << 10));
        assert_eq!(volume_size("65536"), Ok(65536));
        for bad in [
            "1M",
            "1MB",
            "Mi",
            "",
            "-1Mi",
            "1.5Mi",
            "1 Mi",
            "1Ki",
            "65Mi",
            "1Gi",
            "99999999999999999999",
        ] {
            assert_eq!(
                volume_size(bad).unwrap_err().0,
                ErrorKind::InvalidSize,
                "{bad}"
            );
        }
    }

    #[test]
    fn durations() {
        let d = |t| duration(t, MIN_REFRESH, MAX_REFRESH);
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("5m"), Ok(Duration::from_mins(5)));
        assert_eq!(d("1h30m"), Ok(Duration::from_mins(90)));
        assert_eq!(d("24h"), Ok(MAX_REFRESH));
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "1.5h",
            "5s",
            "25h",
            "-1m",
            "1h 30m",
            "99999999999999999999h",
        ] {
            assert_eq!(d(bad).unwrap_err().0, ErrorKind::InvalidDuration, "{bad}");
        }
    }
}
