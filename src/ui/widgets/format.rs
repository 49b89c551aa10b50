//! Small text formatters shared by views: ages, countdowns, rates, bytes, bars, sparklines.

use crate::model::Timestamp;
use crate::ui::Glyphs;

/// Compact age: `45s`, `12m`, `3h05m`, `2d4h`.
pub fn age(now: Timestamp, then: Timestamp) -> String {
    duration((now - then).num_seconds().max(0))
}

/// Compact duration from seconds.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A short delay: `40ms`, `1.2s`, `12s`.
pub fn millis(ms: u64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms < 10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        ms => duration((ms / 1000) as i64),
    }
}

/// Countdown `mm:ss` (or `h:mm:ss` past an hour).
pub fn countdown(secs: i64) -> String {
    let s = secs.max(0);
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// A rate or count with a k/M suffix: `840`, `1.2k`, `3.4M`.
pub fn count(v: f64) -> String {
    match v.abs() {
        x if x >= 1e6 => format!("{:.1}M", v / 1e6),
        x if x >= 1e4 => format!("{:.0}k", v / 1e3),
        x if x >= 1e3 => format!("{:.1}k", v / 1e3),
        x if x >= 10.0 || v.fract() == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.1}"),
    }
}

/// Bytes in binary units: `512 MiB`, `5.1 GiB`.
pub fn bytes(v: f64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    if v >= GIB {
        format!("{:.1} GiB", v / GIB)
    } else {
        format!("{:.0} MiB", v / MIB)
    }
}

/// Seconds as milliseconds: `0.412` -> `412ms`, `1.8` -> `1.80s`.
pub fn latency(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.2}s")
    } else {
        format!("{:.0}ms", secs * 1000.0)
    }
}

/// A text progress bar of `width` cells.
pub fn bar(fraction: f64, width: usize, glyphs: &Glyphs) -> String {
    let filled = ((fraction.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    let mut s = String::with_capacity(width * 3);
    for _ in 0..filled {
        s.push_str(glyphs.bar_full);
    }
    for _ in filled..width {
        s.push_str(glyphs.bar_empty);
    }
    s
}

/// A one-line sparkline of the values (oldest first), scaled from zero to their maximum so
/// that small noise on a steady rate looks steady; missing points are blank.
pub fn sparkline(values: &[Option<f32>], glyphs: &Glyphs) -> String {
    let hi = values.iter().flatten().fold(0.0_f32, |hi, &v| hi.max(v));
    sparkline_to(values, hi, glyphs)
}

/// A sparkline scaled from zero to `hi` (a limit such as etcd's quota, so the height reads
/// as "how close to the limit").
pub fn sparkline_to(values: &[Option<f32>], hi: f32, glyphs: &Glyphs) -> String {
    let lo = 0.0_f32;
    let levels = glyphs.spark.len();
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(v) if hi > lo => {
                let v = v.max(lo);
                let level = ((v - lo) / (hi - lo) * (levels - 1) as f32).round() as usize;
                glyphs.spark[level.min(levels - 1)]
            }
            Some(_) => glyphs.spark[0],
        })
        .collect()
}

/// Truncates to `width` display cells, ending with an ellipsis when cut.
pub fn truncate(s: &str, width: usize, glyphs: &Glyphs) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let keep = width.saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(glyphs.ellipsis);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(12 * 60 + 5), "12m");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3h05m");
        assert_eq!(duration(2 * 86_400 + 4 * 3600), "2d4h");
        assert_eq!(countdown(754), "12:34");
        assert_eq!(countdown(3723), "1:02:03");
        assert_eq!(countdown(-5), "00:00");
    }

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(count(840.0), "840");
        assert_eq!(count(1234.0), "1.2k");
        assert_eq!(count(45_000.0), "45k");
        assert_eq!(count(3_400_000.0), "3.4M");
        assert_eq!(count(2.25), "2.2");
        assert_eq!(count(3.0), "3");
        assert_eq!(count(0.0), "0");
        assert_eq!(bytes(5.5 * 1024.0 * 1024.0 * 1024.0), "5.5 GiB");
        assert_eq!(latency(0.412), "412ms");
        assert_eq!(latency(1.8), "1.80s");
    }

    #[test]
    fn bars_and_sparklines_fill_their_width() {
        let g = Glyphs::unicode();
        assert_eq!(bar(0.5, 4, &g), "██░░");
        assert_eq!(bar(2.0, 3, &g), "███");
        let a = Glyphs::ascii();
        assert_eq!(bar(0.25, 4, &a), "#---");
        assert_eq!(sparkline(&[Some(0.0), None, Some(10.0)], &g), "▁ █");
        // Scaled from zero: a steady rate with a little noise stays near the top.
        assert_eq!(sparkline(&[Some(95.0), Some(100.0)], &g), "██");
        assert_eq!(sparkline(&[Some(0.0), Some(0.0)], &a), "__");
        assert_eq!(truncate("prod-euw1-payments", 8, &a), "prod-eu~");
    }
}
