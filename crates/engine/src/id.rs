//! One type per id. Every id is 32 bytes shown as 64 lowercase hex digits.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn from_hex(text: &str) -> Option<Self> {
                parse_hex32(text).map($name)
            }
            pub fn to_hex(&self) -> String {
                hex(&self.0)
            }
            /// The first 8 hex digits, as shown to people.
            pub fn short(&self) -> String {
                hex(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

id_type!(
    /// Keyed BLAKE3 of a chunk's plaintext. The all-zero id stands for a chunk of zeros,
    /// which is never stored.
    ChunkId
);
id_type!(
    /// BLAKE3 of a pack file's bytes: the pack names itself, so its integrity can be checked
    /// without the key.
    PackId
);
id_type!(
    /// BLAKE3 of an index file's bytes.
    IndexId
);
id_type!(
    /// BLAKE3 of a snapshot manifest's bytes.
    SnapshotId
);

impl ChunkId {
    /// Marks a chunk that is all zeros; such chunks are restored as holes.
    pub const ZERO: ChunkId = ChunkId([0; 32]);

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    text.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    parse_hex(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip() {
        let id = PackId(*blake3::hash(b"x").as_bytes());
        assert_eq!(PackId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(PackId::from_hex("zz"), None);
        assert_eq!(PackId::from_hex(&id.to_hex()[..10]), None);
        assert_eq!(id.short().len(), 8);
    }
}
