//! Value types shared by the BackendTrafficPolicy fields: CRD string enums that keep unknown
//! values (so validation can report them the way the API server does) and Kubernetes quantities.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A CRD string enum: its allowed values in the CRD's order, and what the user wrote.
pub trait CrdEnum {
    /// The values the CRD lists, in its order (quoted in `Unsupported value` errors).
    const VALUES: &'static [&'static str];
    /// The text as written.
    fn as_str(&self) -> &str;
    /// True for a value the CRD lists.
    fn is_known(&self) -> bool;
}

/// Declares a CRD string enum whose unknown values are kept as `Unknown(text)`.
///
/// Decoding never fails on a bad value: the API server reports a bad enum value together with
/// every other error, so validation (not serde) must see it.
macro_rules! crd_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value the CRD does not list; validation rejects it.
            Unknown(String),
        }

        impl $crate::policy::btp::values::CrdEnum for $name {
            const VALUES: &'static [&'static str] = &[$($text),+];

            fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(text) => text,
                }
            }

            fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ok(match text {
                    $($text => Self::$variant,)+
                    other => Self::Unknown(other.to_string()),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::policy::btp::values::CrdEnum::as_str(self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(match text.parse() {
                    Ok(value) => value,
                    Err(never) => match never {},
                })
            }
        }
    };
}

pub(crate) use crd_enum;

/// A Kubernetes `resource.Quantity` (`x-kubernetes-int-or-string`), kept as written.
///
/// The CRD checks string quantities against patterns and lets integers through unchecked, so
/// the original form matters; [`Quantity::value`] gives the exact value when it is an integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    text: String,
    was_string: bool,
}

/// Decimal or binary SI suffix family of a quantity, which decides its canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

impl Quantity {
    /// A quantity written as a YAML string (`"100Mi"`).
    pub fn from_string(text: impl Into<String>) -> Quantity {
        Quantity {
            text: text.into(),
            was_string: true,
        }
    }

    /// A quantity written as a YAML integer.
    pub fn from_int(value: i64) -> Quantity {
        Quantity {
            text: value.to_string(),
            was_string: false,
        }
    }

    /// The text as the user wrote it (integers in decimal).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when written as a string; only strings are checked against the CRD patterns.
    pub fn was_string(&self) -> bool {
        self.was_string
    }

    /// The exact value when it is a whole number (Go's `AsInt64`, widened), else None.
    pub fn value(&self) -> Option<i128> {
        let parsed = parse(self.text.trim())?;
        parsed.integer()
    }

    /// Go's `Quantity.AsInt64`: the value when it is a whole number that fits an int64.
    pub fn as_i64(&self) -> Option<i64> {
        self.value().and_then(|v| i64::try_from(v).ok())
    }

    /// The canonical text Go's `Quantity.String()` prints (`1000k` → `1M`, `1024Ki` → `1Mi`).
    /// Quantities that are not whole numbers keep their original text.
    pub fn canonical(&self) -> String {
        let Some(parsed) = parse(self.text.trim()) else {
            return self.text.clone();
        };
        let Some(value) = parsed.integer() else {
            return self.text.clone();
        };
        canonical_integer(value, parsed.format)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;

        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a quantity string such as \"100Mi\"")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity::from_int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity {
                    text: v.to_string(),
                    was_string: false,
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity::from_string(v))
            }
        }

        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// A parsed quantity: `mantissa / 10^frac_digits * base^exp`.
struct Parsed {
    negative: bool,
    mantissa: i128,
    frac_digits: u32,
    base: i128,
    exp: u32,
    format: Format,
}

impl Parsed {
    /// The value when it is a whole number that fits i128.
    fn integer(&self) -> Option<i128> {
        let mut value = self.mantissa;
        for _ in 0..self.exp {
            value = value.checked_mul(self.base)?;
        }
        let divisor = 10i128.checked_pow(self.frac_digits)?;
        if value % divisor != 0 {
            return None;
        }
        let value = value / divisor;
        Some(if self.negative { -value } else { value })
    }
}

/// Parses Kubernetes quantity syntax: sign, digits with optional fraction, optional suffix.
fn parse(text: &str) -> Option<Parsed> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let digits: String = format!("{int_part}{frac_part}");
    let mut mantissa: i128 = 0;
    for b in digits.bytes() {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    let frac_digits = u32::try_from(frac_part.len()).ok()?;
    let (base, exp, format) = match suffix {
        "" => (10, 0, Format::DecimalSi),
        "k" => (10, 3, Format::DecimalSi),
        "M" => (10, 6, Format::DecimalSi),
        "G" => (10, 9, Format::DecimalSi),
        "T" => (10, 12, Format::DecimalSi),
        "P" => (10, 15, Format::DecimalSi),
        "E" => (10, 18, Format::DecimalSi),
        "n" | "u" | "m" => {
            // Sub-unit suffixes: whole only when the digits cancel them out.
            let shift = match suffix {
                "n" => 9,
                "u" => 6,
                _ => 3,
            };
            return Some(Parsed {
                negative,
                mantissa,
                frac_digits: frac_digits + shift,
                base: 10,
                exp: 0,
                format: Format::DecimalSi,
            });
        }
        "Ki" => (1024, 1, Format::BinarySi),
        "Mi" => (1024, 2, Format::BinarySi),
        "Gi" => (1024, 3, Format::BinarySi),
        "Ti" => (1024, 4, Format::BinarySi),
        "Pi" => (1024, 5, Format::BinarySi),
        "Ei" => (1024, 6, Format::BinarySi),
        other => {
            let exponent = other.strip_prefix(['e', 'E'])?;
            let exp: i32 = exponent.parse().ok()?;
            if exp < 0 {
                return Some(Parsed {
                    negative,
                    mantissa,
                    frac_digits: frac_digits + exp.unsigned_abs(),
                    base: 10,
                    exp: 0,
                    format: Format::DecimalExponent,
                });
            }
            (10, exp.unsigned_abs(), Format::DecimalExponent)
        }
    };
    Some(Parsed {
        negative,
        mantissa,
        frac_digits,
        base,
        exp,
        format,
    })
}

/// Go's canonical form of a whole-number quantity.
fn canonical_integer(value: i128, format: Format) -> String {
    if value == 0 {
        return "0".to_string();
    }
    // Binary quantities smaller than 1Ki print in decimal, as Go does.
    let format = if format == Format::BinarySi && value.abs() < 1024 {
        Format::DecimalSi
    } else {
        format
    };
    match format {
        Format::BinarySi => {
            let (mut amount, mut exp) = (value, 0usize);
            while amount % 1024 == 0 && exp < 6 {
                amount /= 1024;
                exp += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
            format!("{amount}{suffix}")
        }
        Format::DecimalSi | Format::DecimalExponent => {
            let (mut amount, mut exp) = (value, 0u32);
            while amount % 10 == 0 {
                amount /= 10;
                exp += 1;
            }
            // Exponents are multiples of three; put the rest back into the digits.
            while exp % 3 != 0 {
                amount *= 10;
                exp -= 1;
            }
            if format == Format::DecimalExponent {
                return if exp == 0 {
                    amount.to_string()
                } else {
                    format!("{amount}e{exp}")
                };
            }
            match exp {
                0 => amount.to_string(),
                3 => format!("{amount}k"),
                6 => format!("{amount}M"),
                9 => format!("{amount}G"),
                12 => format!("{amount}T"),
                15 => format!("{amount}P"),
                18 => format!("{amount}E"),
                _ => format!("{amount}e{exp}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_values_follow_kubernetes() {
        assert_eq!(
            Quantity::from_string("100Mi").as_i64(),
            Some(100 * 1024 * 1024)
        );
        assert_eq!(Quantity::from_string("1k").as_i64(), Some(1000));
        assert_eq!(Quantity::from_int(-1).as_i64(), Some(-1));
        assert_eq!(Quantity::from_string("1.5").value(), None);
        assert_eq!(Quantity::from_string("8Ei").as_i64(), None);
        assert_eq!(Quantity::from_string("100Ei").value(), Some(100 << 60));
    }

    #[test]
    fn canonical_form_matches_go() {
        for (input, canonical) in [
            ("1000k", "1M"),
            ("1024Ki", "1Mi"),
            ("1536Ki", "1536Ki"),
            ("1500", "1500"),
            ("15000", "15k"),
            ("100000000", "100M"),
            ("5Gi", "5Gi"),
            ("512Ki", "512Ki"),
            ("0", "0"),
        ] {
            assert_eq!(
                Quantity::from_string(input).canonical(),
                canonical,
                "{input}"
            );
        }
        assert_eq!(Quantity::from_int(5_000_000_000).canonical(), "5G");
        assert_eq!(Quantity::from_int(-1).canonical(), "-1");
        assert_eq!(Quantity::from_int(32768).canonical(), "32768");
    }
}
