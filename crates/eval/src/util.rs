//! Small helpers: per-sample seeds, relative paths, base64, image-type sniffing.

pub use mixed_r1_stable_hash::fnv64;
use mixed_r1_stable_hash::Fnv64;

/// The seed of one sample in a run: a function of the run seed and the sample id only, so a
/// sample draws the same responses whatever batch it lands in (resumed runs equal whole runs).
pub fn sample_seed(run_seed: u64, id: &str) -> u64 {
    Fnv64::new()
        .write(&run_seed.to_le_bytes())
        .write(id.as_bytes())
        .finish()
}

/// The seed of response `k` of a prompt whose seed is `prompt_seed` ([`EvalPrompt::seed`]):
/// what a sampling responder gives each of the `n` copies of a prompt.
///
/// [`EvalPrompt::seed`]: crate::responder::EvalPrompt::seed
pub fn response_seed(prompt_seed: u64, k: usize) -> u64 {
    Fnv64::new()
        .write(&prompt_seed.to_le_bytes())
        .write(&(k as u64).to_le_bytes())
        .finish()
}

pub use mixed_r1_data::paths::{absolute, relative_to};

/// Standard base64 (RFC 4648, `+/`, padding optional; white space ignored). `None` on any
/// other character or an impossible length.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits, mut pad) = (0u32, 0u32, 0usize);
    for &c in text.as_bytes() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            pad += 1;
            continue;
        }
        if pad > 0 {
            return None; // data after padding
        }
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // 6 leftover bits cannot end a valid encoding; pad never exceeds 2.
    if bits >= 6 || pad > 2 {
        return None;
    }
    Some(out)
}

/// The file extension for an encoded image, from its magic bytes.
pub fn image_extension(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else if bytes.starts_with(b"BM") {
        Some("bmp")
    } else {
        None
    }
}

/// A JSON value as an id: strings as they are, numbers as written.
pub fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes(), "{enc}");
        }
        assert_eq!(base64_decode("Zm9v\nYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zm8").unwrap(), b"fo");
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Z").is_none());
        assert!(base64_decode("Zg==Zg").is_none());
    }

    #[test]
    fn seeds_depend_on_id_and_run_seed_only() {
        assert_eq!(sample_seed(1, "x"), sample_seed(1, "x"));
        assert_ne!(sample_seed(1, "x"), sample_seed(2, "x"));
        assert_ne!(sample_seed(1, "x"), sample_seed(1, "y"));
        assert_ne!(response_seed(5, 0), response_seed(5, 1));
        assert_eq!(response_seed(5, 1), response_seed(5, 1));
        // FNV-1a reference value of "a".
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn sniffs_image_types() {
        assert_eq!(image_extension(b"\x89PNG\r\n\x1a\nrest"), Some("png"));
        assert_eq!(image_extension(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpg"));
        assert_eq!(image_extension(b"hello"), None);
    }
}
