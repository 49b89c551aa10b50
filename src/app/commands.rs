//! The `:` command line.

use super::App;
use crate::ui::Effect;
use crate::ui::keymap::ViewId;

impl App {
    /// Runs one `:` command.
    pub fn run_command(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else { return };
        let arg = words.collect::<Vec<_>>().join(" ");
        match cmd {
            "q" | "q!" | "quit" | "exit" => self.quit = true,
            "fleet" | "clusters" => self.show(ViewId::Fleet),
            "alerts" | "alert" => self.show(ViewId::Alerts),
            "rollouts" | "rollout" | "waves" => self.show(ViewId::Rollouts),
            "runbooks" | "runbook" => self.show(ViewId::Runbooks),
            "audit" => self.show(ViewId::Audit),
            "sources" | "source" => self.show(ViewId::Sources),
            "help" => self.dispatch(crate::ui::keymap::KeyAction::Help),
            "cluster" if arg.is_empty() => self.flash("usage: :cluster NAME", true),
            "cluster" => {
                // An exact name (or account/region/name) first; else a unique partial match.
                let needle = arg.to_lowercase();
                let partial: Vec<usize> = (0..self.engine.store().clusters().len())
                    .filter(|&i| self.engine.store().clusters()[i].id.name.to_lowercase().contains(&needle))
                    .collect();
                match self.engine.store().find_cluster(&arg).or(match partial.as_slice() {
                    [only] => Some(*only),
                    _ => None,
                }) {
                    Some(i) => {
                        let id = self.engine.store().clusters()[i].id.clone();
                        self.ui.stack = vec![ViewId::Fleet];
                        self.ui.fleet.selection.select(id.clone());
                        self.apply_effect(Effect::OpenCluster(id));
                    }
                    None if partial.is_empty() => {
                        self.flash(format!("no cluster named '{arg}'"), true)
                    }
                    None => {
                        let names: Vec<&str> = partial
                            .iter()
                            .take(3)
                            .map(|&i| self.engine.store().clusters()[i].id.name.as_str())
                            .collect();
                        let more = partial.len().saturating_sub(3);
                        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                        self.flash(
                            format!("'{arg}' matches {}{more}: be more precise", names.join(", ")),
                            true,
                        )
                    }
                }
            }
            "theme" if arg.is_empty() => {
                let names = crate::ui::theme::Theme::builtin_names().join(", ");
                self.flash(format!("usage: :theme NAME (built-in: {names})"), true)
            }
            "theme" => match self.set_theme(&arg) {
                Ok(()) => self.flash(format!("theme {arg}"), false),
                Err(e) => self.flash(e, true),
            },
            other => self.flash(
                format!("unknown command ':{other}' (try :fleet :alerts :rollouts :runbooks :audit :cluster NAME :theme NAME :q)"),
                true,
            ),
        }
        // Commands change views just as keys do: keep sources told what is on screen.
        self.sync_focus();
    }
}
