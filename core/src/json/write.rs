//! Writing a JSON object field by field, byte for byte as serde_json writes the same struct
//! (compact, keys in the order written, strings escaped the same way).

use alloc::vec::Vec;

/// An object being written into `out`; [`Object::end`] closes it.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        string(self.out, k);
        self.out.push(b':');
        self.out
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        string(self.key(k), v);
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        let out = self.key(k);
        out.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn int(&mut self, k: &str, v: i64) -> &mut Self {
        let mut buf = itoa::Buffer::new();
        self.key(k).extend_from_slice(buf.format(v).as_bytes());
        self
    }

    pub fn uint(&mut self, k: &str, v: u64) -> &mut Self {
        let mut buf = itoa::Buffer::new();
        self.key(k).extend_from_slice(buf.format(v).as_bytes());
        self
    }

    pub fn strs<S: AsRef<str>>(&mut self, k: &str, v: &[S]) -> &mut Self {
        let out = self.key(k);
        out.push(b'[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, s.as_ref());
        }
        out.push(b']');
        self
    }

    /// Writes `v` under `k` unless `skip` (serde's `skip_serializing_if`).
    pub fn str_unless(&mut self, skip: bool, k: &str, v: &str) -> &mut Self {
        if !skip {
            self.str(k, v);
        }
        self
    }

    pub fn end(&mut self) {
        self.out.push(b'}');
    }
}

/// A JSON string: `"` and `\` escaped, control characters as serde_json writes them.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        run = i + 1;
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        } else {
            out.extend_from_slice(esc);
        }
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}
