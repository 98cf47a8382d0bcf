//! The one hash Mixed-R1 stores: 64-bit FNV-1a.
//!
//! Dedup keys, resume fingerprints, per-sample seeds, image file names and the math parser's
//! variable names are hashed with it. They are written to disk or decide which responses a run
//! draws, so the hash must not change with the Rust version or the platform, which rules out
//! `std`'s `DefaultHasher`. FNV-1a is short, has no dependencies and is fast on the short keys
//! hashed here.

/// FNV-1a's 64-bit offset basis: the state of an empty hash.
pub const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a's 64-bit prime.
pub const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a hash being fed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(OFFSET_BASIS)
    }
}

impl Fnv64 {
    pub fn new() -> Fnv64 {
        Fnv64::default()
    }

    /// Resumes hashing from a state (a previous [`Fnv64::finish`]), e.g. to chain a seed.
    pub fn from_state(state: u64) -> Fnv64 {
        Fnv64(state)
    }

    #[inline]
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.0 ^= b as u64;
        self.0 = self.0.wrapping_mul(PRIME);
        self
    }

    pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.byte(b);
        }
        self
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// FNV-1a of `bytes`.
pub fn fnv64(bytes: &[u8]) -> u64 {
    Fnv64::new().write(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        // The published FNV-1a 64-bit test vectors.
        assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv64(b"foobar"), 0x8594_4171_f739_67e8);
        let mut h = Fnv64::new();
        h.write(b"foo").write(b"bar");
        assert_eq!(h.finish(), fnv64(b"foobar"));
        assert_eq!(
            Fnv64::from_state(fnv64(b"foo")).write(b"bar").finish(),
            fnv64(b"foobar")
        );
    }
}
