//! DynamoDB numbers: validation and a canonical spelling, done on the decimal text
//! itself so that nothing is ever routed through `f64`.
//!
//! DynamoDB accepts an optional sign, digits with an optional fraction and an optional
//! exponent (`e` or `E`), with at most 38 significant digits and a magnitude between
//! `1E-130` and `9.9999999999999999999999999999999999999E+125` (or zero).

/// Most significant digits DynamoDB keeps.
pub const MAX_SIGNIFICANT_DIGITS: usize = 38;
/// Largest decimal exponent of the leading digit (`9.99…E+125`).
const MAX_ADJUSTED_EXPONENT: i64 = 125;
/// Smallest decimal exponent of the leading digit (`1E-130`).
const MIN_ADJUSTED_EXPONENT: i64 = -130;
/// Exponents are clamped to this before any arithmetic; far out of range either way.
const EXPONENT_CLAMP: i64 = 1_000_000_000_000_000;

/// A number's text, split but not yet checked against DynamoDB's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decimal<'a> {
    /// A leading `-`.
    negative: bool,
    /// Digits before the point (possibly empty, possibly with leading zeros).
    int: &'a [u8],
    /// Digits after the point (possibly empty).
    frac: &'a [u8],
    /// The written exponent, clamped to ±[`EXPONENT_CLAMP`].
    exp: i64,
}

impl<'a> Decimal<'a> {
    /// Splits `s` into sign, digits and exponent; `None` if it is not a decimal number.
    pub(crate) fn parse(s: &'a str) -> Option<Self> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = b.first() {
            if c == b'-' || c == b'+' {
                negative = c == b'-';
                i = 1;
            }
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int = &b[int_start..i];
        let mut frac: &[u8] = &[];
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let frac_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac = &b[frac_start..i];
        }
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let mut exp = 0i64;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut exp_negative = false;
            if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
                exp_negative = b[i] == b'-';
                i += 1;
            }
            let exp_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp = (exp * 10 + i64::from(b[i] - b'0')).min(EXPONENT_CLAMP);
                i += 1;
            }
            if i == exp_start {
                return None;
            }
            if exp_negative {
                exp = -exp;
            }
        }
        if i != b.len() {
            return None;
        }
        Some(Decimal {
            negative,
            int,
            frac,
            exp,
        })
    }

    /// All mantissa digits, point removed.
    fn digits(&self) -> impl Iterator<Item = u8> + 'a {
        self.int.iter().chain(self.frac.iter()).copied()
    }

    /// Leading and trailing zeros of the mantissa, and the count of digits between them
    /// (0 for zero).
    fn shape(&self) -> (usize, usize, usize) {
        let total = self.int.len() + self.frac.len();
        let leading = self.digits().take_while(|&d| d == b'0').count();
        if leading == total {
            return (total, 0, 0);
        }
        let zeros_at_end = |b: &[u8]| b.iter().rev().take_while(|&&d| d == b'0').count();
        let trailing = match zeros_at_end(self.frac) {
            all if all == self.frac.len() => all + zeros_at_end(self.int),
            some => some,
        };
        (leading, trailing, total - leading - trailing)
    }

    /// The value as sign, significant digits and exponent: `-12.50` is
    /// `(true, "125", -1)`, `600` is `(false, "6", 2)`, zero is `(false, "0", 0)`.
    pub(crate) fn significand(&self) -> (bool, String, i64) {
        let (leading, trailing, n) = self.shape();
        if n == 0 {
            return (false, "0".to_string(), 0);
        }
        let digits = self
            .digits()
            .skip(leading)
            .take(n)
            .map(char::from)
            .collect();
        let exponent = self.exp - self.frac.len() as i64 + trailing as i64;
        (self.negative, digits, exponent)
    }

    /// Significant digits: from the first non-zero digit to the last (0 for zero).
    pub(crate) fn significant_digits(&self) -> usize {
        self.shape().2
    }
}

/// Why DynamoDB would refuse a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Not a decimal number at all.
    #[error("not a decimal number")]
    NotADecimal,
    /// More significant digits than DynamoDB keeps.
    #[error("{0} significant digits, DynamoDB keeps at most {MAX_SIGNIFICANT_DIGITS}")]
    TooManyDigits(usize),
    /// Larger in magnitude than DynamoDB's largest number.
    #[error("magnitude over 9.9999999999999999999999999999999999999E+125")]
    TooLarge,
    /// Smaller in magnitude (and not zero) than DynamoDB's smallest.
    #[error("magnitude under 1E-130")]
    TooSmall,
}

/// Validates `s` as [`canonical_number`] does, spelling nothing (an import checks every
/// number of every item; building each one's canonical spelling only to drop it was 1 %
/// of its CPU, issue 26).
pub fn check_number(s: &str) -> Result<(), NumberError> {
    if already_canonical(s) {
        return Ok(());
    }
    checked(s).map(|_| ())
}

/// Whether `s` is, at a glance, a number [`canonical_number`] gives back as it is: an
/// optional `-`, `0` or digits not starting with `0`, then perhaps a point and digits not
/// ending in `0`, at most 38 characters (so at most 38 significant digits, and far within
/// DynamoDB's magnitudes), and not `-0`. `false` says nothing: ask `canonical_number`.
/// (Most numbers of most items are written so; an import looks at each one, issue 26.)
pub fn already_canonical(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if b.len() > MAX_SIGNIFICANT_DIGITS || digits.is_empty() {
        return false;
    }
    let (int, frac) = match digits.iter().position(|&c| c == b'.') {
        Some(p) => (&digits[..p], Some(&digits[p + 1..])),
        None => (digits, None),
    };
    let int_ok = match int {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    let frac_ok = frac
        .is_none_or(|f| f.iter().all(u8::is_ascii_digit) && f.last().is_some_and(|&c| c != b'0'));
    let zero = int == b"0" && frac.is_none();
    int_ok && frac_ok && !(zero && digits.len() != b.len())
}

/// A number DynamoDB takes, in parts: `d`, its first significant digit at `leading`, its
/// `n` significant digits, the value `D × 10^x` (D those digits as an integer), which is
/// `d1.d2… × 10^adjusted`.
struct Checked<'a> {
    d: Decimal<'a>,
    leading: usize,
    n: usize,
    x: i64,
    adjusted: i64,
}

/// `s` checked as DynamoDB checks a number: `None` for zero.
fn checked(s: &str) -> Result<Option<Checked<'_>>, NumberError> {
    let d = Decimal::parse(s).ok_or(NumberError::NotADecimal)?;
    let (leading, trailing, n) = d.shape();
    if n == 0 {
        return Ok(None);
    }
    if n > MAX_SIGNIFICANT_DIGITS {
        return Err(NumberError::TooManyDigits(n));
    }
    let x = d.exp - d.frac.len() as i64 + trailing as i64;
    let adjusted = x + n as i64 - 1;
    if adjusted > MAX_ADJUSTED_EXPONENT {
        return Err(NumberError::TooLarge);
    }
    if adjusted < MIN_ADJUSTED_EXPONENT {
        return Err(NumberError::TooSmall);
    }
    Ok(Some(Checked {
        d,
        leading,
        n,
        x,
        adjusted,
    }))
}

/// Validates `s` as DynamoDB would and returns its canonical spelling: plain decimal,
/// no exponent, no leading zeros before the point, no trailing zeros after it, no `+`,
/// and `0` for every zero. Numerically equal inputs give the same string
/// (`"00100.500"`, `"1.005e2"` → `"100.5"`; `"-0"` → `"0"`; `"1.0E-3"` → `"0.001"`).
///
/// `Err` says why DynamoDB would refuse the number.
pub fn canonical_number(s: &str) -> Result<String, NumberError> {
    let Some(Checked {
        d,
        leading,
        n,
        x,
        adjusted,
    }) = checked(s)?
    else {
        return Ok("0".to_string());
    };
    let sig: Vec<u8> = d.digits().skip(leading).take(n).collect();
    let mut out = String::with_capacity(n + 4 + adjusted.unsigned_abs() as usize);
    if d.negative {
        out.push('-');
    }
    let push = |out: &mut String, digits: &[u8]| out.extend(digits.iter().map(|&c| char::from(c)));
    if x >= 0 {
        push(&mut out, &sig);
        out.extend(std::iter::repeat_n('0', x as usize));
    } else if adjusted >= 0 {
        let point = (adjusted + 1) as usize;
        push(&mut out, &sig[..point]);
        out.push('.');
        push(&mut out, &sig[point..]);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-adjusted - 1) as usize));
        push(&mut out, &sig);
    }
    Ok(out)
}

/// DynamoDB's size of a number: about one byte per two significant digits, plus one.
/// Text that is not a number is sized by its digit count, so it is never zero.
pub(crate) fn number_size(s: &str) -> usize {
    let digits = match Decimal::parse(s) {
        Some(d) => d.significant_digits(),
        None => s.bytes().filter(u8::is_ascii_digit).count(),
    };
    digits.max(1).div_ceil(2) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::test_support::number_text;
    use proptest::prelude::*;

    fn ok(s: &str) -> String {
        canonical_number(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn normalizes() {
        let cases = [
            ("00100.500", "100.5"),
            ("1e2", "100"),
            ("1E2", "100"),
            ("-0", "0"),
            ("+0.000e99999999999999999999", "0"),
            ("1.0E-3", "0.001"),
            ("1.005e2", "100.5"),
            ("15e-1", "1.5"),
            ("1.50", "1.5"),
            ("+7", "7"),
            ("-12.50", "-12.5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("0", "0"),
            ("123", "123"),
            ("-0.0001230", "-0.000123"),
            ("1200", "1200"),
            ("12e+2", "1200"),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), want, "{input}");
        }
    }

    #[test]
    fn already_canonical_at_a_glance() {
        for yes in [
            "0",
            "1",
            "-1",
            "10",
            "0.5",
            "-0.05",
            "123.25",
            &"9".repeat(38),
        ] {
            assert!(already_canonical(yes), "{yes}");
        }
        for no in [
            "",
            "-",
            "-0",
            "00",
            "01",
            "1.",
            "1.0",
            ".5",
            "+1",
            "1e2",
            "0.50",
            "-0.0",
            " 1",
            &"9".repeat(39),
        ] {
            assert!(!already_canonical(no), "{no}");
        }
    }

    #[test]
    fn limits() {
        let max = "9.9999999999999999999999999999999999999E+125";
        let got = ok(max);
        assert_eq!(got.len(), 126);
        assert!(got.starts_with(&"9".repeat(38)));
        assert_eq!(ok(&got), got);
        assert!(canonical_number("1E+126").is_err());
        assert!(canonical_number("-1E+126").is_err());
        assert!(canonical_number("10E+125").is_err());
        let min = ok("1E-130");
        assert_eq!(min, format!("0.{}1", "0".repeat(129)));
        assert_eq!(ok("-1E-130"), format!("-{min}"));
        assert!(canonical_number("0.1E-130").is_err());
        assert!(canonical_number("9.9E-131").is_err());
        assert!(canonical_number("1e-99999999999999999999999").is_err());
        assert!(canonical_number("1e99999999999999999999999").is_err());
        // 38 significant digits, wherever the zeros are.
        let d38 = "1".repeat(38);
        assert_eq!(ok(&d38), d38);
        assert_eq!(ok(&format!("000{d38}000")), format!("{d38}000"));
        assert_eq!(ok(&format!("0.000{d38}")), format!("0.000{d38}"));
        assert!(canonical_number(&"1".repeat(39)).is_err());
        assert!(canonical_number(&format!("1.{}", "0".repeat(37) + "1")).is_err());
        assert_eq!(
            ok(&format!("1{}", "0".repeat(60))),
            format!("1{}", "0".repeat(60))
        );
    }

    #[test]
    fn rejects_non_numbers() {
        for bad in [
            "", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", " 1", "1 ", "0x10", "NaN", "Infinity",
            "-inf", "1_000", "--1", "1e5.5", "١",
        ] {
            assert!(canonical_number(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(number_size("0"), 2);
        assert_eq!(number_size("1"), 2);
        assert_eq!(number_size("12"), 2);
        assert_eq!(number_size("123"), 3);
        assert_eq!(number_size("-0.00123000"), 3);
        assert_eq!(number_size(&"9".repeat(38)), 20);
        assert_eq!(number_size("abc"), 2);
    }

    proptest! {
        #[test]
        fn idempotent(s in number_text()) {
            let c = canonical_number(&s).unwrap();
            prop_assert_eq!(canonical_number(&c).unwrap(), c.clone());
            prop_assert!(!c.contains(['e', 'E', '+']));
        }

        #[test]
        fn respelling_is_equal(s in number_text(), zeros in 0usize..4) {
            let c = canonical_number(&s).unwrap();
            // The same value as 0.DIGITS × 10^point, and as DIGITS000 × 10^(point - len).
            let d = Decimal::parse(&c).unwrap();
            let all: String = d.digits().map(char::from).collect();
            let point = d.int.len() as i64;
            let sign = if d.negative { "-" } else { "" };
            let moved = format!("{sign}0.{all}e{point}");
            prop_assert_eq!(canonical_number(&moved).unwrap(), c.clone());
            let shifted = format!(
                "{sign}{all}{}E{}",
                "0".repeat(zeros),
                point - all.len() as i64 - zeros as i64
            );
            prop_assert_eq!(canonical_number(&shifted).unwrap(), c);
        }

        #[test]
        fn never_panics(s in "[-+0-9.eE]{0,50}") {
            let _ = canonical_number(&s);
            let _ = number_size(&s);
        }

        /// What `already_canonical` takes, `canonical_number` gives back as it is.
        #[test]
        fn already_canonical_is_canonical(s in "-?[0-9]{0,3}(\\.[0-9]{0,3})?|-?[0-9]{36,40}|[-+0-9.eE]{0,8}") {
            if already_canonical(&s) {
                prop_assert_eq!(canonical_number(&s), Ok(s.clone()));
            }
        }

        /// `check_number` refuses what `canonical_number` refuses, with the same reason.
        #[test]
        fn checks_as_canonical_number_does(s in "[-+0-9.eE]{0,50}|-?[0-9]{30,45}(e-?1[23][0-9])?") {
            prop_assert_eq!(check_number(&s), canonical_number(&s).map(|_| ()));
        }
    }
}
