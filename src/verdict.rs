//! Verdicts and what the sink does with each (`--emit`, the policies).
//!
//! Every record gets exactly one [`Verdict`]; [`decide`] turns it into exactly one
//! [`Action`]. Counting both in `Stats` is what makes conservation checkable:
//! `records_in = emitted + suppressed + dropped + rejected`.

use crate::config::{Disposition, EmitConfig, EmitMode, OnExactError, OnLate, Policies};

/// What the pipeline concluded about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first occurrence of its ID in the retained windows.
    New,
    /// Its ID was seen before in a retained window up to its own.
    Dup,
    /// It has no key (field missing, invalid JSON, no regex match, no time).
    Unkeyed,
    /// It is older than every retained window.
    Late,
    /// It is longer than `--max-record-bytes`.
    Oversized,
    /// The exact tier could not confirm a bloom *maybe*.
    Unconfirmed,
}

/// What happens to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Written to stdout; with `--tag`, marked as duplicate (`Some(true)`) or not.
    Write {
        /// The tag value to insert, if tagging.
        tag: Option<bool>,
    },
    /// Not written because of `--emit` (duplicates under `new`, new records under `dups`).
    Suppress,
    /// Dropped by a policy.
    Drop,
    /// Written to the reject file.
    Reject,
}

/// The action for a verdict.
///
/// `--emit` picks among the records: `new` writes the first occurrences, `dups`
/// only the duplicates, `all` both. A record that is neither (unkeyed, late,
/// oversized) follows its policy under `new` and `all`; `--emit dups` asks for
/// duplicates alone, so it is not written there (counted as suppressed), while
/// `drop` and `reject` still apply. Under `--emit all --tag`, every record written
/// whole is tagged, `false` unless it is a duplicate.
#[inline]
pub fn decide(v: Verdict, p: &Policies, emit: &EmitConfig) -> Action {
    let classified = |dup: bool| match emit.mode {
        EmitMode::New if dup => Action::Suppress,
        EmitMode::Dups if !dup => Action::Suppress,
        EmitMode::All => Action::Write { tag: emit.tag.as_ref().map(|_| dup) },
        _ => Action::Write { tag: None },
    };
    let by_disposition = |d: Disposition| match d {
        Disposition::Emit => classified(false),
        Disposition::Drop => Action::Drop,
        Disposition::Reject => Action::Reject,
    };
    match v {
        Verdict::New => classified(false),
        Verdict::Dup => classified(true),
        Verdict::Unkeyed => by_disposition(p.on_unkeyed),
        Verdict::Late => match p.on_late {
            OnLate::Emit => classified(false),
            OnLate::Drop => Action::Drop,
        },
        // Never deduplicated (it is not buffered whole), and written in parts as
        // it comes, so never tagged.
        Verdict::Oversized => match by_disposition(p.on_oversized) {
            Action::Write { .. } => Action::Write { tag: None },
            action => action,
        },
        // `open`: taken as new (a possible duplicate, never a lost log); `closed`:
        // dropped and counted as such, whatever `--emit` is.
        Verdict::Unconfirmed => match p.on_exact_error {
            OnExactError::Open | OnExactError::Abort => classified(false),
            OnExactError::Closed => Action::Drop,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_modes() {
        let p = Policies::default();
        let new = EmitConfig::default();
        assert_eq!(decide(Verdict::New, &p, &new), Action::Write { tag: None });
        assert_eq!(decide(Verdict::Dup, &p, &new), Action::Suppress);
        assert_eq!(decide(Verdict::Unkeyed, &p, &new), Action::Write { tag: None });
        let dups = EmitConfig { mode: EmitMode::Dups, ..EmitConfig::default() };
        assert_eq!(decide(Verdict::New, &p, &dups), Action::Suppress);
        assert_eq!(decide(Verdict::Dup, &p, &dups), Action::Write { tag: None });
        let all =
            EmitConfig { mode: EmitMode::All, tag: Some("dup".into()), ..EmitConfig::default() };
        assert_eq!(decide(Verdict::Dup, &p, &all), Action::Write { tag: Some(true) });
        assert_eq!(decide(Verdict::New, &p, &all), Action::Write { tag: Some(false) });
    }

    #[test]
    fn policies() {
        let p = Policies {
            on_unkeyed: Disposition::Reject,
            on_oversized: Disposition::Drop,
            on_late: OnLate::Drop,
            on_exact_error: OnExactError::Closed,
        };
        let e = EmitConfig::default();
        assert_eq!(decide(Verdict::Unkeyed, &p, &e), Action::Reject);
        assert_eq!(decide(Verdict::Late, &p, &e), Action::Drop);
        assert_eq!(decide(Verdict::Oversized, &p, &e), Action::Drop);
        let reject = Policies { on_oversized: Disposition::Reject, ..p };
        assert_eq!(decide(Verdict::Oversized, &reject, &e), Action::Reject);
        for mode in [EmitMode::New, EmitMode::Dups, EmitMode::All] {
            let e = EmitConfig { mode, tag: Some("dup".into()), ..EmitConfig::default() };
            assert_eq!(decide(Verdict::Unconfirmed, &p, &e), Action::Drop, "{mode:?}");
        }
        let p = Policies::default();
        assert_eq!(decide(Verdict::Unconfirmed, &p, &e), Action::Write { tag: None });
    }

    /// `--emit dups` writes duplicates only; `--emit all --tag` tags every record
    /// it writes whole. Records that are neither new nor duplicates follow their
    /// policy otherwise.
    #[test]
    fn records_without_a_verdict_of_their_own_under_each_emit_mode() {
        let p = Policies::default();
        let dups = EmitConfig { mode: EmitMode::Dups, ..EmitConfig::default() };
        let all =
            EmitConfig { mode: EmitMode::All, tag: Some("dup".into()), ..EmitConfig::default() };
        for v in [Verdict::Unkeyed, Verdict::Late, Verdict::Unconfirmed] {
            assert_eq!(decide(v, &p, &dups), Action::Suppress, "{v:?}");
            assert_eq!(decide(v, &p, &all), Action::Write { tag: Some(false) }, "{v:?}");
        }
        assert_eq!(decide(Verdict::Oversized, &p, &dups), Action::Suppress);
        assert_eq!(decide(Verdict::Oversized, &p, &all), Action::Write { tag: None });
        let rejecting = Policies {
            on_unkeyed: Disposition::Reject,
            on_oversized: Disposition::Reject,
            ..Policies::default()
        };
        assert_eq!(decide(Verdict::Unkeyed, &rejecting, &dups), Action::Reject);
        assert_eq!(decide(Verdict::Oversized, &rejecting, &dups), Action::Reject);
    }
}
