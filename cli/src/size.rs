//! Sizes as people type them (`4G`, `512M`, `4096`) and as they read them.

use gettextrs::gettext;

/// `--memory SIZE` in MiB: a number of MiB, or a number with a binary unit
/// (`M`/`MiB`, `G`/`GiB`, `T`/`TiB`, any case; `1.5G` is 1536). A whole,
/// positive number of MiB, as libvirt's memory is set in MiB here.
pub fn parse_memory_mib(text: &str) -> Result<u64, String> {
    let bad = || {
        gettext("“{size}” is not a size: write e.g. 4G, 512M or 4096 (MiB)").replace("{size}", text)
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mib" => 1,
        "g" | "gib" => 1 << 10,
        "t" | "tib" => 1 << 20,
        _ => return Err(bad()),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    // Exact decimal fractions of the unit, no floating point: 1.5G = 1536 MiB.
    let frac_value = if frac.is_empty() {
        0
    } else {
        let digits: u64 = frac.parse().map_err(|_| bad())?;
        let scale = 10u64.checked_pow(frac.len() as u32).ok_or_else(bad)?;
        let scaled = digits.checked_mul(factor).ok_or_else(bad)?;
        if scaled % scale != 0 {
            return Err(gettext("“{size}” is not a whole number of MiB").replace("{size}", text));
        }
        scaled / scale
    };
    let mib = whole
        .checked_mul(factor)
        .and_then(|m| m.checked_add(frac_value))
        .ok_or_else(bad)?;
    if mib == 0 {
        return Err(gettext("The memory size must be more than 0."));
    }
    Ok(mib)
}

/// MiB for tables: `2 GiB` when whole GiB, else `512 MiB`.
pub fn memory_text(mib: u64) -> String {
    if mib >= 1024 && mib % 1024 == 0 {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

/// Bytes for progress lines: `1.5 GiB`, `300.0 MiB`, `12 B`.
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_people_type() {
        for (text, mib) in [
            ("4096", 4096),
            ("4G", 4096),
            ("4g", 4096),
            ("4GiB", 4096),
            ("512M", 512),
            ("512 MiB", 512),
            ("1.5G", 1536),
            (".5G", 512),
            ("1T", 1 << 20),
        ] {
            assert_eq!(parse_memory_mib(text), Ok(mib), "{text}");
        }
        for bad in [
            "",
            "G",
            "0",
            "0G",
            "4X",
            "1.2.3G",
            "0.1M",
            "-4G",
            "99999999999999999999",
        ] {
            assert!(parse_memory_mib(bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn sizes_people_read() {
        assert_eq!(memory_text(2048), "2 GiB");
        assert_eq!(memory_text(1536), "1536 MiB");
        assert_eq!(bytes_text(12), "12 B");
        assert_eq!(bytes_text(1536 << 20), "1.5 GiB");
    }
}
