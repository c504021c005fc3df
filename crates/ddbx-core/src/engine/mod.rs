//! Engines do a run's work: the local engine in this process, the EMR engine on EMR
//! clusters, the native engine through DynamoDB's own export and import services. Each lives in its own folder and implements [`Engine`] (`interface.rs`): it
//! takes the plan and the tables and returns a report per table, counting progress as it
//! goes; it never parses flags or prints. The run around it (lock, flags, plans) is
//! `run::lifecycle`, the same for every engine.
//!
//! Adding an engine: a folder here implementing [`Engine`], a variant of [`EngineChoice`],
//! and the CLI flags for its settings.

pub mod emr;
pub mod interface;
pub mod local;
pub mod native;

pub use interface::{
    Engine, ExportWork, ImportTable, ImportWork, ReadyTable, SourceCheck, SourceChecked,
};

use emr::EmrEngine;
use local::LocalEngine;
use native::NativeEngine;

/// The engine a run uses, with its settings.
#[derive(Debug, Clone)]
pub enum EngineChoice {
    /// In this process.
    Local(LocalEngine),
    /// On EMR clusters.
    Emr(Box<EmrEngine>),
    /// DynamoDB's export and import services.
    Native(NativeEngine),
}

impl Default for EngineChoice {
    fn default() -> Self {
        Self::Local(LocalEngine::default())
    }
}

impl EngineChoice {
    /// Check the engine's numeric settings against their ranges (`crate::bounds`).
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            Self::Local(e) => e.validate(),
            Self::Emr(_) | Self::Native(_) => Ok(()),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &dyn Engine {
        match self {
            Self::Local(e) => e,
            Self::Emr(e) => e.as_ref(),
            Self::Native(e) => e,
        }
    }

    /// The engine that continues a run whose plan recorded `recorded` of its engine's
    /// settings: those settings kept, a setting given that contradicts them refused
    /// (`plan_url` names the plan).
    pub fn resumed(
        &self,
        recorded: Option<&serde_json::Value>,
        plan_url: &str,
    ) -> crate::Result<EngineChoice> {
        Ok(match self {
            Self::Native(e) => Self::Native(e.resumed(recorded, plan_url)?),
            other => other.clone(),
        })
    }
}
