//! The Netscape bookmark file, as every browser exports and imports it: a `<DL>` list of
//! `<DT><A HREF="…" ADD_DATE="…" TAGS="a,b">title</A>` lines. Only links are read (folders
//! are flattened); anything else in the file is ignored.

use crate::db::Bookmark;

/// One link read from a bookmark file, not yet validated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) title: String,
    pub(crate) url: String,
    /// Space-separated.
    pub(crate) tags: String,
}

/// The bookmarks as a Netscape bookmark file.
pub(crate) fn export(bookmarks: &[Bookmark]) -> String {
    let mut out = String::from(
        "<!DOCTYPE NETSCAPE-Bookmark-file-1>\n\
         <!-- This is an automatically generated file. It will be read and overwritten. DO NOT EDIT! -->\n\
         <META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=UTF-8\">\n\
         <TITLE>Bookmarks</TITLE>\n<H1>Bookmarks</H1>\n<DL><p>\n",
    );
    for b in bookmarks {
        let tags = b.tags.split_whitespace().collect::<Vec<_>>().join(",");
        out.push_str(&format!(
            "    <DT><A HREF=\"{}\"{}>{}</A>\n",
            escape(&b.url),
            if tags.is_empty() { String::new() } else { format!(" TAGS=\"{}\"", escape(&tags)) },
            escape(&b.title)
        ));
    }
    out.push_str("</DL><p>\n");
    out
}

/// The links of a bookmark file, in file order.
pub(crate) fn parse(html: &str) -> Vec<Link> {
    let lower = html.to_ascii_lowercase();
    let mut links = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<a ").map(|i| i + at) {
        let Some(tag_end) = lower[start..].find('>').map(|i| i + start) else { break };
        let Some(close) = lower[tag_end..].find("</a>").map(|i| i + tag_end) else { break };
        let attrs = &html[start + 3..tag_end];
        let attrs_lower = &lower[start + 3..tag_end];
        if let Some(url) = attribute(attrs, attrs_lower, "href") {
            let tags = attribute(attrs, attrs_lower, "tags").unwrap_or_default();
            links.push(Link {
                title: unescape(html[tag_end + 1..close].trim()),
                url,
                tags: tags.split(',').map(str::trim).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" "),
            });
        }
        at = close + 4;
    }
    links
}

/// The value of attribute `name` (lower case) in a tag's attribute text, unescaped.
fn attribute(attrs: &str, attrs_lower: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = attrs_lower[from..].find(name).map(|i| i + from) {
        let before_ok = i == 0 || attrs_lower.as_bytes()[i - 1].is_ascii_whitespace();
        let rest = attrs_lower[i + name.len()..].trim_start();
        if before_ok && rest.starts_with('=') {
            let value_at = attrs.len() - rest.len() + 1;
            let value = attrs[value_at..].trim_start();
            let value = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
                _ => value.split_whitespace().next().unwrap_or_default(),
            };
            return Some(unescape(value));
        }
        from = i + name.len();
    }
    None
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_browsers_write_and_round_trips() {
        let firefox = r#"<!DOCTYPE NETSCAPE-Bookmark-file-1>
<DL><p>
    <DT><H3 ADD_DATE="1">Toolbar</H3>
    <DL><p>
        <DT><A HREF="https://www.rust-lang.org/" ADD_DATE="1700000000" TAGS="lang,rust">Rust &amp; friends</A>
        <dt><a href='https://tokio.rs/?a=1&amp;b=2' icon="data:x">Tokio</a>
        <DT><A ADD_DATE="1">no href</A>
    </DL><p>
</DL>"#;
        let links = parse(firefox);
        assert_eq!(
            links,
            vec![
                Link {
                    title: "Rust & friends".into(),
                    url: "https://www.rust-lang.org/".into(),
                    tags: "lang rust".into()
                },
                Link { title: "Tokio".into(), url: "https://tokio.rs/?a=1&b=2".into(), tags: String::new() },
            ]
        );
        let mine = vec![Bookmark {
            id: 1,
            title: "<b>\"x\"".into(),
            url: "https://x.org/?a&b".into(),
            tags: "a b".into(),
        }];
        let file = export(&mine);
        assert!(file.starts_with("<!DOCTYPE NETSCAPE-Bookmark-file-1>"));
        assert!(!file.contains("<b>"), "{file}");
        assert_eq!(
            parse(&file),
            vec![Link { title: "<b>\"x\"".into(), url: "https://x.org/?a&b".into(), tags: "a b".into() }]
        );
        assert!(parse("<a href=").is_empty() && parse("").is_empty());
    }
}
