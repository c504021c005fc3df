//! Data values in messages: quoted, and cut to about a hundred characters, so that an
//! error, a log line or a status flag never copies a customer's value whole (a
//! four-million-digit number would otherwise make an 8 MB flag).

use std::fmt;

/// How much of a value a message shows.
pub const SHOWN: usize = 100;

/// `s` as a message shows it: Debug-quoted (`"a\nb"`), cut after [`SHOWN`] characters
/// with how long it was.
pub fn quote(s: &str) -> String {
    Quoted(s).to_string()
}

/// `s` cut after [`SHOWN`] characters with how long it was, unquoted.
pub fn cut(s: &str) -> String {
    match s.char_indices().nth(SHOWN) {
        None => s.to_string(),
        Some((i, _)) => format!("{}… ({} bytes in all)", &s[..i], s.len()),
    }
}

/// A value shown as [`quote`] shows it, for format strings.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(SHOWN) {
            None => write!(f, "{:?}", self.0),
            Some((i, _)) => write!(f, "{:?}… ({} bytes in all)", &self.0[..i], self.0.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_short_ones_kept() {
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        let long = "7".repeat(4_000_000);
        let q = quote(&long);
        assert!(q.len() < 150, "{q}");
        assert!(q.ends_with("… (4000000 bytes in all)"), "{q}");
        // Never a cut inside a character.
        let wide = "é".repeat(200);
        assert!(cut(&wide).starts_with(&"é".repeat(100)));
    }
}
