//! Incremental chains: per table of an app, the native exports that rebuild it, in time
//! order (a full export, then incremental windows). Kept under the app's folder
//! (`<base>/<region>/<app>/_chains/<table>.json`, beside the app's lock), extended by each
//! successful native export, and read by `import --until/--at` and `verify --at` to
//! replay the table to a point in time.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::store::Location;
use crate::{Error, Result};

/// The shortest window AWS exports incrementally.
pub const MIN_WINDOW: Duration = Duration::minutes(15);
/// The longest.
pub const MAX_WINDOW: Duration = Duration::hours(24);

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// The table as of `to`.
    Full,
    /// The changes of `[from, to)`.
    Incremental,
}

/// One export of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Full or incremental.
    pub kind: LinkKind,
    /// The run that made it (its root's URL).
    pub run: String,
    /// Start of the window (incremental), inclusive.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<DateTime<Utc>>,
    /// The instant the table is at once this link is applied (a full export's ExportTime,
    /// a window's end, exclusive).
    pub to: DateTime<Utc>,
    /// The export's folder (`.../<table>/AWSDynamoDB/<export id>`).
    pub export: String,
    /// Its ARN.
    pub export_arn: String,
}

/// A table's chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    /// The table.
    pub table: String,
    /// Every export, in time order.
    pub links: Vec<Link>,
}

/// Where an app's chains are.
pub fn chains_dir(app_dir: &Location) -> Location {
    app_dir.child("_chains")
}

/// The app's folder of a run root (`<base>/<region>/<app>`, four levels above
/// `YYYY/MM/DD/HH_MM.SS`).
pub fn app_dir_of_run(run_dir: &Location) -> Location {
    run_dir.up(4)
}

/// The tables that have a chain in an app's folder.
pub async fn chained_tables(app_dir: &Location) -> Result<Vec<String>> {
    let dir = chains_dir(app_dir);
    let listed = dir.list_folder().await?;
    let mut tables: Vec<String> = listed
        .objects
        .iter()
        .filter_map(|o| {
            o.location
                .filename()?
                .strip_suffix(".json")
                .map(str::to_string)
        })
        .collect();
    tables.sort();
    Ok(tables)
}

impl Chain {
    /// The chain of `table` under the app's folder, if any.
    pub async fn load(app_dir: &Location, table: &str) -> Result<Option<Chain>> {
        let dir = chains_dir(app_dir);
        let path = dir.join(&format!("{table}.json"));
        match dir.get_optional(&path).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Corrupt {
                    file: dir.url_of(&path),
                    message: format!("not a chain of exports: {e}"),
                }),
        }
    }

    /// Write it back.
    pub async fn save(&self, app_dir: &Location) -> Result<()> {
        chains_dir(app_dir)
            .put_json(&format!("{}.json", self.table), self)
            .await
    }

    /// The instant the chain has reached (its last link's).
    pub fn last_point(&self) -> Option<DateTime<Utc>> {
        self.links.last().map(|l| l.to)
    }

    /// Add links, keeping time order (a link already there, by export, is not added twice).
    pub fn extend(&mut self, links: impl IntoIterator<Item = Link>) {
        for l in links {
            if !self.links.iter().any(|x| x.export == l.export) {
                self.links.push(l);
            }
        }
        self.links
            .sort_by_key(|l| (l.to, l.kind == LinkKind::Incremental));
    }

    /// What rebuilds the table as of `at`: a full export at or before `at`, then every
    /// window after it that ends at or before `at`, in order. The instant reached is the
    /// last link's `to` (a window is applied whole or not at all).
    ///
    /// A window that ends at or before the table's point is passed over; one that starts
    /// before it and ends after (it overlaps the full export) is applied, since the items
    /// it leaves get their state at its end; one that starts after it is a gap, refused.
    /// The latest full export from which the windows follow on exactly is taken; when
    /// every one needs an overlap, the latest.
    pub fn replay_to(&self, at: DateTime<Utc>) -> std::result::Result<Vec<&Link>, String> {
        let bases: Vec<usize> = (0..self.links.len())
            .rev()
            .filter(|&i| self.links[i].kind == LinkKind::Full && self.links[i].to <= at)
            .collect();
        let Some(&latest) = bases.first() else {
            return Err(format!(
                "table {}: no full export at or before {at} in its chain (its first point is {})",
                self.table,
                self.links
                    .first()
                    .map_or("none".to_string(), |l| l.to.to_string())
            ));
        };
        for &base in &bases {
            if let Ok((links, false)) = self.replay_from(base, at) {
                return Ok(links);
            }
        }
        let (links, _) = self.replay_from(latest, at)?;
        tracing::warn!(table = %self.table, base = %self.links[latest].to, "a window of the replay starts before the full export it is applied over");
        Ok(links)
    }

    /// The links from the full export at `base` up to `at`, and whether a window overlaps.
    fn replay_from(
        &self,
        base: usize,
        at: DateTime<Utc>,
    ) -> std::result::Result<(Vec<&Link>, bool), String> {
        let mut out = vec![&self.links[base]];
        let mut reached = self.links[base].to;
        let mut overlaps = false;
        for l in &self.links[base + 1..] {
            if l.kind != LinkKind::Incremental || l.to > at || l.to <= reached {
                continue;
            }
            match l.from {
                Some(from) if from <= reached => overlaps |= from < reached,
                _ => {
                    return Err(format!(
                        "table {}: the chain has a gap: a window starts at {} but the table is at {reached}",
                        self.table,
                        l.from.map_or("?".to_string(), |f| f.to_string())
                    ))
                }
            }
            reached = l.to;
            out.push(l);
        }
        Ok((out, overlaps))
    }
}

/// What a table's incremental run exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A full export (why, when there is a chain it cannot continue).
    Full(String),
    /// These windows, in order.
    Windows(Vec<(DateTime<Utc>, DateTime<Utc>)>),
    /// Nothing this run (why).
    Deferred(String),
}

/// Plan a table's incremental export up to `instant`: windows from the chain's last point,
/// each at most 24 hours and all of one length (so none is under 15 minutes); a full export
/// when there is no chain, or its last point is before `earliest` (the table's earliest
/// restorable time: point-in-time recovery was reset, or the point left the window);
/// deferred when under 15 minutes have passed.
pub fn next(
    chain: Option<&Chain>,
    earliest: Option<DateTime<Utc>>,
    instant: DateTime<Utc>,
) -> Next {
    let Some(last) = chain.and_then(Chain::last_point) else {
        return Next::Full(
            "no earlier export of this table in the app's chain: a full export starts one".into(),
        );
    };
    if let Some(e) = earliest.filter(|e| *e > last) {
        return Next::Full(format!(
            "the chain's last point {last} is before the earliest restorable time {e} (point-in-time recovery was turned off and on, or the point left the recovery window): a full export starts a new chain"
        ));
    }
    let span = instant - last;
    if span < MIN_WINDOW {
        return Next::Deferred(format!(
            "{} since the chain's last point {last}: incremental windows are 15 minutes at least; deferred to the next run",
            humantime(span)
        ));
    }
    Next::Windows(windows(last, instant))
}

/// `[last, instant)` in windows of one length, each at most 24 hours (a minute short of
/// it, so that boundaries rounded up to whole seconds never take one past it); each
/// boundary is placed from `last`, not from the window before, so rounding never adds up.
pub fn windows(last: DateTime<Utc>, instant: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let span = (instant - last).num_milliseconds().max(0) as u64;
    let longest = (MAX_WINDOW - Duration::minutes(1)).num_milliseconds() as u64;
    let n = span.div_ceil(longest).max(1);
    let boundary = |i: u64| {
        let exact = last + Duration::milliseconds((span * i / n) as i64);
        let down = exact.duration_trunc(Duration::seconds(1)).unwrap_or(exact);
        if down == exact {
            exact
        } else {
            down + Duration::seconds(1)
        }
    };
    let mut windows = Vec::new();
    let mut from = last;
    for i in 1..=n {
        let to = if i == n { instant } else { boundary(i) };
        windows.push((from, to));
        from = to;
    }
    windows
}

fn humantime(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    format!("{}m{:02}s", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn link(kind: LinkKind, from: Option<&str>, to: &str) -> Link {
        Link {
            kind,
            run: format!("run-{to}"),
            from: from.map(t),
            to: t(to),
            export: format!("x/{to}"),
            export_arn: format!("arn/{to}"),
        }
    }

    fn chain(links: Vec<Link>) -> Chain {
        Chain {
            table: "T".into(),
            links,
        }
    }

    #[test]
    fn windows_start_at_the_last_point_and_end_at_the_instant() {
        let c = chain(vec![link(LinkKind::Full, None, "2026-12-01T10:00:00Z")]);
        assert_eq!(
            next(Some(&c), None, t("2026-12-01T10:20:00Z")),
            Next::Windows(vec![(t("2026-12-01T10:00:00Z"), t("2026-12-01T10:20:00Z"))])
        );
        // Over a day: equal windows of at most 24 hours, none short.
        let Next::Windows(w) = next(Some(&c), None, t("2026-12-02T10:10:00Z")) else {
            panic!()
        };
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].0, t("2026-12-01T10:00:00Z"));
        assert_eq!(w[0].1, w[1].0);
        assert_eq!(w[1].1, t("2026-12-02T10:10:00Z"));
        assert!(w
            .iter()
            .all(|(a, b)| *b - *a >= MIN_WINDOW && *b - *a <= MAX_WINDOW));
    }

    #[test]
    fn no_chain_a_reset_or_a_short_wait_say_so() {
        let c = chain(vec![link(LinkKind::Full, None, "2026-12-01T10:00:00Z")]);
        assert!(matches!(
            next(None, None, t("2026-12-01T11:00:00Z")),
            Next::Full(_)
        ));
        let Next::Full(why) = next(
            Some(&c),
            Some(t("2026-12-01T10:30:00Z")),
            t("2026-12-01T11:00:00Z"),
        ) else {
            panic!()
        };
        assert!(why.contains("earliest restorable"), "{why}");
        let Next::Deferred(why) = next(Some(&c), None, t("2026-12-01T10:14:59Z")) else {
            panic!()
        };
        assert!(why.contains("14m59s") && why.contains("deferred"), "{why}");
    }

    #[test]
    fn a_replay_takes_the_last_full_export_then_whole_windows_up_to_the_time() {
        let c = chain(vec![
            link(LinkKind::Full, None, "2026-12-01T10:00:00Z"),
            link(
                LinkKind::Incremental,
                Some("2026-12-01T10:00:00Z"),
                "2026-12-01T10:20:00Z",
            ),
            link(
                LinkKind::Incremental,
                Some("2026-12-01T10:20:00Z"),
                "2026-12-01T10:40:00Z",
            ),
            link(LinkKind::Full, None, "2026-12-01T12:00:00Z"),
        ]);
        let tos = |at: &str| -> Vec<DateTime<Utc>> {
            c.replay_to(t(at)).unwrap().iter().map(|l| l.to).collect()
        };
        assert_eq!(
            tos("2026-12-01T10:30:00Z"),
            vec![t("2026-12-01T10:00:00Z"), t("2026-12-01T10:20:00Z")]
        );
        assert_eq!(tos("2026-12-01T11:00:00Z").len(), 3);
        assert_eq!(tos("2026-12-01T12:00:00Z"), vec![t("2026-12-01T12:00:00Z")]);
        assert!(c.replay_to(t("2026-12-01T09:00:00Z")).is_err());
        // A missing window is a gap, not silently skipped.
        let gap = chain(vec![
            link(LinkKind::Full, None, "2026-12-01T10:00:00Z"),
            link(
                LinkKind::Incremental,
                Some("2026-12-01T10:20:00Z"),
                "2026-12-01T10:40:00Z",
            ),
        ]);
        assert!(gap
            .replay_to(t("2026-12-01T11:00:00Z"))
            .unwrap_err()
            .contains("gap"));
    }

    #[test]
    fn extending_keeps_time_order_and_never_doubles() {
        let mut c = chain(vec![link(LinkKind::Full, None, "2026-12-01T10:00:00Z")]);
        let w = link(
            LinkKind::Incremental,
            Some("2026-12-01T10:00:00Z"),
            "2026-12-01T10:20:00Z",
        );
        c.extend([w.clone()]);
        c.extend([w]);
        assert_eq!(c.links.len(), 2);
        assert_eq!(c.last_point(), Some(t("2026-12-01T10:20:00Z")));
    }

    #[test]
    fn an_overlapping_window_is_applied_a_passed_one_skipped_and_an_exact_base_preferred() {
        let w = |from: &str, to: &str| link(LinkKind::Incremental, Some(from), to);
        // A full export taken (with an older --export-time) inside a window.
        let c = chain(vec![
            link(LinkKind::Full, None, "2026-12-01T10:00:00Z"),
            w("2026-12-01T10:00:00Z", "2026-12-01T10:20:00Z"),
            link(LinkKind::Full, None, "2026-12-01T10:30:00Z"),
            w("2026-12-01T10:20:00Z", "2026-12-01T10:40:00Z"),
        ]);
        let tos = |c: &Chain, at: &str| -> Vec<DateTime<Utc>> {
            c.replay_to(t(at)).unwrap().iter().map(|l| l.to).collect()
        };
        // The first full export and both windows follow on exactly: taken over the later one.
        assert_eq!(
            tos(&c, "2026-12-01T11:00:00Z"),
            vec![
                t("2026-12-01T10:00:00Z"),
                t("2026-12-01T10:20:00Z"),
                t("2026-12-01T10:40:00Z")
            ]
        );
        // Only the later full export: the window over it is applied, the one before skipped.
        let only = chain(c.links[2..].to_vec());
        assert_eq!(
            tos(&only, "2026-12-01T11:00:00Z"),
            vec![t("2026-12-01T10:30:00Z"), t("2026-12-01T10:40:00Z")]
        );
        // A window ending at the full export's instant is passed over.
        let same = chain(vec![
            w("2026-12-01T09:40:00Z", "2026-12-01T10:00:00Z"),
            link(LinkKind::Full, None, "2026-12-01T10:00:00Z"),
            w("2026-12-01T10:00:00Z", "2026-12-01T10:20:00Z"),
        ]);
        assert_eq!(
            tos(&same, "2026-12-01T11:00:00Z"),
            vec![t("2026-12-01T10:00:00Z"), t("2026-12-01T10:20:00Z")]
        );
        // A gap is still a gap.
        let gap = chain(vec![
            link(LinkKind::Full, None, "2026-12-01T10:30:00Z"),
            w("2026-12-01T10:40:00Z", "2026-12-01T11:00:00Z"),
        ]);
        assert!(gap
            .replay_to(t("2026-12-01T11:00:00Z"))
            .unwrap_err()
            .contains("gap"));
    }

    #[test]
    fn spans_just_under_whole_days_stay_within_a_day() {
        // The audit's cases: whole-second spans of n days less a second, and ms points.
        let last = t("2026-12-01T10:00:00Z");
        for days in 1..=6 {
            for less in [1, 0] {
                for ms in [0, 1, 999] {
                    let from = last + Duration::milliseconds(ms);
                    let instant = last + Duration::days(days) - Duration::seconds(less);
                    check_windows(from, instant).unwrap();
                }
            }
        }
    }

    fn check_windows(
        last: DateTime<Utc>,
        instant: DateTime<Utc>,
    ) -> std::result::Result<(), TestCaseError> {
        let c = Chain {
            table: "T".into(),
            links: vec![Link {
                to: last,
                ..link(LinkKind::Full, None, "2026-12-01T10:00:00Z")
            }],
        };
        let Next::Windows(w) = next(Some(&c), None, instant) else {
            panic!()
        };
        prop_assert_eq!(w[0].0, last);
        prop_assert_eq!(w.last().unwrap().1, instant);
        for pair in w.windows(2) {
            prop_assert_eq!(pair[0].1, pair[1].0);
            prop_assert_eq!(pair[0].1.timestamp_subsec_nanos(), 0, "whole seconds");
        }
        for (a, b) in &w {
            prop_assert!(
                *b - *a >= MIN_WINDOW && *b - *a <= MAX_WINDOW,
                "{} to {}: {}",
                a,
                b,
                *b - *a
            );
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn windows_cover_the_span_exactly_within_aws_limits(
            start_ms in 0i64..86_400_000,
            span_ms in MIN_WINDOW.num_milliseconds()..Duration::days(30).num_milliseconds(),
        ) {
            let last = t("2026-12-01T10:00:00Z") + Duration::milliseconds(start_ms);
            check_windows(last, last + Duration::milliseconds(span_ms))?;
        }
    }
}
