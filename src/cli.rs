//! The command line (clap derive). Parsing only; `main` hands the result on.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// A terminal console for on-call engineers operating fleets of Amazon EKS clusters.
///
/// With no config file, fleetdeck opens the built-in demo fleet.
#[derive(Debug, Parser)]
#[command(name = "fleetdeck", version = env!("FLEETDECK_VERSION"), about, long_about = None)]
pub struct Cli {
    /// Config file (default: $XDG_CONFIG_HOME/fleetdeck/config.toml).
    #[arg(long, global = true, env = "FLEETDECK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Read-only viewer mode: see everything, change nothing.
    #[arg(long, global = true)]
    pub viewer: bool,

    /// Theme name: default, light, high-contrast, mono, or a file in <config dir>/themes/.
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,

    /// Draw with ASCII only (also chosen automatically in a non-UTF-8 locale).
    #[arg(long, global = true)]
    pub ascii: bool,

    /// Start without the last picture kept in the state directory (the warm start); it is
    /// still written for the next start. `snapshot` never uses it.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Use the built-in demo fleet even if the config names real sources.
    #[arg(long, global = true)]
    pub demo: bool,

    /// Show the fleet of a `fleetdeck serve` at URL instead of reading the sources: no AWS
    /// or Kubernetes credentials needed (also `[connect] url`).
    #[arg(long, global = true, env = "FLEETDECK_CONNECT", value_name = "URL")]
    pub connect: Option<String>,

    /// The bearer token for --connect, in a file (its first line); else $FLEETDECK_TOKEN,
    /// else `[connect] token_file`.
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// A CA certificate (PEM) to trust for the server of --connect, instead of the
    /// system's roots (also `[connect] ca_file`).
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// A client certificate (PEM) to present to the server of --connect, instead of or
    /// beside a token (also `[connect] client_cert`); needs --client-key.
    #[arg(long, global = true, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// The client certificate's private key (PEM; also `[connect] client_key`).
    #[arg(long, global = true, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Number of clusters in the demo fleet.
    #[arg(long, global = true, value_name = "N", default_value_t = 48,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub demo_clusters: u32,

    /// Seed of the demo fleet: the same seed gives the same fleet and story.
    #[arg(long, global = true, value_name = "S", default_value_t = 7)]
    pub demo_seed: u64,

    /// How much faster than real time the demo's clock runs.
    #[arg(long, global = true, value_name = "X", default_value_t = 10.0, value_parser = parse_speed)]
    pub demo_speed: f64,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sources until the first complete picture, print it, and exit.
    Snapshot {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Guard Argo CD rollouts headless (soak, circuit breaker, insights); run on the hub.
    Guard {
        /// Time between passes, like 15s or 1m.
        #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_interval)]
        interval: std::time::Duration,
        /// Name in the leader election (default: $POD_NAME, else the hostname).
        #[arg(long, value_name = "NAME")]
        identity: Option<String>,
        /// Run one pass, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Serve the fleet to consoles (`fleetdeck --connect URL`): read it once, stream it to
    /// many.
    #[command(args_conflicts_with_subcommands = true)]
    Serve {
        #[command(flatten)]
        options: ServeArgs,
        #[command(subcommand)]
        command: Option<ServeCommand>,
    },
    /// Print a shell completion script: `fleetdeck completions bash > /etc/bash_completion.d/fleetdeck`.
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `fleetdeck man > fleetdeck.1; man -l fleetdeck.1`.
    Man,
    /// Work with runbooks.
    Runbooks {
        #[command(subcommand)]
        command: RunbooksCommand,
    },
}

/// How `fleetdeck serve` listens.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Without TLS only a loopback address is accepted, unless
    /// --insecure-plaintext says otherwise.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7700")]
    pub listen: std::net::SocketAddr,
    /// Server certificate chain (PEM) for TLS; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of the server certificate; needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also accept client certificates signed by this CA (PEM), for the names the tokens
    /// file grants by `client-cert`; needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// The tokens file (`NAME ROLE sha256:HEX` per line; default: <config dir>/tokens).
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Listen on a non-loopback address without TLS: tokens and the fleet travel in
    /// clear text. Only behind something that encrypts (a service mesh, an SSH tunnel).
    #[arg(long)]
    pub insecure_plaintext: bool,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Manage the tokens clients present.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token: printed once on stdout; its hash is appended to the tokens file.
    New {
        /// Who holds it (shown in the server's audit log).
        #[arg(value_name = "NAME")]
        name: String,
        /// `viewer` sees the fleet; `operator` may act through the server too.
        #[arg(long, value_enum)]
        role: TokenRole,
        /// The tokens file (default: <config dir>/tokens).
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokenRole {
    Viewer,
    Operator,
}

#[derive(Debug, Subcommand)]
pub enum RunbooksCommand {
    /// Check runbook files: front matter, matchers, step actions, parameters and
    /// references. Prints `file:line: message` per problem; exits 1 on any.
    /// With no DIR: the built-in runbooks and those in the config directory.
    Lint {
        /// Directories of `*.md` runbooks, or single files.
        #[arg(value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Table,
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let secs = crate::rollout::plan::parse_duration(s)?;
    if (1..=3600).contains(&secs) {
        Ok(std::time::Duration::from_secs(secs as u64))
    } else {
        Err(format!("the interval must be 1s to 1h, got {s}"))
    }
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Ok(v)
    } else {
        Err(format!(
            "demo speed must be above 0 and at most 3600, got {s}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("fleetdeck").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_open_the_demo_console() {
        let cli = parse(&[]).expect("parses");
        assert!(cli.command.is_none());
        assert_eq!((cli.demo_clusters, cli.demo_seed), (48, 7));
        assert!(!cli.viewer && !cli.ascii);
    }

    #[test]
    fn demo_flags_are_validated() {
        let cli = parse(&[
            "--demo",
            "--demo-clusters",
            "10000",
            "--demo-seed",
            "9",
            "--demo-speed",
            "60",
        ])
        .expect("parses");
        assert!(cli.demo);
        assert_eq!(cli.demo_clusters, 10_000);
        assert_eq!(cli.demo_speed, 60.0);
        assert!(parse(&["--demo-clusters", "0"]).is_err());
        assert!(parse(&["--demo-clusters", "10001"]).is_err());
        assert!(parse(&["--demo-speed", "0"]).is_err());
        assert!(parse(&["--demo-speed", "fast"]).is_err());
    }

    #[test]
    fn snapshot_takes_a_format_and_global_flags_after_it() {
        let cli = parse(&["snapshot", "--format", "json", "--viewer"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Snapshot {
                format: Format::Json
            })
        ));
        assert!(cli.viewer);
        assert!(parse(&["snapshot", "--format", "yaml"]).is_err());
    }

    #[test]
    fn guard_takes_an_interval_an_identity_and_once() {
        let cli = parse(&["guard"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Guard { interval, identity: None, once: false })
                if interval == std::time::Duration::from_secs(15)
        ));
        let cli = parse(&[
            "guard",
            "--interval",
            "1m30s",
            "--identity",
            "guard-0",
            "--once",
            "--config",
            "/etc/fleetdeck/config.toml",
        ])
        .expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Guard { interval, identity: Some(ref id), once: true })
                if interval == std::time::Duration::from_secs(90) && id == "guard-0"
        ));
        assert!(cli.config.is_some());
        for bad in ["0", "15", "2h", "soon"] {
            assert!(parse(&["guard", "--interval", bad]).is_err(), "{bad}");
        }
    }
}
