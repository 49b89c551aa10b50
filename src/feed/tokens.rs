//! Who may read the feed and who may act through it: a file of bearer tokens, one per
//! line, `NAME ROLE sha256:HEX`. The file holds the SHA-256 of each token, never the
//! token itself; `fleetdeck serve token new` makes a token, prints it once and appends its
//! line. Tokens are 32 random bytes, so a plain SHA-256 is as hard to reverse as the token
//! is to guess.
//!
//! ```text
//! # name      role      hash of the token, or client-cert
//! alice       operator  sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! grafana     viewer    sha256:...
//! ops-laptop  operator  client-cert
//! ```
//!
//! `client-cert`: a client certificate signed by the server's `--client-ca` whose subject's
//! common name is NAME, instead of a token.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::rand::SecureRandom;

use crate::actions::Mode;

/// What a token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub name: String,
    pub role: Mode,
}

/// The tokens a server accepts.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<(Grant, Credential)>,
}

/// What proves a grant: a token (its hash) or a client certificate of that name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Credential {
    Hash([u8; 32]),
    ClientCert,
}

/// A tokens file that cannot be used, with the file and line.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    #[error("cannot write the tokens file {path}: {error}")]
    Write { path: String, error: std::io::Error },
    #[error("no random bytes for a token from the operating system")]
    Random,
}

impl Tokens {
    /// Reads the tokens file at `path`; every bad line is an error naming it.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|error| TokensError::Read {
            path: path.display().to_string(),
            error,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Reads the text of a tokens file; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, TokensError> {
        let mut entries: Vec<(Grant, Credential)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let fail = |message: String| TokensError::Line {
                path: path.to_string(),
                line: i + 1,
                message,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, role, hash] = fields[..] else {
                return Err(fail(format!(
                    "expected `NAME ROLE sha256:HEX`, found {} fields",
                    fields.len()
                )));
            };
            check_name(name).map_err(fail)?;
            let role = parse_role(role).map_err(fail)?;
            let digest = if hash == "client-cert" {
                Credential::ClientCert
            } else {
                Credential::Hash(parse_hash(hash).map_err(fail)?)
            };
            if entries.iter().any(|(g, _)| g.name == name) {
                return Err(fail(format!("the name {name} is given twice")));
            }
            if digest != Credential::ClientCert && entries.iter().any(|(_, d)| *d == digest) {
                return Err(fail(format!("{name}: this token hash is given twice")));
            }
            entries.push((
                Grant {
                    name: name.to_string(),
                    role,
                },
                digest,
            ));
        }
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The grant of a presented token, if it is one of the file's.
    pub fn check(&self, token: &str) -> Option<&Grant> {
        let digest = sha256(token);
        self.entries
            .iter()
            .find(|(_, d)| matches!(d, Credential::Hash(h) if same(h, &digest)))
            .map(|(g, _)| g)
    }

    /// The grant of a client certificate whose subject's common name is `name` (the TLS
    /// layer has checked it was signed by the server's `--client-ca`).
    pub fn check_client_cert(&self, name: &str) -> Option<&Grant> {
        self.entries
            .iter()
            .find(|(g, d)| *d == Credential::ClientCert && g.name == name)
            .map(|(g, _)| g)
    }

    /// Whether any grant is by client certificate.
    pub fn has_client_certs(&self) -> bool {
        self.entries
            .iter()
            .any(|(_, d)| *d == Credential::ClientCert)
    }
}

/// A new token for `name` with `role`: appended to the file at `path` (created if
/// missing, readable by its owner only) as its hash; the token itself is returned, to be
/// printed once.
pub fn new_token(path: &Path, name: &str, role: Mode) -> Result<String, TokensError> {
    let fail_line = |message: String| TokensError::Line {
        path: path.display().to_string(),
        line: 0,
        message,
    };
    check_name(name).map_err(fail_line)?;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Tokens::parse(&text, &path.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tokens::default(),
        Err(error) => {
            return Err(TokensError::Read {
                path: path.display().to_string(),
                error,
            });
        }
    };
    if existing.entries.iter().any(|(g, _)| g.name == name) {
        return Err(fail_line(format!(
            "a token named {name} exists already; remove its line first to replace it"
        )));
    }
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| TokensError::Random)?;
    let token = format!(
        "fdk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let line = format!("{name} {} sha256:{}\n", role.as_str(), hex(&sha256(&token)));
    append(path, &line).map_err(|error| TokensError::Write {
        path: path.display().to_string(),
        error,
    })?;
    Ok(token)
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

/// Reads a client's token from `path` (its first non-empty line).
pub fn read_token_file(path: &PathBuf) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("the token file {} is empty", path.display()))
}

fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
    {
        Ok(())
    } else {
        Err(format!(
            "token name {name:?}: use 1 to 64 letters, digits, '.', '_', '@' or '-'"
        ))
    }
}

fn parse_role(role: &str) -> Result<Mode, String> {
    match role {
        "viewer" => Ok(Mode::Viewer),
        "operator" => Ok(Mode::Operator),
        other => Err(format!(
            "role {other:?}: a token is a `viewer` or an `operator`"
        )),
    }
}

fn parse_hash(hash: &str) -> Result<[u8; 32], String> {
    let hex_text = hash.strip_prefix("sha256:").ok_or_else(|| {
        format!(
            "{hash:?} is not a hash: write `sha256:` and 64 hex digits (never the token), or \
             `client-cert`"
        )
    })?;
    if hex_text.len() != 64 {
        return Err(format!(
            "sha256 hash has {} hex digits, not 64",
            hex_text.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex_text[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("sha256 hash {hex_text:?} has a character that is not hex"))?;
    }
    Ok(out)
}

/// Compares two digests in a time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn sha256(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_is_accepted_with_its_role_and_only_its_hash_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens");
        let alice = new_token(&path, "alice", Mode::Operator).expect("alice");
        let grafana = new_token(&path, "grafana", Mode::Viewer).expect("grafana");
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(!text.contains(&alice) && !text.contains(&grafana), "{text}");
        assert!(alice.starts_with("fdk_") && alice.len() > 40);
        let tokens = Tokens::load(&path).expect("loads");
        assert_eq!(tokens.len(), 2);
        let grant = tokens.check(&alice).expect("alice accepted");
        assert_eq!((grant.name.as_str(), grant.role), ("alice", Mode::Operator));
        let grant = tokens.check(&grafana).expect("grafana accepted");
        assert_eq!((grant.name.as_str(), grant.role), ("grafana", Mode::Viewer));
        assert!(tokens.check("fdk_guess").is_none());
        assert!(
            tokens.check_client_cert("alice").is_none(),
            "a token is not a certificate"
        );
        assert!(tokens.check("").is_none());
        let again = new_token(&path, "alice", Mode::Viewer).expect_err("duplicate");
        assert!(again.to_string().contains("exists already"), "{again}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "the file is its owner's only: {mode:o}");
        }
    }

    #[test]
    fn a_client_cert_line_grants_by_certificate_name_only() {
        let text = format!(
            "ops-laptop operator client-cert\nbot viewer sha256:{}\n",
            "ab".repeat(32)
        );
        let tokens = Tokens::parse(&text, "tokens").expect("parses");
        let grant = tokens
            .check_client_cert("ops-laptop")
            .expect("by certificate");
        assert_eq!(grant.role, Mode::Operator);
        assert!(
            tokens.check_client_cert("bot").is_none(),
            "bot holds a token, not a cert"
        );
        assert!(tokens.check("client-cert").is_none());
        assert!(tokens.has_client_certs());
    }

    #[test]
    fn bad_lines_are_named_with_file_and_line() {
        let hash = format!("sha256:{}", "ab".repeat(32));
        let cases = [
            ("alice operator".to_string(), "found 2 fields"),
            (format!("alice admin {hash}"), "role \"admin\""),
            ("alice viewer fdk_plaintexttoken".into(), "never the token"),
            ("alice viewer sha256:abc".into(), "3 hex digits"),
            (format!("al/ice viewer {hash}"), "token name"),
            (
                format!(
                    "alice viewer {hash}\nalice operator sha256:{}",
                    "cd".repeat(32)
                ),
                "given twice",
            ),
        ];
        for (text, want) in cases {
            let text = format!("# tokens\n\n{text}");
            let err = Tokens::parse(&text, "/etc/fleetdeck/tokens").expect_err(&text);
            let msg = err.to_string();
            assert!(msg.starts_with("/etc/fleetdeck/tokens:"), "{msg}");
            assert!(msg.contains(want), "{msg} should say {want}");
        }
    }
}
