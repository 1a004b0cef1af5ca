//! The layer rules of docs/ARCHITECTURE.md, checked on every `make test`:
//! the protocol core and the topology depend on no I/O crate (and the core
//! on no OS randomness), and their files and functions stay small enough
//! to read (issue 15: files at most 600 lines, functions at most 80).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates that do I/O, read the OS's randomness, or need the OS to: none may
/// appear in a protocol crate's normal dependency tree.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "nix",
    "libc",
    "tun-rs",
    "rtnetlink",
    "netlink-sys",
    "netlink-proto",
    "netlink-packet-route",
    "socket2",
    "getrandom",
    "futures",
    "rand",
];

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 80;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names of every crate in `package`'s normal (non-dev, non-build)
/// dependency tree, from `cargo tree`.
fn dependency_names(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(root())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn protocol_crates_depend_on_no_io_crate() {
    for package in ["plexnet-core", "plexnet-topology", "plexnet-sim"] {
        let deps = dependency_names(package);
        assert!(
            deps.iter().any(|d| d == package),
            "cargo tree -p {package} lists the package itself"
        );
        let io: Vec<&String> = deps
            .iter()
            .filter(|d| IO_CRATES.contains(&d.as_str()))
            .collect();
        assert!(io.is_empty(), "{package} depends on I/O crates {io:?} (cargo tree -p {package} -i NAME says through what)");
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A line with string and char literals and the `//` comment removed, so
/// that braces inside them do not count.
fn code_of(line: &str) -> String {
    let mut code = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' if matches!(chars.clone().nth(1), Some('\'')) || chars.peek() == Some(&'\\') => {
                // A char literal ('{' or '\n'); a lifetime has no closing quote.
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => code.push(c),
        }
    }
    code
}

/// The name of the function a line starts, if it starts one.
fn fn_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().skip_while(|w| {
        w.starts_with("pub") || matches!(*w, "const" | "async" | "unsafe" | "extern" | "\"C\"")
    });
    (words.next()? == "fn")
        .then(|| words.next())?
        .map(|w| w.split(['(', '<']).next().unwrap_or(w))
}

/// `(name, first line, length)` of every function body in `text`.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let (mut depth, mut opened) = (0i64, false);
        for (i, l) in lines.iter().enumerate().skip(start) {
            let code = code_of(l);
            if !opened && code.contains(';') && !code.contains('{') {
                break; // a declaration without a body
            }
            depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
            opened |= code.contains('{');
            if opened && depth <= 0 {
                found.push((name.to_string(), start + 1, i - start + 1));
                break;
            }
        }
    }
    found
}

#[test]
fn protocol_and_topology_files_and_functions_stay_small() {
    let mut files = Vec::new();
    for dir in ["crates/core/src", "crates/topology/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    files.sort();
    let mut over = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable source");
        let shown = path
            .strip_prefix(root())
            .unwrap_or(path)
            .display()
            .to_string();
        let n = text.lines().count();
        if n > MAX_FILE_LINES {
            over.push(format!("{shown}: {n} lines (at most {MAX_FILE_LINES})"));
        }
        for (name, at, len) in functions(&text) {
            if len > MAX_FN_LINES {
                over.push(format!(
                    "{shown}:{at}: fn {name} is {len} lines (at most {MAX_FN_LINES})"
                ));
            }
        }
    }
    assert!(
        files.len() > 50,
        "found the sources ({} files)",
        files.len()
    );
    assert!(
        over.is_empty(),
        "{} over the limits:\n{}",
        over.len(),
        over.join("\n")
    );
}

#[test]
fn the_function_measure_counts_bodies_not_strings() {
    let text = "fn a() {\n    let s = \"}}}\";\n    let c = '{';\n}\nfn b();\npub(crate) async fn c<T>(x: T) -> T {\n    x\n}\n";
    assert_eq!(
        functions(text),
        vec![("a".into(), 1, 4), ("c".into(), 6, 3)]
    );
}
