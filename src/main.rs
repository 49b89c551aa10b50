use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fleetdeck::cli::{Cli, Command, RunbooksCommand, ServeCommand, TokenCommand, TokenRole};
use fleetdeck::{app, config, guard, logging, runbook, serve, snapshot};

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("fleetdeck: {e}");
    }
    let cli = Cli::parse();
    if let Some(Command::Runbooks {
        command: RunbooksCommand::Lint { dirs },
    }) = &cli.command
    {
        // Needs no config, terminal or runtime: only the files.
        let user_dir = config::Paths::discover(cli.config.clone())
            .ok()
            .map(|p| p.runbooks_dir());
        return runbook::lint::run(dirs, user_dir.as_deref());
    }
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "fleetdeck", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man) => {
            let command = <Cli as clap::CommandFactory>::command();
            return match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fleetdeck: cannot write the manual page: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    if let Some(Command::Serve {
        command:
            Some(ServeCommand::Token {
                command: TokenCommand::New { name, role, tokens },
            }),
        ..
    }) = &cli.command
    {
        // Needs no config or runtime: only the tokens file.
        let role = match role {
            TokenRole::Viewer => fleetdeck::actions::Mode::Viewer,
            TokenRole::Operator => fleetdeck::actions::Mode::Operator,
        };
        return serve::new_token_command(cli.config.clone(), tokens.clone(), name, role);
    }
    let setup = match app::setup::resolve(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fleetdeck: {e:#}");
            return ExitCode::from(2);
        }
    };
    // The console reads keys from stdin and draws on stdout. Without a terminal on both
    // (stdin from /dev/null or a pipe, output redirected) there is no one to answer: say
    // so and stop, rather than start sources behind a screen nobody sees.
    if cli.command.is_none()
        && let Some(what) = missing_terminal()
    {
        eprintln!(
            "fleetdeck: {what} is not a terminal; the console needs one for its keys and \
                 screen. Run it in a terminal, or use `fleetdeck snapshot` from scripts."
        );
        return ExitCode::from(2);
    }
    let _log = match logging::init(&setup.paths.state_dir) {
        Ok(guard) => Some(guard),
        Err(e) => {
            eprintln!(
                "fleetdeck: logging disabled: cannot write to {}: {e}",
                setup.paths.state_dir.display()
            );
            None
        }
    };
    for warning in setup.config.iter().flat_map(|c| &c.warnings) {
        tracing::warn!("config: {warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetdeck: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => app::run(setup).await,
            Some(Command::Snapshot { format }) => snapshot::run(setup, format).await,
            Some(Command::Guard {
                interval,
                identity,
                once,
            }) => {
                let options = guard::GuardOptions {
                    interval,
                    identity,
                    once,
                };
                guard::run(setup, options).await
            }
            Some(Command::Serve {
                options,
                command: None,
            }) => serve::run(setup, options).await,
            // Handled before the setup.
            Some(
                Command::Runbooks { .. }
                | Command::Serve { .. }
                | Command::Completions { .. }
                | Command::Man,
            ) => Ok(()),
        }
    });
    // Sources may be mid-request; never let them keep a dead session's process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr is a terminal that has hung up.
            let _ = writeln!(std::io::stderr(), "fleetdeck: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Which of stdin and stdout is not a terminal, if either.
fn missing_terminal() -> Option<&'static str> {
    if !std::io::stdin().is_terminal() {
        Some("stdin")
    } else if !std::io::stdout().is_terminal() {
        Some("stdout")
    } else {
        None
    }
}
