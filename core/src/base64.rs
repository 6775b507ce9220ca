//! Base64 with padding: the standard alphabet for the `data` / `hdrs` fields of
//! `STREAM.MSG.GET`, the URL-safe one for object-store names and digests. Decoding accepts
//! both.

use alloc::string::String;
use alloc::vec::Vec;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Standard alphabet, with padding.
pub fn encode(data: &[u8]) -> String {
    encode_with(data, ALPHABET)
}

/// URL-safe alphabet, with padding (object-store names and digests use it).
pub fn encode_url(data: &[u8]) -> String {
    encode_with(data, URL_ALPHABET)
}

fn encode_with(data: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        if c == b'=' {
            break;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(encode(b"x"), "eA==");
        assert_eq!(encode(b"NATS/1.0\r\n"), "TkFUUy8xLjANCg==");
        assert_eq!(encode_url(b"hello.txt"), "aGVsbG8udHh0");
        assert_eq!(encode_url(b"big.bin"), "YmlnLmJpbg==");
        assert_eq!(encode_url(b"a/b.txt"), "YS9iLnR4dA==");
        for n in 0..20 {
            let v: Vec<u8> = (0..n).map(|i| (i * 37) as u8).collect();
            assert_eq!(decode(&encode(&v)).unwrap(), v);
        }
    }
}
