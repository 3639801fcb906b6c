//! Value types used in the config file: byte sizes (`20MiB`), durations
//! (`5m`, `250ms`) and listen endpoints (`127.0.0.1:4317`); and the
//! security settings every server shares ([`security`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod security;

pub use security::{
    AuthConfig, BasicUser, Secret, TlsConfig, TlsVersion, authorization_parts, constant_time_eq,
};

/// A size in bytes, written as a number or with a unit: `B`, `KB`, `MB`,
/// `GB` (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mib(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a size; write e.g. 20MiB or 1048576"))?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1000,
            "MB" => 1000 * 1000,
            "GB" => 1000 * 1000 * 1000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` in `{text}`; use B, KB, MB, GB, KiB, MiB or GiB"
                ));
            }
        };
        Ok(ByteSize((number * factor as f64).round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if n >= size && n.is_multiple_of(size) {
                return write!(f, "{}{unit}", n / size);
            }
        }
        write!(f, "{n}B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(u64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(ByteSize(n)),
            Either::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A duration written as a sequence of number+unit: `250ms`, `30s`, `5m`,
/// `1h30m`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn secs(n: u64) -> Self {
        Self(Duration::from_secs(n))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

/// The longest duration a setting may be written as: a bound far past
/// any sensible value, so arithmetic on settings cannot overflow.
const LONGEST_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let original = text;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("empty duration; write e.g. 30s or 5m".into());
        }
        let mut total = Duration::ZERO;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("`{original}` lacks a unit; write e.g. {original}s"))?;
            let (number, tail) = rest.split_at(digits);
            let number: f64 = number
                .parse()
                .map_err(|_| format!("`{original}` is not a duration; write e.g. 30s or 5m"))?;
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(tail.len());
            let (unit, next) = tail.split_at(unit_len);
            // `10 s` reads as `10s`, as a size's `20 MB` does.
            let unit = unit.trim();
            let seconds = match unit {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "d" => 86400.0,
                other => {
                    return Err(format!(
                        "unknown duration unit `{other}` in `{original}`; use ns, us, ms, s, m, h or d"
                    ));
                }
            };
            total = Duration::try_from_secs_f64(number * seconds)
                .ok()
                .and_then(|part| total.checked_add(part))
                .filter(|total| *total <= LONGEST_DURATION)
                .ok_or_else(|| {
                    format!("`{original}` is longer than any setting takes (100 years)")
                })?;
            rest = next;
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let ms = d.as_millis();
        if ms == 0 && !d.is_zero() {
            return write!(f, "{}us", d.as_micros());
        }
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let s = d.as_secs();
        // Whole days as days, as written in the config and in PromQL
        // (`window="1d"`, not `24h`).
        if s != 0 && s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s != 0 && s.is_multiple_of(3600) {
            write!(f, "{}h", s / 3600)
        } else if s != 0 && s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A listen address `host:port`. `localhost` means 127.0.0.1; port 0 asks
/// the OS for a free port (the bound address is logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint(pub SocketAddr);

impl Endpoint {
    pub const fn loopback(port: u16) -> Self {
        Self(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
    }

    pub fn addr(self) -> SocketAddr {
        self.0
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Endpoint(addr));
        }
        if let Some(port) = text.strip_prefix("localhost:") {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("`{text}` has no valid port"))?;
            return Ok(Endpoint::loopback(port));
        }
        Err(format!(
            "`{text}` is not a listen address; write IP:PORT, e.g. 127.0.0.1:4317 or 0.0.0.0:4317"
        ))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!("20MiB".parse::<ByteSize>().unwrap(), ByteSize(20 << 20));
        assert_eq!("1KB".parse::<ByteSize>().unwrap(), ByteSize(1000));
        assert_eq!("512".parse::<ByteSize>().unwrap(), ByteSize(512));
        assert!("12 parsecs".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(20 << 20).to_string(), "20MiB");
    }

    #[test]
    fn durations_parse_compound_forms() {
        assert_eq!(
            "1h30m".parse::<HumanDuration>().unwrap().get(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().get(),
            Duration::from_millis(250)
        );
        assert!("5".parse::<HumanDuration>().is_err());
        assert!("5y".parse::<HumanDuration>().is_err());
        // A space before the unit, as sizes allow.
        assert_eq!(
            "10 s".parse::<HumanDuration>().unwrap().get(),
            Duration::from_secs(10)
        );
        assert_eq!(
            "1h 30m".parse::<HumanDuration>().unwrap().get(),
            Duration::from_secs(5400)
        );
        // Too long to hold, or to add up: an error, not a panic.
        for long in [
            "99999999999999999999d",
            "10000000000000000000s10000000000000000000s",
            "36501d",
        ] {
            let e = long.parse::<HumanDuration>().unwrap_err();
            assert!(e.contains("longer than"), "{long}: {e}");
        }
        assert!("36500d".parse::<HumanDuration>().is_ok());
        assert_eq!(HumanDuration::secs(300).to_string(), "5m");
        assert_eq!(HumanDuration::secs(3600).to_string(), "1h");
        assert_eq!(HumanDuration::secs(36 * 3600).to_string(), "36h");
        assert_eq!(HumanDuration::secs(86_400).to_string(), "1d");
        assert_eq!(HumanDuration::secs(7 * 86_400).to_string(), "7d");
        // What is written reads back.
        for secs in [1, 90, 3600, 86_400, 90_000] {
            let d = HumanDuration::secs(secs);
            assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d);
        }
    }

    #[test]
    fn endpoints_accept_ip_and_localhost() {
        assert_eq!(
            "localhost:4317".parse::<Endpoint>().unwrap(),
            Endpoint::loopback(4317)
        );
        assert!("0.0.0.0:9464".parse::<Endpoint>().is_ok());
        assert!("[::1]:9464".parse::<Endpoint>().is_ok());
        assert!("example.com".parse::<Endpoint>().is_err());
    }
}
