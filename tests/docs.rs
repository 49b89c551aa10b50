//! The README and the pages under docs/ hold together: every relative link reaches a file,
//! every `#anchor` a heading of the page it names (as GitHub makes anchors), every page is
//! in docs/SUMMARY.md; and the configuration page names every key the config file accepts,
//! and no key it rejects.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "book") {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (but `-` and `_`),
/// spaces to `-`; a repeated heading gets `-1`, `-2`...
fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let base = slug(&heading.take().unwrap_or_default());
                let n = seen.entry(base.clone()).or_insert(0);
                out.insert(if *n == 0 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                });
                *n += 1;
            }
            _ => {}
        }
    }
    out
}

fn links(text: &str) -> Vec<String> {
    Parser::new(text)
        .filter_map(|e| match e {
            Event::Start(Tag::Link { dest_url, .. }) => Some(dest_url.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", page.display()));
                continue;
            }
            if !fragment.is_empty() {
                let anchored = std::fs::read_to_string(&target)
                    .map(|t| anchors(&t))
                    .unwrap_or_default();
                if !anchored.contains(fragment) {
                    broken.push(format!(
                        "{}: {link}: no heading #{fragment} in {}",
                        page.display(),
                        target.display()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_page_is_in_the_summary_and_the_readme_stays_a_front_door() {
    let summary = std::fs::read_to_string(root().join("docs/SUMMARY.md")).unwrap();
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    for page in pages() {
        let Ok(relative) = page.strip_prefix(root().join("docs")) else {
            continue;
        };
        let name = relative.to_string_lossy().to_string();
        if name == "SUMMARY.md" {
            continue;
        }
        assert!(
            listed.contains(&name),
            "docs/{name} is not in docs/SUMMARY.md"
        );
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 320,
        "the README has {lines} lines: move reference to docs/"
    );
    // The two set-up commands stay as they are.
    assert!(readme.contains("cargo run --release          # run fleetdeck"));
    assert!(readme.contains("./scripts/test               # run the whole test suite"));
}

/// The keys in backticks in the first column of the configuration page's "Every key"
/// table.
fn documented_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let section = text
        .split("\n## Every key\n")
        .nth(1)
        .expect("docs/configuration.md has a section `## Every key`");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(key, _)| key.to_string()))
        .collect()
}

#[test]
fn the_configuration_page_names_every_key_the_config_accepts_and_no_other() {
    let accepted: BTreeSet<String> = fleetdeck::config::accepted_keys().into_iter().collect();
    // The list is read from the code; make sure it is whole (a few keys of every level).
    for key in [
        "mode",
        "accounts.endpoints.eks",
        "organization.regions",
        "connect.url",
    ] {
        assert!(accepted.contains(key), "{key} not in {accepted:?}");
    }
    let documented = documented_keys();
    let missing: Vec<&String> = accepted.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&accepted).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/configuration.md: keys the config accepts but the page does not name: \
         {missing:?}; keys the page names but the config rejects: {unknown:?}"
    );
}

#[test]
fn the_configuration_page_example_is_a_config_fleetdeck_accepts() {
    let text = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let mut in_toml = false;
    let mut example = String::new();
    for event in Parser::new(&text) {
        match event {
            Event::Start(Tag::CodeBlock(pulldown_cmark::CodeBlockKind::Fenced(lang)))
                if lang.as_ref() == "toml" && example.is_empty() =>
            {
                in_toml = true
            }
            Event::Text(t) if in_toml => example.push_str(&t),
            Event::End(TagEnd::CodeBlock) => in_toml = false,
            _ => {}
        }
    }
    assert!(
        !example.is_empty(),
        "no TOML example in docs/configuration.md"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &example).unwrap();
    let paths = fleetdeck::config::Paths::discover(Some(path)).unwrap();
    fleetdeck::config::Config::load(&paths, true)
        .unwrap_or_else(|e| panic!("the example in docs/configuration.md: {e}"));
    let _ = HeadingLevel::H1;
}
