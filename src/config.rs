//! TEMPORARY STUB (replaced at merge).
use std::path::{Path, PathBuf};

use crate::actions::Mode;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Clone, Debug)]
pub struct Paths {
    pub config_file: PathBuf,
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
}
impl Paths {
    pub fn discover(explicit: Option<PathBuf>) -> Result<Paths, ConfigError> {
        let d = directories::ProjectDirs::from("", "", "fleetdeck")
            .ok_or_else(|| ConfigError("no home".into()))?;
        let config_file = explicit.unwrap_or_else(|| d.config_dir().join("config.toml"));
        Ok(Paths {
            config_dir: config_file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            config_file,
            data_dir: d.data_dir().into(),
            state_dir: d.state_dir().unwrap_or(d.data_dir()).into(),
        })
    }
}
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub mode: Option<Mode>,
    pub theme: Option<String>,
    pub audit: AuditConfig,
}
#[derive(Clone, Debug, Default)]
pub struct AuditConfig {
    pub file: Option<PathBuf>,
}
impl Config {
    pub fn load(_paths: &Paths, _explicit: bool) -> Result<Option<Config>, ConfigError> {
        Ok(None)
    }
    pub fn has_real_sources(&self) -> bool {
        false
    }
}
