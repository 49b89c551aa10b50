//! Runbooks: markdown with YAML front matter, matched to alerts.
