//! One conformance suite, every engine: the same scenarios, each a function of an
//! [`EngineUnderTest`], run against the local engine (dynalite and moto), the EMR engine
//! (the EMR stand-in) and the native engine (fakecloud). Each asserts the same items at
//! the end, the same summary fields and the same exit codes. Where an engine cannot do
//! what a scenario needs, [`EngineUnderTest::cannot`] names the reason, the scenario proves
//! the engine refuses as documented and prints `SKIP conformance::<engine>::<scenario>`;
//! nothing is left out silently.
//!
//! A new engine is done when it passes: add it to [`engines::Engine`] and to the
//! `every_engine!` list below. One engine: `cargo test --workspace --test tests --
//! conformance::native::`; one scenario: `-- conformance::` and its name.

mod engines;

use std::collections::HashMap;

use ddbx_core::report::{RunSummary, TableStatus};

use crate::support::command::{Exit, SummaryExt};
use crate::support::{digests, items};
pub use engines::{Capability, Engine, EngineUnderTest};

/// The scenarios, each run once per engine as `conformance::<engine>::<scenario>`.
macro_rules! every_engine {
    ($($scenario:ident),* $(,)?) => {
        every_engine!(@engine local Local $($scenario),*);
        every_engine!(@engine emr Emr $($scenario),*);
        every_engine!(@engine native Native $($scenario),*);
    };
    (@engine $module:ident $engine:ident $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let engine = super::EngineUnderTest::start(super::Engine::$engine).await;
                    super::$scenario(&engine).await;
                }
            )*
        }
    };
}

every_engine!(
    a_fleet_of_every_type_round_trips_verifies_lists_and_prunes,
    a_killed_export_resumes_to_every_item_once,
    a_stopped_export_is_interrupted_and_holds_the_lock_meanwhile,
    nothing_to_export_is_a_plan_error,
);

/// The fleet: every attribute type (38-digit numbers and the exponent limits, binary of
/// every byte, the three sets, empty strings, lists, maps 20 deep, unicode and
/// line-separator names), items near DynamoDB's 400 KB, a sort key, and an empty table.
struct Fleet {
    tables: Vec<(String, Vec<items::Item>)>,
}

impl Fleet {
    async fn make(e: &EngineUnderTest) -> Self {
        let plain = e.create_table("plain", false).await;
        let sorted = e.create_table("sorted", true).await;
        let empty = e.create_table("empty", false).await;
        let mut plain_items: Vec<_> = (0..30).map(|i| items::mixed(i, false)).collect();
        plain_items.extend((900..902).map(|i| items::incompressible(i, 350_000)));
        let sorted_items: Vec<_> = (100..120).map(|i| items::mixed(i, true)).collect();
        e.put(&plain, &plain_items).await;
        e.put(&sorted, &sorted_items).await;
        Self {
            tables: vec![
                (plain, plain_items),
                (sorted, sorted_items),
                (empty, Vec::new()),
            ],
        }
    }

    /// The fleet and a table of 1,500 items of 1 KB, which the local engine reads slowly
    /// enough to be stopped mid-way.
    async fn make_with_bulk(e: &EngineUnderTest) -> Self {
        let mut fleet = Self::make(e).await;
        let bulk = e.create_table("bulk", false).await;
        let bulk_items: Vec<_> = (0..1500).map(|i| items::sized(i, 1000)).collect();
        e.put(&bulk, &bulk_items).await;
        fleet.tables.push((bulk, bulk_items));
        fleet
    }

    fn items(&self) -> u64 {
        self.tables.iter().map(|(_, i)| i.len() as u64).sum()
    }

    fn names(&self) -> Vec<String> {
        let mut n: Vec<_> = self.tables.iter().map(|(t, _)| t.clone()).collect();
        n.sort();
        n
    }

    /// Each table's items, by table.
    fn by_table(&self) -> HashMap<&str, &[items::Item]> {
        self.tables
            .iter()
            .map(|(t, i)| (t.as_str(), i.as_slice()))
            .collect()
    }
}

/// What every engine's export summary says of a fleet that exported whole.
fn assert_exported(e: &EngineUnderTest, s: &RunSummary, fleet: &Fleet) {
    assert_eq!(s.job, "export");
    assert_eq!(s.status, "succeeded");
    assert_eq!(s.engine.as_deref(), Some(e.engine.name()));
    assert_eq!(s.tables, fleet.tables.len());
    assert_eq!(s.tables_failed, 0);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.tables_with(TableStatus::Succeeded), fleet.names());
    assert!(s.ended_at.is_some());
    match e.cannot(Capability::CountExportedItems) {
        None => {
            assert!(!s.items_unknown);
            assert_eq!(s.items, fleet.items(), "each item counted once");
            for (t, written) in &fleet.tables {
                assert_eq!(s.report(t).items, written.len() as u64, "{t}");
            }
        }
        Some(why) => {
            // The difference is the summary's to say, not the reader's to guess.
            assert!(s.items_unknown, "{why}");
            for (t, _) in &fleet.tables {
                assert!(s.report(t).items_unknown, "{t}: {why}");
            }
        }
    }
}

/// `verify --deep` of the run: every table matches, every item counted, against the tables
/// named with `suffix` (the source tables when none).
fn verify_deep(e: &EngineUnderTest, root: &str, fleet: &Fleet, suffix: Option<&str>) {
    let mut cmd = e.verify(root);
    if let Some(suffix) = suffix {
        for (t, _) in &fleet.tables {
            cmd = cmd.table_map(t, &format!("{t}{suffix}"));
        }
    }
    let verdicts = cmd.run().expect(Exit::Ok).verdicts();
    let mut verified: Vec<_> = verdicts.iter().map(|v| v.source_table.clone()).collect();
    verified.sort();
    assert_eq!(verified, fleet.names(), "every table verified");
    for v in &verdicts {
        let written = fleet.by_table()[v.source_table.as_str()].len() as u64;
        assert!(v.matches, "{v:?}");
        assert_eq!(v.error, None);
        assert_eq!(
            v.export_items, written,
            "{}: verify counts every item",
            v.source_table
        );
        assert_eq!(v.table_items, written, "{}", v.target_table);
        assert_eq!(
            (v.differing, v.missing, v.extra),
            (Some(0), Some(0), Some(0))
        );
    }
}

/// Export the fleet, import it into new tables, `verify --deep`, `list`, export again and
/// `prune --keep-last 1`: the same items, summaries, listings and exit codes on every
/// engine.
async fn a_fleet_of_every_type_round_trips_verifies_lists_and_prunes(e: &EngineUnderTest) {
    let fleet = Fleet::make(e).await;
    let exported = e.export("app").run().expect(Exit::Ok).summary();
    assert_exported(e, &exported, &fleet);
    let root = exported.run_root.clone();
    assert_eq!(e.run_roots(), vec![root.clone()]);

    // Imported into new tables: every item, as written.
    let mut import = e.import(&root);
    for (t, _) in &fleet.tables {
        import = import.table_map(t, &format!("{t}_back"));
    }
    let imported = import.run().expect(Exit::Ok).summary();
    assert_eq!(imported.job, "import");
    assert_eq!(imported.status, "succeeded");
    assert_eq!(imported.engine.as_deref(), Some(e.engine.name()));
    assert_eq!(imported.tables, fleet.tables.len());
    assert_eq!(imported.tables_failed, 0);
    for (t, written) in fleet.by_table() {
        let back = format!("{t}_back");
        assert_eq!(
            imported.report(&back).status,
            TableStatus::Succeeded,
            "{back}"
        );
        assert_eq!(
            digests(&e.scan(&back).await),
            digests(written),
            "{t}: every item back, exactly"
        );
    }
    verify_deep(e, &root, &fleet, Some("_back"));

    // Listed: the one run, its export by this engine.
    let listed = e.list().run().expect(Exit::Ok).listed();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let run = &listed[0];
    assert_eq!(run.run_root, root);
    assert_eq!(run.app, "app");
    assert_eq!(run.backup.status, "success");
    assert_eq!(run.backup.engine.as_deref(), Some(e.engine.name()));
    assert_eq!(run.backup.tables, fleet.tables.len());
    assert_eq!(run.backup.tables_failed, 0);
    assert_eq!(run.backup.items_unknown, exported.items_unknown);
    assert_eq!(run.backup.items, exported.items);

    // A second run (of the fleet: the restored copies go first), then prune keeps the
    // newest successful one only.
    for (t, _) in &fleet.tables {
        e.drop_table(&format!("{t}_back")).await;
    }
    let second = e.export("app").run().expect(Exit::Ok).summary();
    assert_exported(e, &second, &fleet);
    let dry = e
        .prune("app", 1)
        .arg("--dry-run")
        .run()
        .expect(Exit::Ok)
        .pruned();
    assert!(dry.dry_run);
    assert_eq!(dry.deleted(), vec![root.as_str()]);
    assert!(
        !e.keys(&e.prefix_of(&root)).is_empty(),
        "a dry run deletes nothing"
    );
    let pruned = e.prune("app", 1).run().expect(Exit::Ok).pruned();
    assert_eq!(pruned.deleted(), vec![root.as_str()]);
    assert!(pruned.errors.is_empty(), "{:?}", pruned.errors);
    assert!(pruned.objects > 0);
    assert_eq!(
        e.keys(&e.prefix_of(&root)),
        Vec::<String>::new(),
        "the pruned run is gone whole"
    );
    let listed = e.list().run().expect(Exit::Ok).listed();
    let roots: Vec<_> = listed.iter().map(|r| r.run_root.as_str()).collect();
    assert_eq!(roots, vec![second.run_root.as_str()]);
    // What is left still verifies.
    verify_deep(e, &second.run_root, &fleet, None);
}

/// SIGKILL while the engine has work in hand (no flag, no checkpoint, no cleanup), then
/// `export --resume`: every item exactly once, and the run a success like any other.
async fn a_killed_export_resumes_to_every_item_once(e: &EngineUnderTest) {
    let fleet = Fleet::make_with_bulk(e).await;
    let (running, slow) = e.spawn_slow_export("app").await;
    assert_eq!(running.kill().exit, Exit::Killed);
    drop(slow);
    let roots = e.run_roots();
    assert_eq!(roots.len(), 1, "{roots:?}");
    let root = &roots[0];
    let listed = e.list().run().expect(Exit::Ok).listed();
    assert_eq!(
        listed[0].backup.status, "crashed",
        "a killed run is crashed"
    );

    let resumed = e.resume(root).run();
    if let Some(why) = e.cannot(Capability::ResumeExport) {
        let refused = resumed.expect(Exit::Usage);
        assert!(refused.stderr().contains("not resumed"), "{why}");
        e.skip("a_killed_export_resumes_to_every_item_once", why);
        return;
    }
    let s = resumed.expect(Exit::Ok).summary();
    assert_exported(e, &s, &fleet);
    assert_eq!(&s.run_root, root, "the same run, taken up");
    verify_deep(e, root, &fleet, None);
    let listed = e.list().run().expect(Exit::Ok).listed();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].backup.status, "success");
}

/// SIGTERM while the engine has work in hand: while it runs, a second export of the app
/// is refused (exit 2); stopped, it exits 4, its summary and `list` say interrupted, and
/// `export --resume` finishes it.
async fn a_stopped_export_is_interrupted_and_holds_the_lock_meanwhile(e: &EngineUnderTest) {
    let fleet = Fleet::make_with_bulk(e).await;
    let (running, slow) = e.spawn_slow_export("app").await;
    let second = e.export("app").run().expect(Exit::Locked);
    assert!(
        second.stderr().contains("lock"),
        "the second run says why it stops"
    );
    running.sigterm();
    let stopped = running.wait().expect(Exit::TablesFailed).summary();
    drop(slow);
    assert_eq!(stopped.job, "export");
    assert_eq!(stopped.status, "interrupted");
    assert!(stopped.tables_failed > 0);
    assert!(
        !stopped.tables_with(TableStatus::Interrupted).is_empty(),
        "a stopped table is interrupted, not failed: {:?}",
        stopped.table_reports
    );
    assert!(stopped.tables_with(TableStatus::Failed).is_empty());
    let listed = e.list().run().expect(Exit::Ok).listed();
    assert_eq!(listed.len(), 1, "the refused run left nothing: {listed:?}");
    assert_eq!(listed[0].backup.status, "interrupted");
    assert_eq!(listed[0].run_root, stopped.run_root);

    let resumed = e.resume(&stopped.run_root).run();
    if let Some(why) = e.cannot(Capability::ResumeExport) {
        let refused = resumed.expect(Exit::Usage);
        assert!(refused.stderr().contains("not resumed"), "{why}");
        e.skip(
            "a_stopped_export_is_interrupted_and_holds_the_lock_meanwhile (its resume)",
            why,
        );
        return;
    }
    assert_exported(e, &resumed.expect(Exit::Ok).summary(), &fleet);
    verify_deep(e, &stopped.run_root, &fleet, None);
}

/// A selection that matches no table: exit 3 and no run, whatever the engine.
async fn nothing_to_export_is_a_plan_error(e: &EngineUnderTest) {
    e.create_table("only", false).await;
    let o = e
        .export_of("app", &format!("{}nothing*", e.env().prefix))
        .run()
        .expect(Exit::Plan);
    assert!(!o.stderr().is_empty(), "it says why");
    assert_eq!(e.run_roots(), Vec::<String>::new(), "no run written");
}
