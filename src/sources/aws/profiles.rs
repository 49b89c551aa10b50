//! Before any source starts: is each account's `profile` in the files the AWS SDK reads?
//! A missing profile otherwise surfaces minutes later as the last link of the credential
//! chain failing ("failed to load IMDS session token ... IMDS is disabled"), which names
//! neither the profile nor the files.

use std::path::PathBuf;

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::os_shim_internal::{Env, Fs};

use crate::config::Config;

/// One of the two files, as the SDK finds it.
struct AwsFile {
    path: PathBuf,
    /// The environment variable that named it, or none for the default path.
    named_by: Option<&'static str>,
}

impl AwsFile {
    /// `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/<default>`, with a
    /// leading `~/` expanded as the SDK does (from `HOME`).
    fn find(env: &Env, variable: &'static str, default: &str) -> Self {
        let (text, named_by) = match env.get(variable) {
            Ok(path) => (path, Some(variable)),
            Err(_) => (format!("~/.aws/{default}"), None),
        };
        let path = match (text.strip_prefix("~/"), env.get("HOME")) {
            (Some(rest), Ok(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(text),
        };
        Self { path, named_by }
    }

    fn describe(&self) -> String {
        let origin = self.named_by.unwrap_or("default");
        let exists = if self.path.is_file() {
            "exists"
        } else {
            "missing"
        };
        format!("{} ({origin}, {exists})", self.path.display())
    }
}

/// Fails, naming each account whose `profile` neither AWS file defines: where the profile
/// is set in the config, which files were read and which exist, and the profiles they do
/// define.
pub fn check(config: &Config) -> Result<(), String> {
    check_with(config, &Env::real())
}

fn check_with(config: &Config, env: &Env) -> Result<(), String> {
    let wanted: Vec<(&str, &str)> = config
        .accounts
        .iter()
        .filter_map(|a| Some((a.name.as_str(), a.profile.as_deref()?)))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let files = [
        AwsFile::find(env, "AWS_CONFIG_FILE", "config"),
        AwsFile::find(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"),
    ];
    let read = format!("read {} and {}", files[0].describe(), files[1].describe());
    // The SDK's own loader and parser, so "defined" means what it means to the SDK. It
    // reads with std::fs: no runtime needed.
    let loaded = futures::executor::block_on(aws_config::profile::load(
        &Fs::real(),
        env,
        &Default::default(),
        None,
    ));
    let profiles = loaded.map_err(|e| {
        format!(
            "cannot read the AWS profiles ({read}): {}",
            DisplayErrorContext(&e)
        )
    })?;
    let mut defined: Vec<&str> = profiles.profiles().collect();
    defined.sort_unstable();
    let problems: Vec<String> = wanted
        .into_iter()
        .filter(|(_, profile)| profiles.get_profile(profile).is_none())
        .map(|(account, profile)| {
            let has = if defined.is_empty() {
                "they define no profile".to_string()
            } else {
                format!("they define: {}", defined.join(", "))
            };
            let message = format!(
                "AWS profile '{profile}' is in neither AWS file ({read}; {has}); add it \
                 (aws configure --profile {profile}) or name one of those"
            );
            config
                .locations
                .profile_issue(account, message.clone())
                .map_or_else(
                    || format!("account '{account}': {message}"),
                    |i| i.to_string(),
                )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml(text, Path::new("/etc/fleet.toml")).unwrap()
    }

    const TWO_ACCOUNTS: &str = "[[accounts]]\nname = \"prod\"\nprofile = \"prod-ro\"\nregions = [\"us-east-1\"]\n\n[[accounts]]\nname = \"staging\"\nprofile = \"staging\"\nregions = [\"us-east-1\"]\n";

    #[test]
    fn profiles_in_either_file_pass() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, creds) = (dir.path().join("config"), dir.path().join("credentials"));
        std::fs::write(&cfg, "[profile prod-ro]\nregion = us-east-1\n").unwrap();
        std::fs::write(&creds, "[staging]\naws_access_key_id = x\n").unwrap();
        let env = Env::from_slice(&[
            ("AWS_CONFIG_FILE", cfg.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ]);
        assert_eq!(check_with(&config(TWO_ACCOUNTS), &env), Ok(()));
    }

    #[test]
    fn a_missing_profile_names_account_line_files_and_what_they_define() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("aws-config");
        std::fs::write(
            &cfg,
            "[default]\nregion = us-east-1\n[profile staging]\nregion = x\n",
        )
        .unwrap();
        let home = dir.path().join("home");
        let env = Env::from_slice(&[
            ("AWS_CONFIG_FILE", cfg.to_str().unwrap()),
            ("HOME", home.to_str().unwrap()),
        ]);
        let e = check_with(&config(TWO_ACCOUNTS), &env).unwrap_err();
        assert_eq!(
            e,
            format!(
                "/etc/fleet.toml:3: field 'profile' in [[accounts]] 'prod': AWS profile \
                 'prod-ro' is in neither AWS file (read {} (AWS_CONFIG_FILE, exists) and {} \
                 (default, missing); they define: default, staging); add it (aws configure \
                 --profile prod-ro) or name one of those",
                cfg.display(),
                home.join(".aws/credentials").display()
            )
        );
    }

    #[test]
    fn accounts_without_a_profile_read_nothing() {
        let env = Env::from_slice(&[("AWS_CONFIG_FILE", "/nonexistent/config")]);
        let c = config("[[accounts]]\nname = \"p\"\nregions = [\"us-east-1\"]\n");
        assert_eq!(check_with(&c, &env), Ok(()));
    }
}
