//! The web pages the link server serves on its HTTP listener: the agent desktop
//! (`/agent`), the supervisor wallboard (`/wallboard`) and their scripts and style
//! (`/web/<file>`). The files live in `cti-core/web/` as plain HTML, CSS and JavaScript
//! (no build step) and are compiled into the binary, so an installation needs no files
//! beside its configuration.

use std::sync::Arc;

use super::Page;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// (request path, content type, body).
const FILES: &[(&str, &str, &str)] = &[
    ("/agent", HTML, include_str!("../../web/agent.html")),
    ("/wallboard", HTML, include_str!("../../web/wallboard.html")),
    ("/web/cti.js", JS, include_str!("../../web/cti.js")),
    ("/web/agent.js", JS, include_str!("../../web/agent.js")),
    ("/web/wallboard.js", JS, include_str!("../../web/wallboard.js")),
    ("/web/style.css", CSS, include_str!("../../web/style.css")),
];

/// Every page and asset, for [`super::LinkConfig::pages`].
pub fn web_pages() -> Vec<Page> {
    FILES
        .iter()
        .map(|(path, content_type, body)| Page {
            path: path.to_string(),
            content_type: content_type.to_string(),
            body: Arc::from(body.as_bytes()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `src="/..."` and `href="/..."` paths an HTML page refers to.
    fn references(html: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for attr in ["src=\"", "href=\""] {
            let mut rest = html;
            while let Some(i) = rest.find(attr) {
                rest = &rest[i + attr.len()..];
                let end = rest.find('"').unwrap_or(rest.len());
                if rest.starts_with('/') {
                    out.push(&rest[..end]);
                }
            }
        }
        out
    }

    #[test]
    fn every_script_and_style_a_page_uses_is_served() {
        let pages = web_pages();
        let served: Vec<&str> = pages.iter().map(|p| p.path.as_str()).collect();
        for page in pages.iter().filter(|p| p.content_type == HTML) {
            let html = std::str::from_utf8(&page.body).expect("pages are UTF-8");
            let refs = references(html);
            assert!(!refs.is_empty(), "{} loads its scripts", page.path);
            for r in refs {
                assert!(served.contains(&r), "{} refers to {r}, which is not served", page.path);
            }
        }
    }

    #[test]
    fn both_pages_load_the_shared_client_before_their_own_script() {
        for (page, own) in [("/agent", "/web/agent.js"), ("/wallboard", "/web/wallboard.js")] {
            let (_, _, html) = FILES.iter().find(|(p, _, _)| *p == page).expect("page exists");
            let shared = html.find("/web/cti.js").expect("loads cti.js");
            let mine = html.find(own).expect("loads its own script");
            assert!(shared < mine, "{page} loads cti.js before {own}");
        }
    }
}
