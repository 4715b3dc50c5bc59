//! The README and the book (`docs/book`, an mdBook) stay whole: a newcomer meets a short
//! README with the two commands and a map, every chapter the map or `SUMMARY.md` names
//! exists, and no relative link or `#anchor` points nowhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The book's chapters, in `SUMMARY.md` order.
fn chapters() -> Vec<PathBuf> {
    let src = root().join("docs/book/src");
    links(&read(&src.join("SUMMARY.md")))
        .into_iter()
        .map(|l| src.join(l))
        .collect()
}

/// The targets of the Markdown links `[text](target)` outside code, but web addresses.
fn links(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        // Inline code may hold brackets that are not links.
        let text: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            let target = &after[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push(target.to_owned());
            }
            rest = &after[end..];
        }
    }
    out
}

/// The anchors of a Markdown file's headings, as GitHub and mdBook make them.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        out.insert(slug);
    }
    out
}

#[test]
fn the_readme_is_short_and_keeps_the_two_commands() {
    let readme = read(&root().join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines: the rest belongs in docs/book"
    );
    for command in ["scripts/run ", "scripts/test "] {
        assert!(
            readme.lines().any(|l| l.starts_with(command)),
            "README.md lost `{command}`"
        );
    }
    assert!(
        readme.contains("요약 (한국어)"),
        "README.md lost its Korean summary"
    );
}

#[test]
fn every_chapter_exists_and_is_in_the_summary() {
    let listed = chapters();
    assert!(listed.len() >= 10, "{listed:?}");
    for c in &listed {
        assert!(
            c.is_file(),
            "SUMMARY.md lists {}, which does not exist",
            c.display()
        );
    }
    let src = root().join("docs/book/src");
    for entry in std::fs::read_dir(&src).expect("docs/book/src") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "md") && p.file_name() != Some("SUMMARY.md".as_ref())
        {
            assert!(listed.contains(&p), "{} is not in SUMMARY.md", p.display());
        }
    }
}

#[test]
fn every_relative_link_of_the_readme_and_the_book_resolves() {
    let mut files = vec![root().join("README.md")];
    files.extend(chapters());
    let mut checked = 0;
    for file in &files {
        let text = read(file);
        let dir = file.parent().expect("a folder");
        for link in links(&text) {
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            assert!(
                target.exists(),
                "{}: the link {link} points nowhere ({})",
                file.display(),
                target.display()
            );
            if !anchor.is_empty() {
                assert!(
                    anchors(&read(&target)).contains(anchor),
                    "{}: {link}: no such heading",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} links found: the link reader is broken"
    );
}

#[test]
fn the_link_reader_finds_links_and_skips_code() {
    let md = "see [a](a.md#x) and `[b](b.md)`\n```\n[c](c.md)\n```\n[d](https://e.org)\n";
    assert_eq!(links(md), vec!["a.md#x".to_owned()]);
    assert!(anchors("# Face pipeline and accuracy\n## 1:1 `verify`\n").contains("11-verify"));
    assert!(anchors("# Face pipeline and accuracy\n").contains("face-pipeline-and-accuracy"));
}
