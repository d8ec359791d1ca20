//! The pipeline graph, laid out on the server as SVG: targets as nodes in columns by their
//! `dependsOn` depth (a target sits one column right of the deepest target it depends on),
//! `beforeDeployment` constraints as small circles before a node and `afterDeployment` ones
//! after it, edges from each dependency's last constraint to the dependent's first. Colours
//! come from classes (the stylesheet follows light and dark); every status is also written as
//! text and in each element's `<title>`, so nothing is told by colour alone.

use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

/// A constraint's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateState {
    Pending,
    Running,
    Passed,
    Failed,
}

impl GateState {
    fn class(self) -> &'static str {
        match self {
            GateState::Pending => "g-pending",
            GateState::Running => "g-running",
            GateState::Passed => "g-passed",
            GateState::Failed => "g-failed",
        }
    }

    fn text(self) -> &'static str {
        match self {
            GateState::Pending => "not reached",
            GateState::Running => "in progress",
            GateState::Passed => "passed",
            GateState::Failed => "failed",
        }
    }
}

/// A constraint node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    pub label: String,
    pub state: GateState,
}

/// A target node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// The target's status (`running`, `succeeded`, ...).
    pub status: String,
    /// Up to three short lines: current step, weight, pods.
    pub lines: Vec<String>,
    pub depends_on: Vec<String>,
    pub before: Vec<Gate>,
    pub after: Vec<Gate>,
    /// Where the node links to (the target's card).
    pub href: String,
}

const NODE_W: f64 = 210.0;
const NODE_H: f64 = 84.0;
const GATE_STEP: f64 = 24.0;
const GATE_R: f64 = 8.0;
const COL_GAP: f64 = 56.0;
const ROW_GAP: f64 = 28.0;
const MARGIN: f64 = 16.0;

/// A laid-out node.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub column: usize,
    /// Left of the first before-gate.
    pub x: f64,
    /// Left of the box.
    pub box_x: f64,
    pub y: f64,
}

/// Each node's column: 0 without dependencies, else one more than its deepest dependency's
/// (unknown names are ignored; a cycle, which validation refuses, is cut).
pub fn columns(nodes: &[Node]) -> Vec<usize> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut memo: Vec<Option<usize>> = vec![None; nodes.len()];
    fn depth(
        i: usize,
        nodes: &[Node],
        index: &HashMap<&str, usize>,
        memo: &mut Vec<Option<usize>>,
        visiting: &mut Vec<bool>,
    ) -> usize {
        if let Some(d) = memo[i] {
            return d;
        }
        if visiting[i] {
            return 0;
        }
        visiting[i] = true;
        let d = nodes[i]
            .depends_on
            .iter()
            .filter_map(|dep| index.get(dep.as_str()).copied())
            .map(|j| depth(j, nodes, index, memo, visiting) + 1)
            .max()
            .unwrap_or(0);
        visiting[i] = false;
        memo[i] = Some(d);
        d
    }
    let mut visiting = vec![false; nodes.len()];
    (0..nodes.len())
        .map(|i| depth(i, nodes, &index, &mut memo, &mut visiting))
        .collect()
}

/// Positions of every node, and the drawing's width and height.
pub fn layout(nodes: &[Node]) -> (Vec<Placed>, f64, f64) {
    let cols = columns(nodes);
    let count = cols.iter().max().map_or(0, |m| m + 1);
    let mut before_w = vec![0.0f64; count];
    let mut after_w = vec![0.0f64; count];
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    for (node, &c) in nodes.iter().zip(&cols) {
        before_w[c] = before_w[c].max(node.before.len() as f64 * GATE_STEP);
        after_w[c] = after_w[c].max(node.after.len() as f64 * GATE_STEP);
    }
    let mut col_x = Vec::with_capacity(count);
    let mut x = MARGIN;
    for c in 0..count {
        col_x.push(x);
        x += before_w[c] + NODE_W + after_w[c] + COL_GAP;
    }
    let width = (x - COL_GAP + MARGIN).max(NODE_W + 2.0 * MARGIN);
    let mut placed = Vec::with_capacity(nodes.len());
    for &c in &cols {
        let row = rows.entry(c).or_insert(0);
        let y = MARGIN + *row as f64 * (NODE_H + ROW_GAP);
        *row += 1;
        placed.push(Placed {
            column: c,
            x: col_x[c],
            box_x: col_x[c] + before_w[c],
            y,
        });
    }
    let most_rows = rows.values().copied().max().unwrap_or(1);
    let height = MARGIN * 2.0 + most_rows as f64 * (NODE_H + ROW_GAP) - ROW_GAP;
    (placed, width, height)
}

/// The graph as an SVG element.
pub fn render(nodes: &[Node]) -> Markup {
    let (placed, width, height) = layout(nodes);
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let summary = nodes
        .iter()
        .map(|n| format!("{}: {}", n.name, n.status.replace('_', " ")))
        .collect::<Vec<_>>()
        .join("; ");
    let mid = |p: &Placed| p.y + NODE_H / 2.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (width) " " (height) }
            width=(width) height=(height) role="img" aria-label={ "Pipeline: " (summary) } {
            // Edges first, under the nodes.
            @for (i, node) in nodes.iter().enumerate() {
                @for dep in &node.depends_on {
                    @if let Some(&j) = index.get(dep.as_str()) {
                        @let from = &placed[j];
                        @let start_x = from.box_x + NODE_W + nodes[j].after.len() as f64 * GATE_STEP;
                        @let end_x = placed[i].x;
                        @let (y1, y2) = (mid(from), mid(&placed[i]));
                        @let bend = (end_x - start_x).abs() / 2.0;
                        path.edge d={ "M" (start_x) " " (y1) " C" (start_x + bend) " " (y1) " " (end_x - bend) " " (y2) " " (end_x) " " (y2) } {
                            title { (dep) " → " (node.name) }
                        }
                    }
                }
            }
            @for (node, p) in nodes.iter().zip(&placed) {
                @let cy = mid(p);
                // Constraints before: left to right into the box.
                @for (k, gate) in node.before.iter().enumerate() {
                    @let cx = p.box_x - (node.before.len() - k) as f64 * GATE_STEP + GATE_STEP / 2.0;
                    line.link x1=(cx + GATE_R) y1=(cy) x2=(cx + GATE_STEP - GATE_R) y2=(cy) {}
                    circle class={ "gate " (gate.state.class()) } cx=(cx) cy=(cy) r=(GATE_R) {
                        title { "before " (node.name) ": " (gate.label) " (" (gate.state.text()) ")" }
                    }
                }
                @for (k, gate) in node.after.iter().enumerate() {
                    @let cx = p.box_x + NODE_W + k as f64 * GATE_STEP + GATE_STEP / 2.0;
                    line.link x1=(cx - GATE_STEP + GATE_R) y1=(cy) x2=(cx - GATE_R) y2=(cy) {}
                    circle class={ "gate " (gate.state.class()) } cx=(cx) cy=(cy) r=(GATE_R) {
                        title { "after " (node.name) ": " (gate.label) " (" (gate.state.text()) ")" }
                    }
                }
                a href=(node.href) {
                    g class={ "node st-" (node.status) @if matches!(node.status.as_str(), "running" | "paused" | "rolling_back") { " current" } }
                        data-target=(node.name) {
                        title { (node.name) ": " (node.status.replace('_', " ")) }
                        rect x=(p.box_x) y=(p.y) width=(NODE_W) height=(NODE_H) rx="8" {}
                        text.name x=(p.box_x + 10.0) y=(p.y + 20.0) { (clip(&node.name, 24)) }
                        text.status x=(p.box_x + NODE_W - 10.0) y=(p.y + 20.0) text-anchor="end" { (node.status.replace('_', " ")) }
                        @for (k, line) in node.lines.iter().take(3).enumerate() {
                            text x=(p.box_x + 10.0) y=(p.y + 40.0 + k as f64 * 16.0) { (clip(line, 30)) }
                        }
                    }
                }
            }
        }
    }
}

/// `text` cut to `max` characters with an ellipsis.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, deps: &[&str], before: usize) -> Node {
        Node {
            name: name.into(),
            status: "pending".into(),
            lines: vec![],
            depends_on: deps.iter().map(std::string::ToString::to_string).collect(),
            before: (0..before)
                .map(|i| Gate {
                    label: format!("g{i}"),
                    state: GateState::Pending,
                })
                .collect(),
            after: vec![],
            href: format!("#{name}"),
        }
    }

    #[test]
    fn columns_follow_depends_on_depth() {
        // dev → staging → (prod-us, prod-eu); a cycle is cut, unknown names ignored.
        let nodes = [
            node("prod-us", &["staging"], 1),
            node("dev", &[], 0),
            node("staging", &["dev", "nowhere"], 0),
            node("prod-eu", &["staging", "dev"], 1),
        ];
        assert_eq!(columns(&nodes), [2, 0, 1, 2]);
        let (placed, width, height) = layout(&nodes);
        assert!(placed[0].x > placed[2].x && placed[2].x > placed[1].x);
        assert_eq!(placed[0].x, placed[3].x, "same column, same x");
        assert!(placed[3].y > placed[0].y, "second in its column is below");
        assert_eq!(
            placed[0].box_x - placed[0].x,
            GATE_STEP,
            "room for the gate"
        );
        assert!(width > placed[0].box_x + NODE_W && height >= NODE_H * 2.0);
        let cycle = [node("a", &["b"], 0), node("b", &["a"], 0)];
        // A cycle ends (no endless recursion), within as many columns as nodes.
        assert!(columns(&cycle).iter().all(|c| *c <= cycle.len()));
    }

    #[test]
    fn the_svg_names_every_node_and_edge() {
        let nodes = [node("dev", &[], 0), node("prod <eu>", &["dev"], 2)];
        let svg = render(&nodes).into_string();
        assert!(svg.contains("dev → prod &lt;eu&gt;"), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("class=\"edge\"").count(), 1);
        assert!(!svg.contains("prod <eu>"), "names are escaped");
    }
}
