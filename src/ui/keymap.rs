//! The one keymap: every key binding in one table. Key handling and the help screen both
//! read it, so help can never drift from what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::actions::Mode;

/// Every screen fleetdeck can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViewId {
    Fleet,
    Alerts,
    Cluster,
    Rollouts,
    Runbooks,
    Audit,
    Sources,
    Help,
}

impl ViewId {
    /// The main views, in the order of their number keys `1` to `6`.
    pub const MAIN: [ViewId; 6] = [
        ViewId::Fleet,
        ViewId::Alerts,
        ViewId::Rollouts,
        ViewId::Runbooks,
        ViewId::Audit,
        ViewId::Sources,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Fleet => "fleet",
            Self::Alerts => "alerts",
            Self::Cluster => "cluster",
            Self::Rollouts => "rollouts",
            Self::Runbooks => "runbooks",
            Self::Audit => "audit",
            Self::Sources => "sources",
            Self::Help => "help",
        }
    }
}

/// What a key asks for. Views interpret the navigation ones for their own lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAction {
    Quit,
    Help,
    CommandLine,
    Filter,
    Back,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Enter,
    Show(ViewId),
    SortNext,
    SortReverse,
    ToggleResolved,
    OpenRunbook,
    PauseWave,
    ResumeWave,
    /// Run the selected runbook step (alerts, with the runbook open).
    RunStep,
    /// Copy the alert's runbook link to the clipboard (OSC 52).
    CopyLink,
    OpenCluster,
    /// Show the next runbook matching the alert.
    NextRunbook,
    AckAlert,
    UnackAlert,
}

impl KeyAction {
    /// Whether the key asks to change the world. Viewer mode hides and refuses these.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::PauseWave | Self::ResumeWave | Self::RunStep | Self::AckAlert | Self::UnackAlert
        )
    }
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    View(ViewId),
}

/// A key, written as in the help screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn ch(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

impl Key {
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "enter".into(),
            KeyCode::Esc => "esc".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::PageUp => "pgup".into(),
            KeyCode::PageDown => "pgdn".into(),
            KeyCode::Home => "home".into(),
            KeyCode::End => "end".into(),
            KeyCode::Tab => "tab".into(),
            other => format!("{other:?}").to_lowercase(),
        };
        if self.ctrl {
            format!("ctrl-{base}")
        } else {
            base
        }
    }
}

/// One row of the keymap.
pub struct Binding {
    pub keys: &'static [Key],
    pub scope: Scope,
    pub action: KeyAction,
    pub help: &'static str,
}

use KeyAction as A;
use Scope::{Global, View};

/// The keymap. View-scoped bindings win over global ones for the same key.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[ch('?')],
        scope: Global,
        action: A::Help,
        help: "help: every key usable here",
    },
    Binding {
        keys: &[ch(':')],
        scope: Global,
        action: A::CommandLine,
        help: "command line (:fleet :alerts :rollouts :runbooks :audit :sources :cluster NAME :theme NAME :q)",
    },
    Binding {
        keys: &[ch('/')],
        scope: Global,
        action: A::Filter,
        help: "filter the list",
    },
    Binding {
        keys: &[code(KeyCode::Esc)],
        scope: Global,
        action: A::Back,
        help: "back / clear filter",
    },
    Binding {
        keys: &[ch('k'), code(KeyCode::Up)],
        scope: Global,
        action: A::Up,
        help: "move up",
    },
    Binding {
        keys: &[ch('j'), code(KeyCode::Down)],
        scope: Global,
        action: A::Down,
        help: "move down",
    },
    Binding {
        keys: &[code(KeyCode::PageUp), ctrl('b')],
        scope: Global,
        action: A::PageUp,
        help: "page up",
    },
    Binding {
        keys: &[code(KeyCode::PageDown), ctrl('f')],
        scope: Global,
        action: A::PageDown,
        help: "page down",
    },
    Binding {
        keys: &[ch('g'), code(KeyCode::Home)],
        scope: Global,
        action: A::Top,
        help: "go to top",
    },
    Binding {
        keys: &[ch('G'), code(KeyCode::End)],
        scope: Global,
        action: A::Bottom,
        help: "go to bottom",
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        scope: Global,
        action: A::Enter,
        help: "open the selection",
    },
    Binding {
        keys: &[ch('1')],
        scope: Global,
        action: A::Show(ViewId::Fleet),
        help: "fleet view",
    },
    Binding {
        keys: &[ch('2')],
        scope: Global,
        action: A::Show(ViewId::Alerts),
        help: "alerts view",
    },
    Binding {
        keys: &[ch('3')],
        scope: Global,
        action: A::Show(ViewId::Rollouts),
        help: "rollouts view",
    },
    Binding {
        keys: &[ch('4')],
        scope: Global,
        action: A::Show(ViewId::Runbooks),
        help: "runbooks view",
    },
    Binding {
        keys: &[ch('5')],
        scope: Global,
        action: A::Show(ViewId::Audit),
        help: "audit log view",
    },
    Binding {
        keys: &[ch('6')],
        scope: Global,
        action: A::Show(ViewId::Sources),
        help: "sources view: health, calls, throttles, errors, API cost",
    },
    Binding {
        keys: &[ch('q'), ctrl('c')],
        scope: Global,
        action: A::Quit,
        help: "quit",
    },
    Binding {
        keys: &[ch('s')],
        scope: View(ViewId::Fleet),
        action: A::SortNext,
        help: "sort by the next column",
    },
    Binding {
        keys: &[ch('S')],
        scope: View(ViewId::Fleet),
        action: A::SortReverse,
        help: "reverse the sort order",
    },
    Binding {
        keys: &[ch('r')],
        scope: View(ViewId::Alerts),
        action: A::ToggleResolved,
        help: "show or hide resolved alerts",
    },
    Binding {
        keys: &[ch('b')],
        scope: View(ViewId::Alerts),
        action: A::OpenRunbook,
        help: "open the alert's runbook",
    },
    Binding {
        keys: &[ch('a')],
        scope: View(ViewId::Alerts),
        action: A::AckAlert,
        help: "ack the alert: an Alertmanager silence everyone sees, else an audit record (y/n)",
    },
    Binding {
        keys: &[ch('A')],
        scope: View(ViewId::Alerts),
        action: A::UnackAlert,
        help: "withdraw the ack: expire the silence (y/n)",
    },
    Binding {
        keys: &[ch('b')],
        scope: View(ViewId::Cluster),
        action: A::OpenRunbook,
        help: "open the runbook of the first firing alert",
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        scope: View(ViewId::Fleet),
        action: A::Enter,
        help: "open the cluster",
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        scope: View(ViewId::Alerts),
        action: A::Enter,
        help: "open the matched runbook(s) beside the alert, with their steps",
    },
    Binding {
        keys: &[ch('x')],
        scope: View(ViewId::Alerts),
        action: A::RunStep,
        help: "run the selected runbook step (preview, confirm, audit)",
    },
    Binding {
        keys: &[ch('n')],
        scope: View(ViewId::Alerts),
        action: A::NextRunbook,
        help: "next runbook matching the alert",
    },
    Binding {
        keys: &[ch('y')],
        scope: View(ViewId::Alerts),
        action: A::CopyLink,
        help: "copy the alert's runbook link (OSC 52, works over SSH)",
    },
    Binding {
        keys: &[ch('c')],
        scope: View(ViewId::Alerts),
        action: A::OpenCluster,
        help: "open the alert's cluster",
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        scope: View(ViewId::Rollouts),
        action: A::Enter,
        help: "expand or collapse the wave's cells",
    },
    Binding {
        keys: &[ch('p')],
        scope: View(ViewId::Rollouts),
        action: A::PauseWave,
        help: "pause the selected wave (asks for a reason)",
    },
    Binding {
        keys: &[ch('r')],
        scope: View(ViewId::Rollouts),
        action: A::ResumeWave,
        help: "resume the selected wave (y/n)",
    },
];

fn matches(key: &Key, event: &KeyEvent) -> bool {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    if key.ctrl != ctrl {
        return false;
    }
    match (key.code, event.code) {
        // Shifted letters arrive as the upper-case char, with or without SHIFT set.
        (KeyCode::Char(a), KeyCode::Char(b)) => a == b,
        (a, b) => a == b,
    }
}

/// The action bound to `event` in `view`. Write actions are returned in viewer mode too:
/// the authorization point refuses them with a message, so the user learns why.
pub fn lookup(view: ViewId, event: &KeyEvent) -> Option<KeyAction> {
    let find = |scope: Scope| {
        BINDINGS
            .iter()
            .filter(|b| b.scope == scope)
            .find(|b| b.keys.iter().any(|k| matches(k, event)))
            .map(|b| b.action)
    };
    find(View(view)).or_else(|| find(Global))
}

/// Whether a global action does something in `view` (the help and hints list only those).
fn does_something(view: ViewId, action: KeyAction) -> bool {
    match action {
        A::Filter => matches!(
            view,
            ViewId::Fleet | ViewId::Alerts | ViewId::Runbooks | ViewId::Audit
        ),
        A::Enter => matches!(
            view,
            ViewId::Fleet | ViewId::Alerts | ViewId::Rollouts | ViewId::Runbooks
        ),
        _ => true,
    }
}

/// The bindings usable in `view` in `mode`, view-specific first: what help shows.
pub fn bindings_for(view: ViewId, mode: Mode) -> Vec<&'static Binding> {
    let usable = |b: &&Binding| mode == Mode::Operator || !b.action.is_write();
    let own: Vec<&Binding> = BINDINGS.iter().filter(|b| b.scope == View(view)).collect();
    // A global binding whose key the view rebinds is not usable here.
    let shadowed = |b: &&Binding| {
        own.iter()
            .any(|o| o.keys.iter().any(|k| b.keys.contains(k)))
    };
    let global = BINDINGS
        .iter()
        .filter(|b| b.scope == Global && !shadowed(b) && does_something(view, b.action));
    own.iter().copied().chain(global).filter(usable).collect()
}

/// Short hints for the status bar: the view's own keys, then a few global ones.
pub fn hints(view: ViewId, mode: Mode) -> Vec<(String, &'static str)> {
    let short = |a: KeyAction| -> Option<&'static str> {
        Some(match a {
            A::Help => "help",
            A::CommandLine => "cmd",
            A::Filter => "filter",
            A::Enter if view == ViewId::Rollouts => "expand",
            A::Enter => "open",
            A::SortNext => "sort",
            A::SortReverse => "reverse",
            A::ToggleResolved => "resolved",
            A::OpenRunbook => "runbook",
            A::PauseWave => "pause",
            A::ResumeWave => "resume",
            A::RunStep => "run step",
            A::OpenCluster => "cluster",
            A::AckAlert => "ack",
            A::Quit => "quit",
            _ => return None,
        })
    };
    bindings_for(view, mode)
        .into_iter()
        .filter_map(|b| short(b.action).map(|s| (b.keys[0].label(), s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn view_bindings_win_over_global_ones() {
        assert_eq!(lookup(ViewId::Rollouts, &key('r')), Some(A::ResumeWave));
        assert_eq!(lookup(ViewId::Alerts, &key('r')), Some(A::ToggleResolved));
        assert_eq!(lookup(ViewId::Fleet, &key('r')), None);
    }

    #[test]
    fn k9s_habits_are_bound() {
        for (c, a) in [
            ('?', A::Help),
            (':', A::CommandLine),
            ('/', A::Filter),
            ('j', A::Down),
            ('k', A::Up),
            ('g', A::Top),
            ('G', A::Bottom),
            ('q', A::Quit),
            ('1', A::Show(ViewId::Fleet)),
            ('5', A::Show(ViewId::Audit)),
        ] {
            assert_eq!(lookup(ViewId::Fleet, &key(c)), Some(a), "key {c}");
        }
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(ViewId::Alerts, &ctrl_c), Some(A::Quit));
        let shifted = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(lookup(ViewId::Fleet, &shifted), Some(A::Bottom));
        let down = KeyEvent::new(KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(lookup(ViewId::Fleet, &down), Some(A::Down));
    }

    #[test]
    fn ctrl_does_not_trigger_plain_bindings() {
        let ctrl_q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(lookup(ViewId::Fleet, &ctrl_q), None);
    }

    #[test]
    fn viewer_help_lists_no_write_keys() {
        for view in ViewId::MAIN
            .into_iter()
            .chain([ViewId::Cluster, ViewId::Help])
        {
            assert!(
                bindings_for(view, Mode::Viewer)
                    .iter()
                    .all(|b| !b.action.is_write())
            );
        }
        let operator = bindings_for(ViewId::Rollouts, Mode::Operator);
        assert!(operator.iter().any(|b| b.action == A::PauseWave));
        assert!(operator.iter().any(|b| b.action == A::ResumeWave));
        let alerts = bindings_for(ViewId::Alerts, Mode::Operator);
        assert!(alerts.iter().any(|b| b.action == A::AckAlert));
        assert!(alerts.iter().any(|b| b.action == A::UnackAlert));
        assert_eq!(lookup(ViewId::Alerts, &key('a')), Some(A::AckAlert));
        assert_eq!(lookup(ViewId::Alerts, &key('A')), Some(A::UnackAlert));
    }

    #[test]
    fn no_key_is_bound_twice_in_one_scope() {
        for (i, a) in BINDINGS.iter().enumerate() {
            for b in &BINDINGS[i + 1..] {
                if a.scope == b.scope {
                    for k in a.keys {
                        assert!(!b.keys.contains(k), "{} bound twice", k.label());
                    }
                }
            }
        }
    }
}
