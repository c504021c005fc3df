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

    /// What rebuilds the table as of `at`: the last full export at or before `at`, then
    /// every window after it that ends at or before `at`, in order. The instant reached is
    /// the last link's `to` (a window is applied whole or not at all).
    pub fn replay_to(&self, at: DateTime<Utc>) -> std::result::Result<Vec<&Link>, String> {
        let Some(base) = self
            .links
            .iter()
            .rposition(|l| l.kind == LinkKind::Full && l.to <= at)
        else {
            return Err(format!(
                "table {}: no full export at or before {at} in its chain (its first point is {})",
                self.table,
                self.links
                    .first()
                    .map_or("none".to_string(), |l| l.to.to_string())
            ));
        };
        let mut out = vec![&self.links[base]];
        let mut reached = self.links[base].to;
        for l in &self.links[base + 1..] {
            if l.kind != LinkKind::Incremental || l.to > at {
                continue;
            }
            if l.from != Some(reached) {
                return Err(format!(
                    "table {}: the chain has a gap: a window starts at {} but the table is at {reached}",
                    self.table,
                    l.from.map_or("?".to_string(), |f| f.to_string())
                ));
            }
            reached = l.to;
            out.push(l);
        }
        Ok(out)
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
    let n = (span.num_milliseconds().max(0) as u64)
        .div_ceil(MAX_WINDOW.num_milliseconds() as u64)
        .max(1) as i64;
    let step = Duration::milliseconds(span.num_milliseconds() / n);
    let mut windows = Vec::new();
    let mut from = last;
    for i in 0..n {
        let to = if i == n - 1 {
            instant
        } else {
            (from + step)
                .duration_trunc(Duration::seconds(1))
                .unwrap_or(from + step)
        };
        windows.push((from, to));
        from = to;
    }
    Next::Windows(windows)
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

    proptest! {
        #[test]
        fn windows_cover_the_span_exactly_within_aws_limits(minutes in 15i64..(60 * 24 * 10)) {
            let last = t("2026-12-01T10:00:00Z");
            let c = chain(vec![link(LinkKind::Full, None, "2026-12-01T10:00:00Z")]);
            let instant = last + Duration::minutes(minutes);
            let Next::Windows(w) = next(Some(&c), None, instant) else { panic!() };
            prop_assert_eq!(w[0].0, last);
            prop_assert_eq!(w.last().unwrap().1, instant);
            for pair in w.windows(2) {
                prop_assert_eq!(pair[0].1, pair[1].0);
            }
            for (a, b) in &w {
                prop_assert!(*b - *a >= MIN_WINDOW && *b - *a <= MAX_WINDOW, "{a} {b}");
            }
        }
    }
}
