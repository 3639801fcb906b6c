//! The console's page shell: HTML escaping, the navigation, one inline
//! style sheet (high-contrast palette, visible focus, readable at phone
//! width) and one small inline script of our own that refreshes `<main>`
//! from the server every few seconds while the tab is visible. Without
//! JavaScript every page is complete as served.

use std::fmt::Write;

pub use crate::chart::escape;

/// Percent-encodes a query value.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The pages, in navigation order: (path, label).
pub const PAGES: [(&str, &str); 5] = [
    ("/", "Overview"),
    ("/console/anomalies", "Anomalies"),
    ("/console/forecasts", "Forecasts"),
    ("/console/alerts", "Alerts"),
    ("/console/series", "Series"),
];

const STYLE: &str = r#"
:root{--bg:#ffffff;--fg:#111318;--muted:#4a5060;--line:#d5d9e2;--accent:#0b57d0;--ok:#0f6b2f;--warn:#8a4b00;--bad:#b3261e;--band:#c9dcfb;--value:#0b57d0;--expected:#5f3dc4;--forecast:#8a4b00;--card:#f5f7fb}
@media (prefers-color-scheme:dark){:root{--bg:#121417;--fg:#eef0f4;--muted:#b7bcc8;--line:#3a3f4b;--accent:#8ab4f8;--ok:#7dd69b;--warn:#f6c26b;--bad:#f2b8b5;--band:#27406b;--value:#8ab4f8;--expected:#c5a8ff;--forecast:#f6c26b;--card:#1c1f25}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent)}
a:focus,button:focus,input:focus,select:focus{outline:3px solid var(--accent);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--bg);padding:4px 8px;z-index:2}
header{border-bottom:1px solid var(--line);padding:8px 16px;display:flex;flex-wrap:wrap;gap:8px 24px;align-items:center}
header .brand{font-weight:700;font-size:1.1rem}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px}
nav a{text-decoration:none;padding:4px 2px}
nav a[aria-current=page]{font-weight:700;border-bottom:3px solid var(--accent)}
main{padding:16px;max-width:1100px;margin:0 auto}
h1{font-size:1.5rem;margin:0 0 12px}h2{font-size:1.15rem;margin:20px 0 8px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .label{color:var(--muted);font-size:.85rem}.card .value{font-size:1.35rem;font-weight:650}
.status-ok{color:var(--ok)}.status-degraded{color:var(--warn)}.status-failing{color:var(--bad)}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}
.table-wrap{overflow-x:auto}
code,.labels{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;word-break:break-all}
.chart{width:100%;height:auto;display:block;background:var(--card);border:1px solid var(--line);border-radius:8px}
.chart text{fill:var(--muted);font-size:11px}.chart .grid{stroke:var(--line);stroke-width:1}
.chart .line{fill:none;stroke-width:2}.chart .value{stroke:var(--value)}.chart .expected{stroke:var(--expected);stroke-dasharray:5 4}
.chart .forecast{stroke:var(--forecast);stroke-dasharray:2 3}.chart .band{fill:var(--band);opacity:.7}
.chart .mark{fill:var(--bad);stroke:var(--bg);stroke-width:1.5}.chart .empty{fill:var(--muted);font-size:14px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;color:var(--muted);font-size:.85rem;margin:4px 0 12px}
.swatch{display:inline-block;width:14px;height:4px;vertical-align:middle;margin-right:4px}
.sw-value{background:var(--value)}.sw-expected{background:var(--expected)}.sw-band{background:var(--band);height:10px}.sw-mark{background:var(--bad);border-radius:50%;width:8px;height:8px}.sw-forecast{background:var(--forecast)}
.ranking{list-style:none;padding:0}
.series{border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin:12px 0}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:.8rem;font-weight:600;border:1px solid currentColor}
.badge.bad{color:var(--bad)}.badge.warn{color:var(--warn)}.badge.ok{color:var(--ok)}
form.search{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin:8px 0 16px}
label{display:block;font-size:.85rem;color:var(--muted)}
input[type=text]{font:inherit;padding:6px 8px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg);min-width:14rem}
button{font:inherit;padding:6px 14px;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:var(--bg);cursor:pointer}
.muted{color:var(--muted)}footer{padding:8px 16px;color:var(--muted);font-size:.8rem;border-top:1px solid var(--line)}
@media (max-width:600px){main{padding:10px}th,td{padding:4px}.cards{grid-template-columns:repeat(2,1fr)}.chart text{font-size:18px}}
"#;

/// Replaces `<main>` with the same page fetched again, every `data-refresh`
/// seconds while the page is visible; keeps the focus and says when it
/// last updated. Failures leave the page as it was.
const SCRIPT: &str = r#"
(function(){
  var main=document.querySelector('main');var every=+main.dataset.refresh;if(!every)return;
  var status=document.getElementById('updated');
  function tick(){
    if(document.hidden){return setTimeout(tick,every*1000);}
    var url=new URL(location.href);url.searchParams.set('fragment','main');
    fetch(url,{headers:{'Accept':'text/html'},credentials:'same-origin'}).then(function(r){
      if(!r.ok)throw new Error(r.status);return r.text();
    }).then(function(html){
      var active=document.activeElement&&document.activeElement.id;
      if(!(document.activeElement&&document.activeElement.closest('form'))){main.innerHTML=html;}
      if(active){var el=document.getElementById(active);if(el)el.focus();}
      if(status)status.textContent='updated '+new Date().toLocaleTimeString();
      document.dispatchEvent(new CustomEvent('console:updated'));
    }).catch(function(e){if(status)status.textContent='update failed ('+e.message+'), retrying';})
      .finally(function(){setTimeout(tick,every*1000);});
  }
  setTimeout(tick,every*1000);
})();
"#;

/// A whole page: `title`, the navigation with `active` marked, and `body`
/// as the content of `<main>`, refreshed every `refresh_secs` (0: never).
pub fn page(title: &str, active: &str, body: &str, refresh_secs: u64) -> String {
    let mut out = String::with_capacity(body.len() + STYLE.len() + 2048);
    let _ = write!(
        out,
        r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,"><title>{} · StreamGate</title><style>{STYLE}</style></head><body><a class="skip" href="#main">Skip to content</a><header><span class="brand">StreamGate</span><nav aria-label="Console"><ul>"##,
        escape(title)
    );
    for (path, label) in PAGES {
        let current = if path == active {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(out, r#"<li><a href="{path}"{current}>{label}</a></li>"#);
    }
    let _ = write!(
        out,
        r#"</ul></nav></header><main id="main" tabindex="-1" data-refresh="{refresh_secs}">{body}</main><footer><span id="updated" role="status" aria-live="polite">{}</span> · <a href="/api/v1/status">JSON API</a> · <a href="/metrics">/metrics</a></footer><script>{SCRIPT}</script></body></html>"#,
        if refresh_secs > 0 {
            format!("refreshes every {refresh_secs} s")
        } else {
            String::new()
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_the_current_page_marked() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let html = page("A <b>", "/console/alerts", "<p>hi</p>", 5);
        assert!(html.contains("<title>A &lt;b&gt; · StreamGate</title>"));
        assert!(html.contains(r#"<a href="/console/alerts" aria-current="page">Alerts</a>"#));
        assert_eq!(html.matches(r#"aria-current="page""#).count(), 1);
        assert!(html.contains(r#"data-refresh="5""#));
        assert_eq!(url_encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
