//! `hotline flow check`: what is wrong with flows as a whole, after they parsed: start
//! and branches to missing nodes, gotos to missing flows, unreachable nodes, missing
//! prompts, and loops with no way out (nodes from which no path ever reaches a
//! terminal node: queue, agent, voicemail, transfer, hang-up or another flow).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::flow::{Flow, Flows, NodeKind, Pos, Problem};
use crate::prompts::Prompts;
use crate::say::{self, Lang};

fn problem(flows: &Flows, at: Pos, message: String) -> Problem {
    Problem { origin: flows.origin.clone(), line: at.line, column: at.column, message }
}

/// Every problem in `flows`; prompts are checked when a prompt set is given.
pub fn check(flows: &Flows, prompts: Option<&Prompts>) -> Vec<Problem> {
    let mut out = Vec::new();
    for flow in flows.flows.values() {
        check_flow(flows, flow, prompts, &mut out);
    }
    out.sort_by_key(|p| (p.line, p.column));
    out
}

/// The nodes a node can go to, including the dynamic ones: `back` may return to any
/// menu of the flow, `top` to the start.
fn successors<'f>(flow: &'f Flow, id: &str) -> Vec<&'f str> {
    let Some(node) = flow.nodes.get(id) else { return Vec::new() };
    let mut out: Vec<&str> = node.kind.branches().into_iter().map(|(_, r)| r.node.as_str()).collect();
    match node.kind {
        NodeKind::Back => out.extend(
            flow.nodes.values().filter(|n| matches!(n.kind, NodeKind::Menu(_))).map(|n| n.id.as_str()),
        ),
        NodeKind::Top => out.push(flow.start.node.as_str()),
        _ => {}
    }
    out.retain(|n| flow.nodes.contains_key(*n));
    out
}

fn check_flow(flows: &Flows, flow: &Flow, prompts: Option<&Prompts>, out: &mut Vec<Problem>) {
    let name = &flow.name;
    let names = || flow.nodes.keys().cloned().collect::<Vec<_>>().join(", ");
    if !flow.nodes.contains_key(&flow.start.node) {
        out.push(problem(
            flows,
            flow.start.at,
            format!(
                "flow `{name}` starts at `{}`, which is not a node of it: expected one of {}",
                flow.start.node,
                names()
            ),
        ));
    }
    for node in flow.nodes.values() {
        for (label, r) in node.kind.branches() {
            if !flow.nodes.contains_key(&r.node) {
                out.push(problem(
                    flows,
                    r.at,
                    format!(
                        "{label} of node `{name}.{}` goes to `{}`, which is not a node of flow `{name}`: expected one of {}",
                        node.id,
                        r.node,
                        names()
                    ),
                ));
            }
        }
        if let NodeKind::Goto { flow: Some((f, at)), node: target } = &node.kind {
            match flows.flows.get(f) {
                None => out.push(problem(
                    flows,
                    *at,
                    format!(
                        "goto `{name}.{}` goes to flow `{f}`, which does not exist: expected one of {}",
                        node.id,
                        flows.flows.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )),
                Some(other) => {
                    if let Some(t) = target {
                        if !other.nodes.contains_key(&t.node) {
                            out.push(problem(
                                flows,
                                t.at,
                                format!(
                                    "goto `{name}.{}` goes to `{f}.{}`, which is not a node of flow `{f}`",
                                    node.id, t.node
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }

    // Reachability from the start.
    let mut seen = BTreeSet::new();
    let mut todo = VecDeque::from([flow.start.node.as_str()]);
    while let Some(id) = todo.pop_front() {
        if !flow.nodes.contains_key(id) || !seen.insert(id) {
            continue;
        }
        todo.extend(successors(flow, id));
    }
    for node in flow.nodes.values() {
        if !seen.contains(node.id.as_str()) {
            out.push(problem(
                flows,
                node.at,
                format!(
                    "node `{name}.{}` is unreachable: no branch leads to it from `{}`",
                    node.id, flow.start.node
                ),
            ));
        }
    }

    // Loops with no way out: nodes that cannot reach a terminal node (computed backwards
    // from the terminals).
    let mut preds: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for id in flow.nodes.keys() {
        for s in successors(flow, id) {
            preds.entry(s).or_default().push(id.as_str());
        }
    }
    let mut exits: BTreeSet<&str> = BTreeSet::new();
    let mut todo: VecDeque<&str> =
        flow.nodes.values().filter(|n| n.kind.is_terminal()).map(|n| n.id.as_str()).collect();
    while let Some(id) = todo.pop_front() {
        if exits.insert(id) {
            todo.extend(preds.get(id).into_iter().flatten().copied());
        }
    }
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    for node in flow.nodes.values() {
        let id = node.id.as_str();
        if exits.contains(id) || reported.contains(id) || !seen.contains(id) {
            continue;
        }
        // Walk the stuck nodes to find the cycle, for a message that names it.
        let mut path: Vec<&str> = vec![id];
        let mut cur = id;
        let cycle = loop {
            let Some(next) = successors(flow, cur).into_iter().find(|s| !exits.contains(s)) else {
                break None;
            };
            if let Some(i) = path.iter().position(|p| *p == next) {
                break Some(path[i..].to_vec());
            }
            path.push(next);
            cur = next;
        };
        // Everything reachable from here is stuck too: one message for the lot.
        let mut q = VecDeque::from([id]);
        while let Some(x) = q.pop_front() {
            if reported.insert(x) {
                q.extend(successors(flow, x));
            }
        }
        let Some(cycle) = cycle else { continue };
        let first = flow.nodes.get(cycle[0]).map(|n| n.at).unwrap_or(node.at);
        let ring: Vec<&str> = cycle.iter().copied().chain([cycle[0]]).collect();
        out.push(problem(
            flows,
            first,
            format!(
                "loop with no way out in flow `{name}`: {} never reaches a hangup, queue, agent, voicemail, \
                 transfer or another flow; expected a key, a failure branch or a retry limit that leads out",
                ring.join(" -> ")
            ),
        ));
    }

    if let Some(prompts) = prompts {
        check_prompts(flows, flow, prompts, out);
    }
}

fn check_prompts(flows: &Flows, flow: &Flow, prompts: &Prompts, out: &mut Vec<Problem>) {
    for node in flow.nodes.values() {
        for p in node.kind.prompts() {
            // Names with variables and TTS texts are only known at run time.
            if p.name.starts_with("tts:") || p.name.contains('{') {
                continue;
            }
            missing(flows, flow.lang, &p.name, p.at, prompts, out);
        }
        if let NodeKind::Say { lang, .. } = &node.kind {
            let lang = lang.unwrap_or(flow.lang);
            for w in say::words(lang) {
                missing(flows, lang, w, node.at, prompts, out);
            }
        }
    }
}

fn missing(flows: &Flows, lang: Lang, name: &str, at: Pos, prompts: &Prompts, out: &mut Vec<Problem>) {
    let Some(set) = prompts.set(lang) else {
        out.push(problem(flows, at, format!("prompt `{name}`: no prompt set for language {}", lang.code())));
        return;
    };
    if !set.has(name) {
        out.push(problem(
            flows,
            at,
            format!(
                "missing prompt `{name}`: expected {} or a `{name}` entry in the {} prompt set's text",
                set.path(name).display(),
                lang.code()
            ),
        ));
    }
}
