//! The console's HTML: one layout, text always escaped, one stylesheet compiled into the
//! binary. No script and nothing from elsewhere: the pages work behind any firewall, and the
//! content security policy allows nothing else.

/// The stylesheet, served at `/console.css`.
pub const CSS: &str = r#"
:root { --ink: #1d2733; --muted: #5b6b7c; --line: #d8dee6; --bg: #f5f7fa; --bad: #b3261e; --ok: #1b6e3a; --accent: #1f5fae; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: center; padding: .7rem 1.5rem; background: #16202b; color: #fff; }
header .brand { font-weight: 700; letter-spacing: .02em; }
header nav a { color: #c9d6e3; margin-right: 1rem; text-decoration: none; }
header nav a.here { color: #fff; border-bottom: 2px solid #6fa8ff; }
header .who { margin-left: auto; color: #c9d6e3; }
header .who a { color: #fff; margin-left: .6rem; }
main { padding: 1.2rem 1.5rem 3rem; max-width: 1400px; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; }
.card h2 { margin-top: 0; }
meter { width: 10rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; min-width: 14rem; }
.card .big { font-size: 1.8rem; font-weight: 700; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef2f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.reason { max-width: 40rem; word-break: break-word; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
.muted { color: var(--muted); }
.error { color: var(--bad); font-weight: 600; }
.ok { color: var(--ok); font-weight: 600; }
form.inline { display: inline; }
input[type=text], input[type=password], input[type=search] { padding: .4rem .5rem; border: 1px solid #b9c4d0; border-radius: 4px; font: inherit; min-width: 18rem; }
input[type=text].short { min-width: 0; width: 8rem; }
button { padding: .45rem .9rem; border: 0; border-radius: 4px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
button.danger { background: var(--bad); }
.login { max-width: 22rem; margin: 8vh auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1.5rem; }
.login label { display: block; margin: .8rem 0 .2rem; }
.login input { width: 100%; min-width: 0; }
.login button { margin-top: 1rem; width: 100%; }
.tag { display: inline-block; padding: 0 .4rem; border-radius: 3px; background: #eef2f6; font-size: 12px; }
.tag.raw { background: #e8f0fe; } .tag.canonical { background: #e6f4ea; } .tag.dlq { background: #fce8e6; } .tag.status { background: #fef7e0; }
"#;

/// `text` escaped for HTML text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Which page of the navigation is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Here {
    Failures,
    Orders,
    Audit,
    None,
}

/// A whole page: the header with the navigation and the operator, then `body`.
pub fn layout(title: &str, here: Here, user: Option<&str>, body: &str) -> String {
    let link = |to: Here, href: &str, name: &str| {
        let class = if to == here { " class=\"here\"" } else { "" };
        format!("<a href=\"{href}\"{class}>{name}</a>")
    };
    let nav = match user {
        Some(user) => format!(
            "<nav>{}{}{}</nav><span class=\"who\">signed in as <b id=\"operator\">{}</b><a href=\"/logout\">Sign out</a></span>",
            link(Here::Failures, "/", "Failures"),
            link(Here::Orders, "/orders", "Orders"),
            link(Here::Audit, "/audit", "Audit log"),
            esc(user)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · OrderBridge console</title><link rel=\"stylesheet\" href=\"/console.css\"></head>\
         <body><header><span class=\"brand\">OrderBridge console</span>{nav}</header><main>{body}</main></body></html>",
        esc(title)
    )
}

/// The sign-in page, with `error` above the form when a sign-in failed.
pub fn login(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"login-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    layout(
        "Sign in",
        Here::None,
        None,
        &format!(
            "<form class=\"login\" method=\"post\" action=\"/login\"><h1>Sign in</h1>{error}\
             <label for=\"username\">Operator</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\" id=\"sign-in\">Sign in</button></form>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_outside_cannot_become_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        let page = layout("<b>", Here::Failures, Some("<i>ana</i>"), "");
        assert!(!page.contains("<i>ana</i>") && page.contains("&lt;i&gt;ana"));
    }
}
