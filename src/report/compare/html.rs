//! The comparison as a self-contained HTML page, styled like `report.html`.

use std::fmt::Write as _;

use super::{Comparison, MetricKind};
use crate::report::html::{Esc, ms, page, pct};

/// The comparison as an HTML document.
pub fn to_html(c: &Comparison) -> String {
    let regressions = c.regressions();
    let class = if regressions.is_empty() {
        "passed"
    } else {
        "failed"
    };
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<header class=\"banner {class}\"><div class=\"verdict\">{}</div><div><h1>{}</h1>\
         <p>base <code>{}</code> ({}) → new <code>{}</code> ({})</p>\
         <p class=\"meta\">max regression {}: latency percentiles relative, success rate in \
         percentage points, any expectation that stops holding</p></div></header>",
        if regressions.is_empty() {
            "NO REGRESSION"
        } else {
            "REGRESSED"
        },
        Esc(&c.scenario),
        Esc(&c.base_run),
        Esc(&c.base_verdict),
        Esc(&c.new_run),
        Esc(&c.new_verdict),
        c.bound
    );
    if !regressions.is_empty() {
        body.push_str("<div class=\"callout alert\"><strong>Regressions</strong><ul>");
        for r in &regressions {
            let _ = write!(body, "<li>{}</li>", Esc(r));
        }
        body.push_str("</ul></div>\n");
    }
    body.push_str("<h2>Routes</h2>\n");
    for r in &c.routes {
        let _ = write!(
            body,
            "<h3><code>{}</code> → <code>{}</code></h3>\n<table>\n<tr><th>Metric</th>\
             <th class=\"num\">Base</th><th class=\"num\">New</th><th class=\"num\">Change</th>\
             <th></th></tr>\n<tr><td>requests</td><td class=\"num\">{}</td><td class=\"num\">{}\
             </td><td></td><td></td></tr>\n",
            Esc(&r.route),
            Esc(r.backend.as_deref().unwrap_or("—")),
            r.requests.0.map_or("missing".into(), |n| n.to_string()),
            r.requests.1.map_or("missing".into(), |n| n.to_string()),
        );
        for m in &r.metrics {
            let show = |v| match m.kind {
                MetricKind::Rate => pct(v),
                _ => ms(v),
            };
            let (row, note) = if m.regressed {
                (" class=\"fail\"", "<span class=\"bad\">regressed</span>")
            } else if m.improved() {
                ("", "<span class=\"ok\">better</span>")
            } else {
                ("", "")
            };
            let _ = writeln!(
                body,
                "<tr{row}><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td>{note}</td></tr>",
                m.name,
                show(m.base),
                show(m.new),
                Esc(&m.change_text())
            );
        }
        body.push_str("</table>\n");
    }
    body.push_str(
        "<h2>Expectations</h2>\n<table>\n<tr><th>Expectation</th><th>Assertion</th>\
         <th>Base</th><th>New</th><th></th></tr>\n",
    );
    for e in &c.expectations {
        let cell = |v: &Option<(bool, String)>| match v {
            Some((true, o)) => format!("<span class=\"ok\">✓</span> {}", Esc(o)),
            Some((false, o)) => format!("<span class=\"bad\">✗</span> {}", Esc(o)),
            None => "missing".to_string(),
        };
        let (row, note) = if e.regressed() {
            (" class=\"fail\"", "<span class=\"bad\">now fails</span>")
        } else if e.fixed() {
            ("", "<span class=\"ok\">now holds</span>")
        } else {
            ("", "")
        };
        let _ = writeln!(
            body,
            "<tr{row}><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{note}</td></tr>",
            Esc(&e.name),
            Esc(&e.assertion),
            cell(&e.base),
            cell(&e.new)
        );
    }
    body.push_str("</table>\n");
    page(&format!("compare {}", c.scenario), &body)
}
