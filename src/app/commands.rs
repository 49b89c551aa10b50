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
            "help" => self.dispatch(crate::ui::keymap::KeyAction::Help),
            "cluster" if arg.is_empty() => self.flash("usage: :cluster NAME", true),
            "cluster" => match self.store.find_cluster(&arg) {
                Some(i) => {
                    let id = self.store.clusters()[i].id.clone();
                    self.ui.stack = vec![ViewId::Fleet];
                    self.ui.fleet.selection.select(id.clone());
                    self.apply_effect(Effect::OpenCluster(id));
                }
                None => self.flash(format!("no cluster named '{arg}'"), true),
            },
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
