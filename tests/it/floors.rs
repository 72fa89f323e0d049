//! The floors of the code (ARCHITECTURE.md): `db/` at the bottom, `web/` and `federation/` side by
//! side on top of it, the state they share in modules neither owns. This reads the source and fails
//! when an import runs the wrong way, so an arrow back up is caught the day it is written.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

/// The top-level modules of `crate::` a source text names, in `use` trees and in paths alike
/// (`use crate::{app::AppState, web::views}` names `app` and `web`).
fn crate_modules(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let tail = rest.trim_start();
        if let Some(group) = tail.strip_prefix('{') {
            // The items at depth 0 of the group, each named by its first segment.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.extend(first_segment(&item));
        } else {
            found.extend(first_segment(tail));
        }
    }
    found
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every import from `src` that breaks a floor rule, as "file imports crate::module".
fn violations(src: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    for file in rust_files(src) {
        let relative = file
            .strip_prefix(src)
            .expect("under src")
            .to_string_lossy()
            .into_owned();
        let forbidden: &[&str] = if relative.starts_with("db/") {
            // The bottom floor knows only its configuration.
            &["web", "federation", "app", "cache", "rate_limit"]
        } else if relative.starts_with("web/") || relative == "lib.rs" || relative == "cli.rs" {
            // The web side, and the two places that compose the whole application.
            &[]
        } else {
            // `federation/` and the modules both sides share.
            &["web"]
        };
        let text = fs::read_to_string(&file).expect("read source");
        for module in crate_modules(&text) {
            if forbidden.contains(&module.as_str()) {
                wrong.push(format!("src/{relative} imports crate::{module}"));
            }
        }
    }
    wrong.sort();
    wrong
}

#[test]
fn the_reader_sees_grouped_and_inline_imports() {
    let source = "use crate::{\n    app::AppState,\n    db::{accounts, stories::slug},\n    web::{views::Layout},\n};\n\
                  // crate::metrics is only mentioned here\nfn f() { crate::rate_limit::client_ip(); }";
    let modules: Vec<_> = crate_modules(source).into_iter().collect();
    assert_eq!(modules, ["app", "db", "rate_limit", "web"]);
}

#[test]
fn federation_and_db_never_import_web() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let wrong = violations(&src);
    assert!(
        wrong.is_empty(),
        "imports against ARCHITECTURE.md's floors:\n{}",
        wrong.join("\n")
    );

    // And the check bites: a federation file that reaches into web/ is reported.
    let scratch = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(scratch.path().join("federation")).expect("mkdir");
    fs::write(
        scratch.path().join("federation/bad.rs"),
        "use crate::{app::AppState, web::views::Layout};\n",
    )
    .expect("write");
    assert_eq!(
        violations(scratch.path()),
        ["src/federation/bad.rs imports crate::web"]
    );
}
