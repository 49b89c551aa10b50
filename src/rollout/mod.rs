//! TEMPORARY STUB (replaced by the real engine at merge).
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("{0}")]
    Refused(String),
}
