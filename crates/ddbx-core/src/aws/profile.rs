//! The shared config files (`~/.aws/config`, `~/.aws/credentials`): where they are, and
//! whether a profile named on the command line (or by `AWS_PROFILE`) is in them, checked
//! before any call: the SDK would otherwise go on down its chain to the instance
//! metadata service and fail a minute later without saying the profile is missing.

use std::path::PathBuf;

use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

use crate::{Error, Result};

/// The two files profiles are read from, as the SDK finds them.
#[derive(Debug, Clone)]
pub struct Files {
    /// `AWS_CONFIG_FILE`, else `~/.aws/config`.
    pub config: PathBuf,
    /// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    pub credentials: PathBuf,
}

impl Files {
    /// Where the SDK looks, from the environment.
    pub fn locate() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let at = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".aws").join(default))
        };
        Self {
            config: at("AWS_CONFIG_FILE", "config"),
            credentials: at("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        }
    }

    /// `/home/u/.aws/config and /home/u/.aws/credentials`, each said missing when it is.
    pub fn said(&self) -> String {
        let one = |p: &PathBuf| {
            if p.exists() {
                p.display().to_string()
            } else {
                format!("{} (missing)", p.display())
            }
        };
        format!("{} and {}", one(&self.config), one(&self.credentials))
    }
}

/// Refuse a profile that neither file holds, naming the files and the profiles they do
/// hold; `flag` says where the name came from (`--profile or AWS_PROFILE`).
pub async fn check(name: &str, flag: &str) -> Result<()> {
    let files = Files::locate();
    let set =
        aws_config::profile::load(&Fs::real(), &Env::real(), &EnvConfigFiles::default(), None)
            .await
            .map_err(|e| {
                Error::Config(format!(
                    "{flag} {name:?}: the AWS config files cannot be read ({}): {}",
                    files.said(),
                    crate::error::chain(&e)
                ))
            })?;
    if set.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = set.profiles().collect();
    known.sort();
    let there = if known.is_empty() {
        "they hold no profile".to_string()
    } else {
        format!("the profiles there: {}", known.join(", "))
    };
    Err(Error::Config(format!(
        "{flag} {name:?}: no such profile in {} ({there}); fix the name, or add it with `aws configure --profile {name}`",
        files.said()
    )))
}
