//! Everything resolved before the loop starts: paths, config, mode, theme, runbooks,
//! which sources to run. Bad input here is an error naming what and where.

use std::path::PathBuf;

use color_eyre::eyre::{Result, eyre};

use crate::actions::Mode;
use crate::cli::Cli;
use crate::config::{Config, Paths};
use crate::runbook::{RunbookError, RunbookSet};
use crate::sources::demo::DemoOptions;
use crate::ui::Glyphs;
use crate::ui::theme::{ColorDepth, Theme, no_color};

/// The resolved start-up settings.
pub struct Setup {
    pub paths: Paths,
    pub config: Option<Config>,
    pub mode: Mode,
    pub theme: Theme,
    pub color_depth: ColorDepth,
    pub glyphs: Glyphs,
    pub demo: DemoOptions,
    /// A note for the status bar at start (e.g. why the demo runs although a config exists).
    pub notice: Option<String>,
    pub runbooks: RunbookSet,
    pub runbook_errors: Vec<RunbookError>,
    /// Where operator actions are recorded. Viewers never open it.
    pub audit_path: PathBuf,
    pub os_user: String,
    /// The data is the simulated demo fleet.
    pub demo_mode: bool,
    /// Rollout plans from `[hub] plans`, by ApplicationSet name.
    pub plans: std::collections::BTreeMap<String, crate::rollout::plan::Plan>,
    /// Where the last picture is kept for the next start (none for the demo).
    pub cache_file: Option<PathBuf>,
    /// Start without showing the kept picture (`--no-cache`).
    pub no_cache: bool,
    /// Read the fleet from a server's feed instead of the sources (`--connect`).
    pub connect: Option<crate::sources::feed::Connect>,
}

impl Setup {
    pub fn themes_dir(&self) -> PathBuf {
        self.paths.config_dir.join("themes")
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Whether the locale can show UTF-8 (LC_ALL, then LC_CTYPE, then LANG, as POSIX orders them).
pub fn locale_is_utf8(get_env: impl Fn(&str) -> Option<String>) -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| get_env(k).filter(|v| !v.is_empty()))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

impl Setup {
    /// The session's clock: the demo runs on a simulated clock at its speed, real sources
    /// on the wall clock.
    pub fn clock(&self) -> crate::clock::Clock {
        if self.connect.is_some() {
            crate::clock::Clock::following()
        } else if self.demo_mode {
            crate::clock::Clock::simulated(chrono::Utc::now(), self.demo.speed)
        } else {
            crate::clock::Clock::Wall
        }
    }

    /// A fixed setup for tests and benches: demo fleet, built-in theme and runbooks,
    /// Unicode glyphs, files under `dir`. Reads no environment and no config file.
    pub fn for_demo(dir: &std::path::Path, mode: Mode, demo: DemoOptions) -> Result<Setup> {
        let paths = Paths {
            config_file: dir.join("config.toml"),
            config_dir: dir.to_path_buf(),
            data_dir: dir.join("data"),
            state_dir: dir.join("state"),
            explicit: false,
        };
        let theme = Theme::load("default", None).map_err(|e| eyre!("{e}"))?;
        let (runbooks, runbook_errors) = RunbookSet::load(None);
        Ok(Setup {
            audit_path: paths.data_dir.join("audit-demo.jsonl"),
            paths,
            config: None,
            mode,
            theme,
            color_depth: ColorDepth::TrueColor,
            glyphs: Glyphs::unicode(),
            demo,
            notice: None,
            runbooks,
            runbook_errors,
            os_user: "tester".into(),
            demo_mode: true,
            plans: Default::default(),
            cache_file: None,
            no_cache: false,
            connect: None,
        })
    }
}

/// Resolves the command line and the config file into a `Setup`.
pub fn resolve(cli: &Cli) -> Result<Setup> {
    let explicit = cli.config.is_some();
    let paths = Paths::discover(cli.config.clone()).map_err(|e| eyre!("{e}"))?;
    let config = Config::load(&paths, explicit || paths.explicit).map_err(|e| eyre!("{e}"))?;
    // Never fatal; the AWS sources log what concerns them once logging runs.
    for warning in config.iter().flat_map(|c| &c.warnings) {
        eprintln!("fleetdeck: warning: {warning}");
    }

    let config_mode = config.as_ref().map(|c| c.mode);
    let mode = if cli.viewer || config_mode == Some(Mode::Viewer) {
        Mode::Viewer
    } else {
        Mode::Operator
    };

    let themes_dir = paths.themes_dir();
    // An explicit choice (flag, then config) beats NO_COLOR, as no-color.org asks.
    let theme_name = cli
        .theme
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.theme.clone()))
        .unwrap_or_else(|| if no_color(env) { "mono" } else { "default" }.to_string());
    let theme = Theme::load(&theme_name, Some(&themes_dir)).map_err(|e| eyre!("{e}"))?;
    let color_depth = ColorDepth::detect(env);
    let glyphs = if cli.ascii || !locale_is_utf8(env) {
        Glyphs::ascii()
    } else {
        Glyphs::unicode()
    };

    // The demo runs when asked for, or when the config names no real source to read.
    let os_user =
        whoami::username().unwrap_or_else(|_| env("USER").unwrap_or_else(|| "unknown".into()));
    let connect = resolve_connect(cli, config.as_ref(), &os_user)?;
    let demo_mode =
        connect.is_none() && (cli.demo || config.as_ref().is_none_or(|c| !c.has_real_sources()));
    if let Some(c) = config.as_ref().filter(|_| !demo_mode && connect.is_none()) {
        crate::sources::aws::profiles::check(c).map_err(|e| eyre!("{e}"))?;
    }
    // The console's screen hides stderr: its status bar says the first warning too.
    let warnings: Vec<&String> = config.iter().flat_map(|c| &c.warnings).collect();
    let notice = warnings.first().map(|first| match warnings.len() {
        1 => format!("config warning: {first}"),
        n => format!("config warning: {first} (and {} more in the log)", n - 1),
    });
    let demo = DemoOptions {
        seed: cli.demo_seed,
        clusters: cli.demo_clusters as usize,
        speed: cli.demo_speed,
    };

    let (runbooks, runbook_errors) = RunbookSet::load(Some(&paths.runbooks_dir()));
    // Demo actions change nothing real: keep them out of the real audit trail.
    let audit_path = match &config {
        _ if demo_mode => paths.data_dir.join("audit-demo.jsonl"),
        Some(c) => c.audit_file(&paths),
        None => paths.data_dir.join("audit.jsonl"),
    };
    // A broken plans file stops the start: a guard-less rollout must not look guarded.
    // Connected to a server, its plans come with its feed.
    let plans = match config
        .as_ref()
        .filter(|_| connect.is_none())
        .and_then(|c| c.hub.as_ref()?.plans.as_deref())
    {
        Some(path) => crate::rollout::plan::load_file(path).map_err(|e| eyre!("{e}"))?,
        None => Default::default(),
    };
    // The demo is simulated afresh every start: nothing to remember. A console connected
    // to a server keeps the picture of that server's feed apart from its own sources'.
    let cache_file = match &connect {
        Some(c) => Some(paths.state_dir.join(format!(
                "picture-via-{}.json.gz",
                crate::feed::host_of(&c.url)
                    .chars()
                    .map(
                        |ch| if ch.is_ascii_alphanumeric() || ch == '.' || ch == '-' {
                            ch
                        } else {
                            '_'
                        }
                    )
                    .collect::<String>()
            ))),
        None => (!demo_mode).then(|| paths.state_dir.join("picture.json.gz")),
    };

    Ok(Setup {
        config,
        mode,
        theme: theme.for_depth(color_depth),
        color_depth,
        glyphs,
        demo,
        notice,
        runbooks,
        runbook_errors,
        audit_path,
        os_user,
        cache_file,
        no_cache: cli.no_cache,
        connect,
        demo_mode,
        plans,
        paths,
    })
}

/// The server to read the fleet from, if any: `--connect` or `[connect] url`, with its
/// token (`--token-file`, `$FLEETDECK_TOKEN`, `[connect] token_file`, in that order) and
/// CA file. A server address without a token is an error here, not a 401 later.
fn resolve_connect(
    cli: &Cli,
    config: Option<&crate::config::Config>,
    os_user: &str,
) -> Result<Option<crate::sources::feed::Connect>> {
    use crate::cli::Command;
    let settings = config.and_then(|c| c.connect.as_ref());
    let Some(url) = cli
        .connect
        .clone()
        .or_else(|| settings.map(|s| s.url.clone()))
    else {
        return Ok(None);
    };
    match &cli.command {
        Some(Command::Serve { .. }) if cli.connect.is_some() => {
            return Err(eyre!(
                "--connect is for consoles and snapshot; `fleetdeck serve` reads the sources itself"
            ));
        }
        Some(Command::Guard { .. }) if cli.connect.is_some() => {
            return Err(eyre!(
                "--connect is for consoles and snapshot; `fleetdeck guard` reads the sources itself"
            ));
        }
        // A server's or guard's own config may say where consoles connect; it reads its
        // sources all the same.
        Some(Command::Serve { .. } | Command::Guard { .. }) => return Ok(None),
        _ => {}
    }
    let url = url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.parse::<http::Uri>().is_err()
    {
        return Err(eyre!(
            "--connect {url:?}: expected the address of a fleetdeck serve, like https://fleetdeck.example:7700"
        ));
    }
    let client_cert = match (&cli.client_cert, &cli.client_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => settings.and_then(|s| match (&s.client_cert, &s.client_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            _ => None,
        }),
    };
    let token = if let Some(file) = &cli.token_file {
        Some(crate::feed::tokens::read_token_file(file).map_err(|e| eyre!("{e}"))?)
    } else if let Some(token) = env("FLEETDECK_TOKEN").filter(|t| !t.trim().is_empty()) {
        Some(token.trim().to_string())
    } else if let Some(file) = settings.and_then(|s| s.token_file.as_ref()) {
        Some(crate::feed::tokens::read_token_file(file).map_err(|e| eyre!("{e}"))?)
    } else if client_cert.is_some() {
        None
    } else {
        return Err(eyre!(
            "--connect {url}: no token: pass --token-file FILE, set FLEETDECK_TOKEN, or write              [connect] token_file in the config (the server's operator makes one with              `fleetdeck serve token new NAME --role viewer`), or give a client certificate \
             (--client-cert, --client-key)"
        ));
    };
    let ca_file = cli
        .ca_file
        .clone()
        .or_else(|| settings.and_then(|s| s.ca_file.clone()));
    Ok(Some(crate::sources::feed::Connect {
        url,
        token,
        client_cert,
        ca_file,
        os_user: os_user.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_follows_posix_locale_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(locale_is_utf8(env(&[("LANG", "en_US.UTF-8")])));
        assert!(!locale_is_utf8(env(&[
            ("LC_ALL", "C"),
            ("LANG", "en_US.UTF-8")
        ])));
        assert!(locale_is_utf8(env(&[("LC_CTYPE", "C.utf8")])));
        assert!(!locale_is_utf8(env(&[])));
    }
}
