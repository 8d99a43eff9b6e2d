//! Integer IDs: the canonical-decimal test and the order-keeping i64 → u64 map.
//!
//! Only the canonical spelling of an i64 is an integer ID (`0`, `42`, `-7`; not
//! `042`, `-0`, `+1`, ` 1`), so one number has exactly one spelling and the
//! integer and string paths can never disagree about whether two keys are equal.

/// Parses `text` if it is the canonical decimal spelling of an i64.
pub fn parse_canonical_i64(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, text),
    };
    let (&first, _) = digits.split_first()?;
    if digits.len() > 19 || !first.is_ascii_digit() {
        return None;
    }
    if first == b'0' && (digits.len() > 1 || neg) {
        return None; // `042` and `-0` are not canonical
    }
    // Accumulate as a negative number so i64::MIN fits.
    let mut acc: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        acc = acc.checked_mul(10)?.checked_sub(i64::from(b - b'0'))?;
    }
    if neg {
        Some(acc)
    } else {
        acc.checked_neg()
    }
}

/// Maps an i64 to u64 by flipping the sign bit: order is kept, so negative IDs
/// stay together below the positive ones.
#[inline]
pub fn to_u64(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

/// The inverse of [`to_u64`].
#[inline]
pub fn from_u64(v: u64) -> i64 {
    (v ^ (1 << 63)) as i64
}

/// Whether a mapped integer ID belongs in the roaring tier.
///
/// Roaring is compact only where IDs share 64 Ki-wide containers. IDs in
/// `[-2^32, 2^32)` (sequential ints, pids, counters, database keys) do; random
/// 64-bit IDs such as HDFS block ids put every ID in its own container and cost
/// ~250 B/ID in a 64-bit map, more than the string path's fingerprint. The test
/// depends on the value alone, so the same ID always takes the same path.
#[inline]
pub fn is_dense_range(mapped: u64) -> bool {
    let high = mapped >> 32;
    high == 0x7FFF_FFFF || high == 0x8000_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical() {
        assert_eq!(parse_canonical_i64(b"0"), Some(0));
        assert_eq!(parse_canonical_i64(b"42"), Some(42));
        assert_eq!(parse_canonical_i64(b"-1608999687919862906"), Some(-1608999687919862906));
        assert_eq!(parse_canonical_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_canonical_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"042"[..],
            b"-0",
            b"+1",
            b"",
            b"-",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"12345678901234567890",
            b"0x10",
        ] {
            assert_eq!(parse_canonical_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn sign_flip_keeps_order() {
        let vals = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in vals.windows(2) {
            assert!(to_u64(w[0]) < to_u64(w[1]));
            assert_eq!(from_u64(to_u64(w[0])), w[0]);
        }
        assert!(is_dense_range(to_u64(0)));
        assert!(is_dense_range(to_u64(-1)));
        assert!(is_dense_range(to_u64(4_294_967_295)));
        assert!(is_dense_range(to_u64(-4_294_967_296)));
        assert!(!is_dense_range(to_u64(4_294_967_296)));
        assert!(!is_dense_range(to_u64(-6952295868487656571)));
    }
}
