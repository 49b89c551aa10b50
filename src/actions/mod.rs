//! User intents that change the world, the one authorization point, and the audit log.

use serde::{Deserialize, Serialize};

/// Operator may act; viewer sees everything and can change nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Operator,
    Viewer,
}

impl Mode {
    pub fn badge(self) -> &'static str {
        match self {
            Self::Operator => "OPERATOR",
            Self::Viewer => "VIEWER",
        }
    }
}
