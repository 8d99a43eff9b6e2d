//! The classifier: the reader thread's stages for one record (key extraction,
//! hashing, event time), turning a record into an [`Item`].

use super::batch::{Id, Item};
use crate::config::{Config, ExactConfig};
use crate::error::Result;
use crate::framing::{Records, Span};
use crate::hash::Seed;
use crate::key::{int, Fields, Key};
use crate::time::TimeFormat;

/// Everything a thread needs to classify records.
pub(super) struct Classifier {
    /// The key and the time field.
    fields: Fields,
    /// How the time field is written (with `--time-field`).
    time_format: Option<TimeFormat>,
    seed: Seed,
    need_bloom: bool,
    need_fp: bool,
    /// Integer IDs go to the exact tier too (a shared, remote tier is the authority
    /// for them as well: `--shared`, restarts without a state directory).
    ints_exact: bool,
}

impl Classifier {
    /// The classifier for `config`: `seed` keys the hashes; `need_bloom` and
    /// `need_fp` say which of them the tiers in use read.
    pub(super) fn new(
        config: &Config,
        seed: Seed,
        need_bloom: bool,
        need_fp: bool,
    ) -> Result<Classifier> {
        let time_format = match &config.time {
            Some(t) => Some(match &t.format {
                Some(f) => TimeFormat::strftime(f)?,
                None => TimeFormat::Auto,
            }),
            None => None,
        };
        Ok(Classifier {
            fields: Fields::new(config.key.clone(), config.time.as_ref().map(|t| t.field.clone())),
            time_format,
            seed,
            need_bloom,
            need_fp,
            ints_exact: matches!(config.exact, ExactConfig::Redis(_)),
        })
    }

    /// Whether records may be classified out of order, by two threads: not when a
    /// time without a year is read relative to the record before.
    pub(super) fn shareable(&self) -> bool {
        self.time_format.as_ref().is_none_or(|f| !f.lacks_year())
    }

    /// Appends the items of the records at `spans` to `items`. `last_time` is the
    /// last event time read: a time format without a year takes the year that puts
    /// each record closest to the one before (the arrival time for the first).
    pub(super) fn classify(
        &self,
        records: &Records,
        spans: &[Span],
        arrival_ns: i64,
        last_time: &mut Option<i64>,
        items: &mut Vec<Item>,
    ) {
        let mut scratch = self.fields.scratch();
        items.reserve(spans.len());
        for span in spans {
            let content = records.content(span);
            self.fields.read(content, &mut scratch);
            // A time that can be read counts (`last_time`), keyed or not: a JSON
            // time field is only found in a whole JSON record.
            let time_ns = match &self.time_format {
                Some(fmt) => {
                    let near = last_time.unwrap_or(arrival_ns);
                    match self
                        .fields
                        .time(content, &mut scratch)
                        .and_then(|t| fmt.parse_near(t, near))
                    {
                        Some(t) => {
                            *last_time = Some(t);
                            t
                        }
                        None => {
                            items.push(Item { id: Id::Unkeyed, time_ns: 0 });
                            continue;
                        }
                    }
                }
                None => arrival_ns,
            };
            let key = self.fields.key(content, &mut scratch);
            let id = match key {
                None => Id::Unkeyed,
                Some(Key::Int { value, .. }) if int::is_dense_range(value) && !self.ints_exact => {
                    Id::Int(value)
                }
                // A remote tier keeps integer IDs as themselves (bitmaps where they
                // are dense, see `exact::redis`); the bloom still sees their text.
                Some(k @ Key::Int { value, .. }) if self.ints_exact => Id::Str {
                    bloom: if self.need_bloom { self.seed.bloom_hash(k.bytes()) } else { 0 },
                    fp: u128::from(value),
                    int: true,
                },
                Some(k) => {
                    let b = k.bytes();
                    Id::Str {
                        bloom: if self.need_bloom { self.seed.bloom_hash(b) } else { 0 },
                        fp: if self.need_fp { self.seed.fingerprint(b) } else { 0 },
                        int: false,
                    }
                }
            };
            items.push(Item { id, time_ns });
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::key::{KeySpec, KeyType};

    /// A classifier over `key`, reading the time at `time` (RFC 3339 or epoch).
    pub(in crate::pipeline) fn classifier(key: &str, time: Option<&str>) -> Classifier {
        let spec = |k: &str| KeySpec::parse(&[k.to_string()], None, KeyType::Auto).unwrap();
        Classifier {
            fields: Fields::new(spec(key), time.map(spec)),
            time_format: time.map(|_| TimeFormat::Auto),
            seed: Seed::random(),
            need_bloom: true,
            need_fp: true,
            ints_exact: false,
        }
    }

    #[test]
    fn a_year_less_time_is_read_in_order_by_one_thread() {
        let mut c = classifier(".id", Some(".t"));
        c.time_format = Some(TimeFormat::strftime("%b %d %H:%M:%S").unwrap());
        assert!(!c.shareable());
        assert!(classifier("line", None).shareable());
    }
}
