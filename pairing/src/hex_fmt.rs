//! Lowercase hex formatting for `Debug` output of public values (keys, ids).

use std::fmt;

/// Displays bytes as lowercase hex without allocating.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Hex;

    #[test]
    fn formats_lowercase_hex() {
        assert_eq!(Hex(&[0x00, 0xab, 0x7f]).to_string(), "00ab7f");
        assert_eq!(format!("{:?}", Hex(&[])), "");
    }
}
