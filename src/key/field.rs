//! `field:N` keys: the N-th field (from 1), split like awk on runs of blanks, or
//! on each `--delimiter` byte like `cut -d`.

/// The `n`-th (1-based) field of `record` split on runs of spaces and tabs, with
/// leading blanks ignored (awk's default field splitting).
pub fn whitespace_field(record: &[u8], n: usize) -> Option<&[u8]> {
    let mut i = 0;
    let len = record.len();
    let mut field = 0;
    loop {
        while i < len && is_blank(record[i]) {
            i += 1;
        }
        if i == len {
            return None;
        }
        let start = i;
        while i < len && !is_blank(record[i]) {
            i += 1;
        }
        field += 1;
        if field == n {
            return Some(&record[start..i]);
        }
    }
}

/// The `n`-th (1-based) field of `record` split on every `delim` byte (`cut -d`):
/// empty fields count, a record with fewer fields has no such field.
pub fn delimited_field(record: &[u8], delim: u8, n: usize) -> Option<&[u8]> {
    let mut rest = record;
    for _ in 1..n {
        let at = memchr::memchr(delim, rest)?;
        rest = &rest[at + 1..];
    }
    let end = memchr::memchr(delim, rest).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awk_fields() {
        let r = b"  03-17 16:13:38.811  1702  2395 D WindowManager";
        assert_eq!(whitespace_field(r, 1), Some(&b"03-17"[..]));
        assert_eq!(whitespace_field(r, 3), Some(&b"1702"[..]));
        assert_eq!(whitespace_field(r, 4), Some(&b"2395"[..]));
        assert_eq!(whitespace_field(r, 6), Some(&b"WindowManager"[..]));
        assert_eq!(whitespace_field(r, 7), None);
        assert_eq!(whitespace_field(b"", 1), None);
        assert_eq!(whitespace_field(b"   ", 1), None);
    }

    #[test]
    fn cut_fields() {
        let r = b"a||c|";
        assert_eq!(delimited_field(r, b'|', 1), Some(&b"a"[..]));
        assert_eq!(delimited_field(r, b'|', 2), Some(&b""[..]));
        assert_eq!(delimited_field(r, b'|', 3), Some(&b"c"[..]));
        assert_eq!(delimited_field(r, b'|', 4), Some(&b""[..]));
        assert_eq!(delimited_field(r, b'|', 5), None);
    }
}
