//! The viewer page, compiled into the binary: no CDN, no build step. `index.html` (markup)
//! loads `style.css` and `main.js`, an ES module that imports the others (`<script
//! type="module">`, relative URLs, so the page also works behind a path prefix). Every file is
//! served from the root: `GET /` and `/index.html` are the page, `/main.js` its entry point.

/// One file of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Asset {
    pub(crate) body: &'static str,
    pub(crate) content_type: &'static str,
}

/// The page's files, by name. A new file goes here too (a unit test checks that every file in
/// this directory is listed, and that every file the page refers to resolves).
macro_rules! files {
    ($($name:literal),* $(,)?) => { &[$(($name, include_str!($name))),*] };
}
const FILES: &[(&str, &str)] = files![
    "index.html",
    "style.css",
    "main.js",
    "state.js",
    "auth.js",
    "whep.js",
    "trickle.js",
    "ice-servers.js",
    "control.js",
    "steering.js",
    "ptz-pad.js",
    "controls-panel.js",
    "stats.js",
    "stamp.js",
    "ui.js",
];

/// Module scripts must come as JavaScript: browsers refuse to run a module served with any
/// other type.
fn content_type(name: &str) -> Option<&'static str> {
    match name.rsplit_once('.')?.1 {
        "html" => Some("text/html; charset=utf-8"),
        "css" => Some("text/css; charset=utf-8"),
        "js" => Some("text/javascript; charset=utf-8"),
        _ => None,
    }
}

/// The page's file at the URL path `path` (`/` is `index.html`), or None.
pub(crate) fn asset(path: &str) -> Option<Asset> {
    let name = match path {
        "/" => "index.html",
        _ => path.strip_prefix('/')?,
    };
    let &(name, body) = FILES.iter().find(|(n, _)| *n == name)?;
    Some(Asset {
        body,
        content_type: content_type(name)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn body(name: &str) -> &'static str {
        asset(&format!("/{name}"))
            .unwrap_or_else(|| panic!("{name} is not served"))
            .body
    }

    /// The URL path a reference from a file at the root resolves to, as a browser would:
    /// `x.js`, `./x.js` and `/x.js` are all `/x.js`.
    fn resolve(reference: &str) -> String {
        let path = reference.strip_prefix("./").unwrap_or(reference);
        assert!(
            !path.starts_with("../") && !path.contains("/./"),
            "{reference}: the page's files are all in one directory"
        );
        if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        }
    }

    /// The quoted string that starts right after `prefix`, at each place `prefix` occurs.
    fn quoted_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices(prefix) {
            let rest = &text[at + prefix.len()..];
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let end = rest[1..].find(quote).expect("a closing quote");
            out.push(&rest[1..1 + end]);
        }
        out
    }

    /// What index.html loads: `src` and `href` attributes, but not data: URLs.
    fn html_references(html: &str) -> Vec<&str> {
        [" src=", " href="]
            .iter()
            .flat_map(|attr| quoted_after(html, attr))
            .filter(|r| !r.starts_with("data:") && !r.starts_with('#'))
            .collect()
    }

    /// The module specifiers of a module: `import … from '…'`, `export … from '…'`,
    /// `import '…'` and `import('…')`. Comment lines are skipped.
    fn imports(js: &str) -> Vec<&str> {
        js.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .flat_map(|l| {
                ["from ", "import ", "import("]
                    .iter()
                    .flat_map(move |p| quoted_after(l, p))
            })
            .collect()
    }

    #[test]
    fn the_page_and_its_files_are_served_with_their_types() {
        assert_eq!(asset("/"), asset("/index.html"));
        let page = asset("/").unwrap();
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        assert!(page.body.contains("<video"));
        assert_eq!(
            asset("/style.css").unwrap().content_type,
            "text/css; charset=utf-8"
        );
        assert_eq!(
            asset("/main.js").unwrap().content_type,
            "text/javascript; charset=utf-8"
        );
        for name in FILES.iter().map(|(n, _)| n) {
            assert!(asset(&format!("/{name}")).is_some(), "{name}: no type");
        }
        for missing in [
            "",
            "index.html",
            "/mod.rs",
            "/nope.js",
            "/main.js/",
            "//main.js",
        ] {
            assert_eq!(asset(missing), None, "{missing:?}");
        }
    }

    #[test]
    fn every_file_in_the_directory_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web");
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .expect("src/web")
            .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
            .filter(|n| n != "mod.rs" && !n.starts_with('.'))
            .collect();
        let embedded: BTreeSet<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, embedded, "src/web and FILES differ");
    }

    /// Follows the page from index.html through every import: each reference must resolve to
    /// a served file (a renamed file cannot break the page silently), module specifiers must
    /// be relative (a bare name does not load in a browser), and every file is reached.
    #[test]
    fn every_reference_and_import_resolves_and_every_file_is_used() {
        let refs = html_references(body("index.html"));
        for expected in ["style.css", "main.js"] {
            assert!(
                refs.contains(&expected),
                "index.html loads {expected}: {refs:?}"
            );
        }
        let mut reached = BTreeSet::from(["/index.html".to_string()]);
        let mut todo: Vec<String> = Vec::new();
        for r in refs {
            let path = resolve(r);
            assert!(
                asset(&path).is_some(),
                "index.html refers to {r}: not served"
            );
            if reached.insert(path.clone()) && path.ends_with(".js") {
                todo.push(path);
            }
        }
        let mut import_count = 0;
        while let Some(module) = todo.pop() {
            for spec in imports(asset(&module).unwrap().body) {
                import_count += 1;
                assert!(
                    spec.starts_with("./") || spec.starts_with("../") || spec.starts_with('/'),
                    "{module} imports {spec:?}: a bare specifier does not load in a browser"
                );
                let path = resolve(spec);
                assert!(
                    asset(&path).is_some(),
                    "{module} imports {spec}: not served"
                );
                if reached.insert(path.clone()) {
                    todo.push(path);
                }
            }
        }
        assert!(import_count >= 10, "only {import_count} imports found");
        let all: BTreeSet<String> = FILES.iter().map(|(n, _)| format!("/{n}")).collect();
        assert_eq!(reached, all, "files the page never loads");
    }

    #[test]
    fn references_are_found_the_way_a_browser_reads_them() {
        let js = "import { a } from './a.js';\nimport './b.js';\n// import './c.js';\n\
                  export { d } from \"./d.js\";\nconst e = await import('./e.js');\n";
        assert_eq!(imports(js), ["./a.js", "./b.js", "./d.js", "./e.js"]);
        let html = r#"<link rel="icon" href="data:,"><link href="s.css"><script src='m.js'>"#;
        assert_eq!(html_references(html), ["m.js", "s.css"]);
        assert_eq!(resolve("./x.js"), "/x.js");
        assert_eq!(resolve("x.css"), "/x.css");
    }
}
