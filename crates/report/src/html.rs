//! The compliance report as one self-contained HTML page: styles, charts (inline SVG) and the
//! small script that sorts tables are all in the file, so it opens with no network.

use std::fmt::Write as _;

use crate::compliance::{citations, party_text, ComplianceReport, TableUse};

/// Text for HTML (also strips control characters a capture could carry).
fn h(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in crate::escape(s).chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 28px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9cfdb;font-size:14px}
main{padding:16px 28px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:14px 18px;margin:0 0 16px}
h2{font-size:17px;margin:0 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border-radius:6px;padding:10px 14px;min-width:140px;border:1px solid #dde1e8}
.card b{display:block;font-size:26px}
.card.ok{background:#eef8f0;border-color:#a9d8b4}
.card.bad{background:#fdecec;border-color:#ef9a9a}
.card.warn{background:#fff6e5;border-color:#f3cd85}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e6e9ef;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f6;cursor:pointer;user-select:none}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.finding{color:#b3261e;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:24px}
.heat td.n{min-width:26px}
code{font-size:12px}
";

const SCRIPT: &str = "
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var body=t.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
      var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v||a.cells[i].textContent,y=b.cells[i].dataset.v||b.cells[i].textContent;
        var nx=parseFloat(x),ny=parseFloat(y);
        var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
        return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
";

/// A horizontal bar chart of one value per guide table.
fn bars(title: &str, tables: &[TableUse], value: fn(&TableUse) -> u64, unit: &str) -> String {
    let row_h = 18;
    let label_w = 300;
    let bar_w = 320;
    let height = 30 + row_h * tables.len().max(1);
    let max = tables.iter().map(value).max().unwrap_or(1).max(1);
    let mut s = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"0\" y=\"16\" font-size=\"14\" font-weight=\"600\">{}</text>",
        h(title),
        label_w + bar_w + 90,
        label_w + bar_w + 90,
        h(title)
    );
    for (i, t) in tables.iter().enumerate() {
        let y = 26 + i * row_h;
        // Long titles are cut to the label column; the bar's tooltip has the whole title.
        let short: String = if t.title.chars().count() > 44 {
            t.title.chars().take(43).chain(['…']).collect()
        } else {
            t.title.clone()
        };
        let v = value(t);
        let w = (v as f64 / max as f64 * bar_w as f64).max(1.0);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{} {}</text><rect x=\"{}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"#3f6fd1\"><title>{} {}: {}</title></rect><text x=\"{}\" y=\"{}\" font-size=\"11\">{v}</text>",
            label_w - 6,
            y + 12,
            t.table,
            h(&short),
            label_w,
            y + 2,
            row_h - 4,
            h(&t.title),
            v,
            unit,
            label_w as f64 + w + 4.0,
            y + 12
        );
    }
    s.push_str("</svg>");
    s
}

impl ComplianceReport {
    /// The report as a self-contained HTML page.
    pub fn to_html(&self) -> String {
        let v = &self.verdict;
        let mut o = String::new();
        o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>flowdoc compliance report</title>");
        let _ = write!(o, "<style>{STYLE}</style></head><body>");
        let _ = write!(
            o,
            "<header><h1>flowdoc compliance report</h1><p>{} flows: {} documented by the IM and Presence port guide, {} undocumented; {} openings needed</p></header><main>",
            v.flows, v.documented, v.undocumented, v.openings
        );

        // First screen: the verdict, the findings that matter most.
        o.push_str("<section id=\"verdict\"><h2>Verdict</h2><div class=\"cards\">");
        for (name, n, class) in self.headline() {
            let _ = write!(
                o,
                "<div class=\"card {class}\" data-check=\"{}\"><b>{n}</b>{}</div>",
                h(&name),
                h(&name)
            );
        }
        o.push_str("</div></section>");

        o.push_str("<section id=\"findings\"><h2>Findings</h2>");
        if self.findings.is_empty() {
            o.push_str("<p>None.</p>");
        } else {
            o.push_str("<table class=\"sortable\"><thead><tr><th>finding</th><th>flows</th><th>what it means</th><th>examples</th></tr></thead><tbody>");
            for f in &self.findings {
                let ex: Vec<String> = f
                    .examples
                    .iter()
                    .map(|e| format!("<code>{}</code>", h(e)))
                    .collect();
                let _ = write!(
                    o,
                    "<tr><td class=\"finding\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                    h(&f.code),
                    f.flows,
                    h(&f.explanation),
                    ex.join("<br>")
                );
            }
            o.push_str("</tbody></table>");
        }
        o.push_str("</section>");

        o.push_str("<section id=\"undocumented\"><h2>Undocumented flows to review</h2>");
        if self.undocumented.is_empty() {
            o.push_str("<p>None.</p>");
        } else {
            o.push_str("<table class=\"sortable\"><thead><tr><th>source</th><th>destination</th><th>transport</th><th>port</th><th>looks like</th><th>flows</th><th>bytes</th><th>first seen</th><th>last seen</th><th>findings</th></tr></thead><tbody>");
            for u in &self.undocumented {
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"finding\">{}</td></tr>",
                    h(&party_text(&u.source)),
                    h(&party_text(&u.destination)),
                    h(&u.transport),
                    u.port.map(|p| p.to_string()).unwrap_or_default(),
                    h(&u.looks_like.join(", ")),
                    u.flows,
                    u.bytes,
                    h(&u.first_seen),
                    h(&u.last_seen),
                    h(&u.findings.join(", "))
                );
            }
            o.push_str("</tbody></table>");
            if self.undocumented_not_listed > 0 {
                let _ = write!(
                    o,
                    "<p>{} more undocumented flows are counted but not listed.</p>",
                    self.undocumented_not_listed
                );
            }
        }
        o.push_str("</section>");

        o.push_str("<section id=\"charts\"><h2>Traffic per guide table</h2><div class=\"charts\">");
        o.push_str(&bars(
            "Flows per guide table",
            &self.tables,
            |t| t.flows,
            "flows",
        ));
        o.push_str(&bars(
            "Bytes per guide table",
            &self.tables,
            |t| t.bytes,
            "bytes",
        ));
        o.push_str("</div></section>");

        o.push_str("<section id=\"matrix\"><h2>Hosts by service (flows)</h2>");
        let m = &self.matrix;
        let max = m.cells.iter().flatten().copied().max().unwrap_or(1).max(1);
        o.push_str("<table class=\"heat\"><thead><tr><th>host</th>");
        for s in &m.services {
            let _ = write!(
                o,
                "<th title=\"{}\">{}</th>",
                h(s),
                h(s.split(' ').next().unwrap_or(""))
            );
        }
        o.push_str("</tr></thead><tbody>");
        for (host, row) in m.hosts.iter().zip(&m.cells) {
            let _ = write!(o, "<tr><td>{}</td>", h(host));
            for (s, &n) in m.services.iter().zip(row) {
                let alpha = if n == 0 {
                    0.0
                } else {
                    0.15 + 0.85 * n as f64 / max as f64
                };
                let _ = write!(
                    o,
                    "<td class=\"n\" style=\"background:rgba(63,111,209,{alpha:.2})\" title=\"{} on {}: {n} flows\">{}</td>",
                    h(host),
                    h(s),
                    if n == 0 { String::new() } else { n.to_string() }
                );
            }
            o.push_str("</tr>");
        }
        o.push_str("</tbody></table></section>");

        o.push_str("<section id=\"openings\"><h2>Openings needed</h2><p>Documented flows, aggregated by source, destination, transport and destination port, each with the guide's rows that justify it.</p>");
        o.push_str("<table class=\"sortable\"><thead><tr><th>source</th><th>destination</th><th>transport</th><th>port</th><th>guide rows</th><th>flows</th><th>bytes</th><th>first seen</th><th>last seen</th><th>findings</th></tr></thead><tbody>");
        for p in &self.openings {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"finding\">{}</td></tr>",
                h(&party_text(&p.source)),
                h(&party_text(&p.destination)),
                h(&p.transport),
                p.port.map(|p| p.to_string()).unwrap_or_default(),
                h(&citations(&p.rows)),
                p.flows,
                p.bytes,
                h(&p.first_seen),
                h(&p.last_seen),
                h(&p.findings.join(", "))
            );
        }
        o.push_str("</tbody></table></section>");

        let p = &self.provenance;
        o.push_str("<section id=\"provenance\"><h2>Provenance</h2><ul>");
        for f in &p.files {
            let _ =
                write!(
                o,
                "<li>capture <code>{}</code>: {} records, {} bytes, sha256 <code>{}</code>{}</li>",
                h(&f.path),
                f.records,
                f.bytes.map_or("?".into(), |b| b.to_string()),
                h(f.sha256.as_deref().unwrap_or("unreadable")),
                f.error.as_ref().map(|e| format!(" (error: {})", h(e))).unwrap_or_default()
            );
        }
        let _ = write!(
            o,
            "<li>time span: {} .. {}</li><li>catalogue: {} ({})</li>",
            h(p.first_seen.as_deref().unwrap_or("-")),
            h(p.last_seen.as_deref().unwrap_or("-")),
            h(&p.catalogue),
            h(&p.catalogue_version)
        );
        match &p.inventory {
            Some(i) => {
                let _ = write!(
                    o,
                    "<li>inventory: <code>{}</code> ({}; {} hosts, {} networks), sha256 <code>{}</code></li>",
                    h(&i.path),
                    h(i.name.as_deref().unwrap_or("unnamed")),
                    i.hosts,
                    i.networks,
                    h(i.sha256.as_deref().unwrap_or("-"))
                );
            }
            None => o.push_str("<li>inventory: none (no role checks; hosts shown by address)</li>"),
        }
        let _ = write!(o, "<li>flowdoc {}</li></ul></section>", h(&p.flowdoc));
        let _ = writeln!(o, "</main><script>{SCRIPT}</script></body></html>");
        o
    }
}
