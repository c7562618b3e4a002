//! Sizes with binary suffixes: "512KiB", "1MiB", "4M", "65536".

use anyhow::{Result, bail};

pub fn parse(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let Ok(number) = number.parse::<u64>() else { bail!("size {text:?} does not start with a number") };
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => bail!("size {text:?} has an unknown unit (use KiB, MiB or GiB)"),
    };
    match number.checked_mul(factor) {
        Some(bytes) => Ok(bytes),
        None => bail!("size {text:?} is too large"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_binary_units() {
        assert_eq!(super::parse("512KiB").unwrap(), 512 << 10);
        assert_eq!(super::parse("1MiB").unwrap(), 1 << 20);
        assert_eq!(super::parse("4m").unwrap(), 4 << 20);
        assert_eq!(super::parse("65536").unwrap(), 65536);
        assert!(super::parse("1.5MiB").is_err());
        assert!(super::parse("MiB").is_err());
        assert!(super::parse("1PiB").is_err());
    }
}
