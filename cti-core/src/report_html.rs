//! `hotline report ... --format html`: one self-contained page for a period (inline CSS,
//! inline SVG charts, no scripts, nothing fetched), for a manager to open or mail.
//!
//! The page: the period's headline figures; calls by interval (answered, abandoned,
//! other unanswered, stacked); service level by interval against the target; agent
//! occupancy; then the queue and agent tables and the table of the report asked for,
//! in the same units as the text tables (docs/reports.md).

use std::fmt::Write as _;

use crate::report::{self, By, Kind, Params, Table};
use crate::store::{Store, StoreError};

/// What the page needs besides the report parameters.
#[derive(Clone, Debug)]
pub struct Page {
    /// The heading: the installation's name or file.
    pub title: String,
    /// The service level target, percent (a dashed line on the chart).
    pub target_pct: f64,
}

/// Escape text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --ink:#1d2733; --muted:#5f6b7a; --line:#dde3ea; --bg:#f5f7fa; --ok:#2f9e44; --bad:#d9480f; --other:#adb5bd; --accent:#1c6dd0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--ink); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 40px; }
header h1 { font-size: 22px; margin: 0 0 2px; }
header p { margin: 0; color: var(--muted); }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 20px 0; }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.kpi b { display: block; font-size: 24px; font-variant-numeric: tabular-nums; }
.kpi span { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.kpi.good b { color: var(--ok); } .kpi.poor b { color: var(--bad); }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 16px; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 8px; }
svg { display: block; width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
.legend { display: flex; gap: 14px; color: var(--muted); font-size: 12px; margin-top: 4px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.n, th.n { text-align: right; }
tr:last-child td { border-bottom: 0; }
.scroll { overflow-x: auto; }
.empty { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 12px; margin-top: 8px; }
@media (max-width: 800px) { .grid { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } section, .kpi { break-inside: avoid; } }
"#;

/// An HTML table from a report table, in the units of the text tables.
pub fn table_html(t: &Table) -> String {
    if t.rows.is_empty() {
        return "<p class=\"empty\">No rows in this period.</p>".into();
    }
    let shown = t.shown();
    let numeric: Vec<bool> = shown
        .iter()
        .map(|&i| {
            t.rows.iter().all(|r| matches!(r[i], serde_json::Value::Number(_) | serde_json::Value::Null))
        })
        .collect();
    let mut out = String::from("<div class=\"scroll\"><table><thead><tr>");
    for (k, &i) in shown.iter().enumerate() {
        let cls = if numeric[k] { " class=\"n\"" } else { "" };
        let _ = write!(out, "<th{cls}>{}</th>", esc(&report::heading(&t.columns[i])));
    }
    out.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        out.push_str("<tr>");
        for (k, &i) in shown.iter().enumerate() {
            let cls = if numeric[k] { " class=\"n\"" } else { "" };
            let _ = write!(out, "<td{cls}>{}</td>", esc(&Table::display_cell(&t.columns[i], &r[i])));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// One interval of the charts.
#[derive(Clone, Debug, Default)]
struct Interval {
    label: String,
    offered: u64,
    answered: u64,
    abandoned: u64,
    within: f64,
}

/// The interval for charts: the report's `--by`, else hours for up to two days, days up
/// to two months, months beyond.
fn chart_by(p: &Params) -> By {
    if let Some(b) = p.by {
        return b;
    }
    let days = (p.to_ms - p.from_ms) as f64 / 86_400_000.0;
    if days <= 2.0 {
        By::Hour
    } else if days <= 62.0 {
        By::Day
    } else {
        By::Month
    }
}

fn label(by: By, local: &str) -> String {
    // `YYYY-MM-DD HH:MM:SS`
    match by {
        By::HalfHour | By::Hour => local.get(11..16).unwrap_or(local).to_string(),
        By::Day | By::Week => local.get(5..10).unwrap_or(local).to_string(),
        By::Month => local.get(0..7).unwrap_or(local).to_string(),
    }
}

/// Calls by interval: stacked bars (answered, abandoned, other unanswered).
fn calls_chart(iv: &[Interval]) -> String {
    let (w, h, left, bottom, top) = (540.0, 240.0, 36.0, 26.0, 10.0);
    let max = iv.iter().map(|i| i.offered).max().unwrap_or(0).max(1);
    let step = nice_step(max);
    let ymax = (max.div_ceil(step) * step) as f64;
    let plot_w = w - left - 8.0;
    let plot_h = h - bottom - top;
    let n = iv.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.7).min(36.0);
    let y = |v: f64| top + plot_h - v / ymax * plot_h;
    let mut s = format!("<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Calls by interval\">");
    let mut g = 0;
    while g as f64 <= ymax {
        let yy = y(g as f64);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#dde3ea\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{g}</text>",
            w - 8.0,
            left - 6.0,
            yy + 4.0
        );
        g += step;
    }
    let every = label_every(iv.len(), plot_w);
    for (k, i) in iv.iter().enumerate() {
        let x = left + slot * k as f64 + (slot - bar) / 2.0;
        let other = i.offered.saturating_sub(i.answered + i.abandoned);
        let mut base = 0.0;
        for (v, color, what) in [
            (i.answered, "#2f9e44", "answered"),
            (i.abandoned, "#d9480f", "abandoned"),
            (other, "#adb5bd", "other"),
        ] {
            if v == 0 {
                continue;
            }
            let y1 = y(base + v as f64);
            let hh = y(base) - y1;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y1:.1}\" width=\"{bar:.1}\" height=\"{hh:.1}\" fill=\"{color}\"><title>{}: {v} {what}</title></rect>",
                esc(&i.label)
            );
            base += v as f64;
        }
        if k % every == 0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                h - 8.0,
                esc(&i.label)
            );
        }
    }
    s.push_str("</svg>");
    s.push_str("<div class=\"legend\"><span><i style=\"background:#2f9e44\"></i>answered</span><span><i style=\"background:#d9480f\"></i>abandoned</span><span><i style=\"background:#adb5bd\"></i>timed out or left otherwise</span></div>");
    s
}

/// Service level by interval (bars coloured against the target) and the target line.
fn service_chart(iv: &[Interval], target: f64) -> String {
    let (w, h, left, bottom, top) = (540.0, 240.0, 40.0, 26.0, 10.0);
    let plot_w = w - left - 8.0;
    let plot_h = h - bottom - top;
    let y = |v: f64| top + plot_h - v / 100.0 * plot_h;
    let n = iv.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.7).min(36.0);
    let mut s =
        format!("<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Service level against target\">");
    for g in [0, 25, 50, 75, 100] {
        let yy = y(f64::from(g));
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#dde3ea\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{g}%</text>",
            w - 8.0,
            left - 6.0,
            yy + 4.0
        );
    }
    let every = label_every(iv.len(), plot_w);
    for (k, i) in iv.iter().enumerate() {
        let x = left + slot * k as f64 + (slot - bar) / 2.0;
        if i.offered > 0 {
            let sl = 100.0 * i.within / i.offered as f64;
            let color = if sl >= target { "#2f9e44" } else { "#d9480f" };
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{color}\" opacity=\"0.85\"><title>{}: {sl:.1}%</title></rect>",
                y(sl),
                y(0.0) - y(sl),
                esc(&i.label)
            );
        }
        if k % every == 0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                h - 8.0,
                esc(&i.label)
            );
        }
    }
    let ty = y(target);
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#1c6dd0\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" style=\"fill:#1c6dd0\">target {target:.0}%</text>",
        w - 8.0,
        w - 10.0,
        ty - 5.0
    );
    s.push_str("</svg>");
    let _ = write!(
        s,
        "<div class=\"legend\"><span><i style=\"background:#2f9e44\"></i>at or above target</span><span><i style=\"background:#d9480f\"></i>below target</span><span><i style=\"background:#1c6dd0\"></i>target ({target:.0}%)</span></div>"
    );
    s
}

/// Agent occupancy: one horizontal bar per agent.
fn occupancy_chart(agents: &[(String, f64, f64)]) -> String {
    if agents.is_empty() {
        return "<p class=\"empty\">No agent was logged in during this period.</p>".into();
    }
    let row = 22.0;
    let (w, left, right) = (1100.0, 70.0, 230.0);
    let h = row * agents.len() as f64 + 26.0;
    let plot_w = w - left - right;
    let mut s = format!("<svg viewBox=\"0 0 {w} {h:.0}\" role=\"img\" aria-label=\"Agent occupancy\">");
    for g in [0, 25, 50, 75, 100] {
        let x = left + plot_w * f64::from(g) / 100.0;
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{:.1}\" stroke=\"#dde3ea\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{g}%</text>",
            h - 20.0,
            h - 6.0
        );
    }
    for (k, (agent, occ, logged_in_s)) in agents.iter().enumerate() {
        let y = row * k as f64 + 3.0;
        let bw = plot_w * occ.clamp(0.0, 100.0) / 100.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" style=\"fill:#1d2733\">{}</text><rect x=\"{left}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"#1c6dd0\"><title>{}: {occ:.1}%</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{occ:.1}% of {} logged in</text>",
            left - 8.0,
            y + 13.0,
            esc(agent),
            row - 7.0,
            esc(agent),
            left + bw + 6.0,
            y + 13.0,
            report::clock_duration(*logged_in_s)
        );
    }
    s.push_str("</svg>");
    s.push_str("<div class=\"legend\"><span>time on calls (ringing, talking, wrap-up) over that plus time ready</span></div>");
    s
}

fn nice_step(max: u64) -> u64 {
    let raw = (max as f64 / 4.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    step.max(1.0) as u64
}

/// Label every k-th interval so labels do not overlap.
fn label_every(n: usize, plot_w: f64) -> usize {
    let fit = (plot_w / 42.0).max(1.0) as usize;
    n.div_ceil(fit).max(1)
}

/// A page with one table (lists that have no charts: recordings, voicemail).
pub fn table_page(title: &str, t: &Table) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t0}</title><style>{STYLE}</style></head><body><main><header><h1>{t0}</h1></header><section>{}</section></main></body></html>\n",
        table_html(t),
        t0 = esc(title)
    )
}

/// The whole page for `kind` over the period of `p`.
pub fn page(store: &Store, kind: Kind, p: &Params, page: &Page) -> Result<String, StoreError> {
    let by = chart_by(p);
    let threshold = p.service_level_secs;
    // Totals (no period) for the headline and tables; intervals for the charts.
    let total = Params { by: None, ..p.clone() };
    let queues = report::queue_report(store, &total)?;
    let agents = report::agent_report(store, &total)?;
    let missed = report::missed_counts(store, &total)?;
    let per = report::queue_report(store, &Params { by: Some(by), ..p.clone() })?;

    // Fill every interval of the period, so quiet hours show as gaps.
    let mut intervals: Vec<(i64, Interval)> = Vec::new();
    let chart_p = Params { by: Some(by), ..p.clone() };
    let mut t = chart_p.period_of(p.from_ms);
    let mut guard = 0;
    while t < p.to_ms && guard < 400 {
        intervals.push((t, Interval { label: label(by, &p.local(t)), ..Default::default() }));
        let mut probe = t + 1_800_000;
        while chart_p.period_of(probe) == t {
            probe += 1_800_000;
        }
        t = chart_p.period_of(probe);
        guard += 1;
    }
    for q in &per {
        if let Some((_, iv)) = intervals.iter_mut().find(|(s, _)| *s == q.period_ms) {
            iv.offered += q.offered;
            iv.answered += q.answered;
            iv.abandoned += q.abandoned;
            iv.within += q.service_level_pct / 100.0 * q.offered as f64;
        }
    }
    let iv: Vec<Interval> = intervals.into_iter().map(|(_, i)| i).collect();

    let offered: u64 = queues.iter().map(|q| q.offered).sum();
    let answered: u64 = queues.iter().map(|q| q.answered).sum();
    let abandoned: u64 = queues.iter().map(|q| q.abandoned).sum();
    let within: f64 = queues.iter().map(|q| q.service_level_pct / 100.0 * q.offered as f64).sum();
    let wait_sum: f64 = queues.iter().map(|q| q.avg_wait_s * q.answered as f64).sum();
    let talk_sum: f64 = queues.iter().map(|q| q.talk_s).sum();
    let pct = |n: f64, d: u64| if d == 0 { 0.0 } else { 100.0 * n / d as f64 };
    let sl = pct(within, offered);
    let missed_total: u64 = missed.iter().map(|m| m.total).sum();
    let avg = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };

    let mut occ: Vec<(String, f64, f64)> = agents
        .iter()
        .filter(|a| a.logged_in_s > 0.0)
        .map(|a| (a.agent.clone(), a.occupancy_pct, a.logged_in_s))
        .collect();
    occ.sort_by(|a, b| a.0.cmp(&b.0));

    let kind_name = report::Kind::ALL.iter().find(|(_, k)| *k == kind).map_or("report", |(n, _)| *n);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} — {from} to {to}</title><style>{STYLE}</style></head><body><main>",
        title = esc(&page.title),
        from = esc(&p.local(p.from_ms)),
        to = esc(&p.local(p.to_ms)),
    );
    let _ = write!(
        out,
        "<header><h1>{}</h1><p>{} to {} (local time) · service level: answered within {threshold} s, target {:.0}%</p></header>",
        esc(&page.title),
        esc(&p.local(p.from_ms)),
        esc(&p.local(p.to_ms)),
        page.target_pct
    );
    let sl_class = if offered == 0 {
        ""
    } else if sl >= page.target_pct {
        " good"
    } else {
        " poor"
    };
    let _ = write!(
        out,
        "<div class=\"kpis\">\
         <div class=\"kpi\"><span>Offered</span><b>{offered}</b></div>\
         <div class=\"kpi\"><span>Answered</span><b>{answered}</b></div>\
         <div class=\"kpi\"><span>Abandoned</span><b>{abandoned}</b></div>\
         <div class=\"kpi{sl_class}\"><span>Service level</span><b>{sl:.1}%</b></div>\
         <div class=\"kpi\"><span>Average wait</span><b>{}</b></div>\
         <div class=\"kpi\"><span>Average talk</span><b>{}</b></div>\
         <div class=\"kpi\"><span>Missed calls</span><b>{missed_total}</b></div>\
         </div>",
        report::clock_duration(avg(wait_sum, answered)),
        report::clock_duration(avg(talk_sum, answered)),
    );
    let by_name = match by {
        By::HalfHour => "half hour",
        By::Hour => "hour",
        By::Day => "day",
        By::Week => "week",
        By::Month => "month",
    };
    let _ = write!(
        out,
        "<div class=\"grid\"><section><h2>Calls by {by_name}</h2>{}</section><section><h2>Service level by {by_name}, against the target</h2>{}</section>\
         <section class=\"wide\"><h2>Agent occupancy</h2>{}</section></div>",
        calls_chart(&iv),
        service_chart(&iv, page.target_pct),
        occupancy_chart(&occ)
    );
    let _ = write!(out, "<section><h2>Queues</h2>{}</section>", table_html(&Table::from_rows(&queues)));
    let _ = write!(out, "<section><h2>Agents</h2>{}</section>", table_html(&Table::from_rows(&agents)));
    if !matches!(kind, Kind::Queue | Kind::Agent) || p.by.is_some() {
        let t = report::run(store, kind, p)?;
        let _ = write!(
            out,
            "<section><h2>{}</h2>{}</section>",
            esc(&report::heading(&kind_name.replace('-', "_"))),
            table_html(&t)
        );
    }
    let _ = writeln!(
        out,
        "<footer>Made by <code>hotline report {kind_name} --format html</code>. Definitions of every figure: docs/reports.md.</footer></main></body></html>"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_steps_are_round() {
        assert_eq!(esc("<b>\"A&B\"</b>"), "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;");
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(37), 10);
        assert_eq!(nice_step(180), 50);
    }
}
