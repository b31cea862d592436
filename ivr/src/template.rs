//! `{var}` templates: prompt names (`status_{status}`), URLs, JSON bodies, attached data.
//! An unset variable expands to nothing; `{{` and `}}` are literal braces.

use std::collections::BTreeMap;

/// Check a template's braces; the error says what was expected.
pub fn check(t: &str) -> Result<(), String> {
    parse(t, |_| {}, |_| {})
}

/// The variables a template uses.
pub fn vars(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let _ = parse(t, |_| {}, |v| out.push(v.to_string()));
    out
}

/// Expand a template; `encode` is applied to each variable's value (URL encoding for
/// URLs, nothing elsewhere).
pub fn expand(t: &str, vars: &BTreeMap<String, String>, encode: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let out_cell = std::cell::RefCell::new(&mut out);
    let _ = parse(
        t,
        |lit| out_cell.borrow_mut().push_str(lit),
        |v| {
            let val = vars.get(v).map(|s| encode(s)).unwrap_or_default();
            out_cell.borrow_mut().push_str(&val);
        },
    );
    out
}

/// Expand without encoding.
pub fn expand_plain(t: &str, vars: &BTreeMap<String, String>) -> String {
    expand(t, vars, |s| s.to_string())
}

/// Expand a URL template: a variable that starts the template is the base URL
/// (`{repair_base}/tickets/{ticket}`) and goes in as it is; every other variable is
/// percent-encoded, so that a caller's digits can never change the URL's shape.
pub fn expand_url(t: &str, vars: &BTreeMap<String, String>) -> String {
    if let Some(rest) = t.strip_prefix('{').filter(|r| !r.starts_with('{')) {
        if let Some(end) = rest.find('}') {
            let base = vars.get(&rest[..end]).cloned().unwrap_or_default();
            return base + &expand(&rest[end + 1..], vars, url_encode);
        }
    }
    expand(t, vars, url_encode)
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse(t: &str, mut lit: impl FnMut(&str), mut var: impl FnMut(&str)) -> Result<(), String> {
    let mut rest = t;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{{") {
            lit("{");
            rest = r;
        } else if let Some(r) = rest.strip_prefix("}}") {
            lit("}");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let Some(end) = r.find('}') else {
                return Err(format!("unclosed `{{` in {t:?}: expected {{name}}"));
            };
            let name = &r[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad variable {{{name}}} in {t:?}: expected letters, digits and _"));
            }
            var(name);
            rest = &r[end + 1..];
        } else if rest.starts_with('}') {
            return Err(format!("stray `}}` in {t:?}: write }}}} for a literal brace"));
        } else {
            let next = rest.find(['{', '}']).unwrap_or(rest.len());
            lit(&rest[..next]);
            rest = &rest[next..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_replaced_and_braces_checked() {
        let vars = BTreeMap::from([("t".to_string(), "a b/1".to_string())]);
        assert_eq!(expand_plain("status_{t}", &vars), "status_a b/1");
        assert_eq!(expand("/x?q={t}&u={unset}", &vars, url_encode), "/x?q=a%20b%2F1&u=");
        assert_eq!(expand_plain("{{lit}}", &vars), "{lit}");
        let base = BTreeMap::from([
            ("b".to_string(), "http://h:1".to_string()),
            ("t".to_string(), "1/2".to_string()),
        ]);
        assert_eq!(expand_url("{b}/x/{t}", &base), "http://h:1/x/1%2F2");
        assert!(check("a{b").is_err());
        assert!(check("a}b").is_err());
        assert!(check("{a-b}").is_err());
        assert_eq!(super::vars("{a}{b}"), vec!["a", "b"]);
    }
}
