//! The config file: model, discovery and validation.
