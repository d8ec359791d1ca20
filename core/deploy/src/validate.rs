//! Cross-reference rules over the decoded file: names that must exist (strategies, targets,
//! webhooks, queries, metric providers), `dependsOn` cycles, weight order and blue/green Services.

use std::collections::{HashMap, HashSet};

use crate::decode::Decoder;
use crate::diagnostics::suggest;
use crate::raw::{DeployFile, Pos, RawStep, RawStepKind, RawStrategyKind, Spanned};

impl Decoder<'_> {
    /// Runs every cross-reference rule.
    pub(crate) fn validate(&mut self, file: &DeployFile) {
        let target_names: Vec<&str> = file.targets.iter().map(|t| t.name.value.as_str()).collect();
        let strategy_names: Vec<&str> = file
            .strategies
            .iter()
            .map(|s| s.name.value.as_str())
            .collect();

        for t in &file.targets {
            if let Some(s) = &t.strategy
                && !strategy_names.contains(&s.value.as_str())
            {
                self.unknown(s, "strategy", &strategy_names);
            }
            let mut seen = HashSet::new();
            for d in &t.depends_on {
                if d.value == t.name.value {
                    self.at(
                        &d.pos,
                        format!("target \"{}\" depends on itself", d.value),
                        None,
                    );
                } else if !target_names.contains(&d.value.as_str()) {
                    self.unknown(d, "target", &target_names);
                } else if !seen.insert(d.value.as_str()) {
                    self.at(&d.pos, format!("\"{}\" is listed twice", d.value), None);
                }
            }
            for step in t.before_deployment.iter().chain(&t.after_deployment) {
                self.step_refs(file, step);
            }
        }
        self.cycles(file);

        for m in &file.manifests {
            for t in m.targets.iter().flatten() {
                if !target_names.contains(&t.value.as_str()) {
                    self.unknown(t, "target", &target_names);
                }
            }
        }
        for s in &file.strategies {
            match &s.kind {
                RawStrategyKind::Canary { steps } => {
                    let mut last: Option<&Spanned<u8>> = None;
                    for step in steps {
                        self.step_refs(file, step);
                        if let RawStepKind::SetWeight(w) = &step.kind {
                            if let Some(prev) = last
                                && w.value < prev.value
                            {
                                self.at(
                                    &w.pos,
                                    format!(
                                        "weight {} is below the previous weight {}: weights must not decrease",
                                        w.value, prev.value
                                    ),
                                    None,
                                );
                            }
                            last = Some(w);
                        }
                    }
                }
                RawStrategyKind::BlueGreen {
                    active_service,
                    redirect_traffic_after,
                    shut_down_old_version_after,
                    pos,
                    ..
                } => {
                    for step in redirect_traffic_after
                        .iter()
                        .chain(shut_down_old_version_after)
                    {
                        self.step_refs(file, step);
                    }
                    if active_service.is_none() {
                        self.blue_green_services(file, &s.name.value, pos);
                    }
                }
            }
        }
        for tm in &file.traffic_management {
            for t in tm.targets.iter().flatten() {
                if !target_names.contains(&t.value.as_str()) {
                    self.unknown(t, "target", &target_names);
                }
            }
        }
        for f in &file.target_filters {
            if !target_names.contains(&f.value.as_str()) {
                self.unknown(f, "target", &target_names);
            }
        }
    }

    /// Reports an unknown name with the nearest existing one.
    pub(crate) fn unknown(&mut self, name: &Spanned<String>, what: &str, known: &[&str]) {
        if self
            .declared
            .contains(&(what_section(what), name.value.clone()))
        {
            // Defined but broken: its own errors are already reported.
            return;
        }
        let suggestion = suggest(&name.value, known.iter().copied());
        let message = if known.is_empty() {
            format!("unknown {what} \"{}\": none is defined", name.value)
        } else {
            format!("unknown {what} \"{}\"", name.value)
        };
        self.at(&name.pos, message, suggestion);
    }

    fn step_refs(&mut self, file: &DeployFile, step: &RawStep) {
        match &step.kind {
            RawStepKind::RunWebhook { name, .. } => {
                let names: Vec<&str> = file
                    .webhooks
                    .iter()
                    .map(|w| w.value.name.as_str())
                    .collect();
                if !names.contains(&name.value.as_str()) {
                    self.unknown(name, "webhook", &names);
                }
            }
            RawStepKind::Analysis(a) => {
                if file.queries.is_empty() {
                    self.at(
                        &step.pos,
                        "an analysis step needs an analysis section defining its queries",
                        None,
                    );
                    return;
                }
                let names: Vec<&str> = file.queries.iter().map(|q| q.value.name.as_str()).collect();
                for q in &a.queries {
                    let Some(query) = file.queries.iter().find(|d| d.value.name == q.value) else {
                        self.unknown(q, "query", &names);
                        continue;
                    };
                    let provider = query
                        .value
                        .metric_provider_name
                        .as_ref()
                        .or(a.metric_provider_name.as_ref())
                        .or(file.default_metric_provider_name.as_ref());
                    if provider.is_none() {
                        self.at(
                            &q.pos,
                            format!(
                                "no metric provider for query \"{}\": set analysis.defaultMetricProviderName, or metricProviderName on the query or the step",
                                q.value
                            ),
                            None,
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// A blue/green strategy without its Services needs them from `trafficManagement[].kubernetes`
    /// for every target that uses it.
    fn blue_green_services(&mut self, file: &DeployFile, strategy: &str, pos: &Pos) {
        let users: Vec<&str> = file
            .targets
            .iter()
            .filter(|t| t.strategy.as_ref().is_some_and(|s| s.value == strategy))
            .map(|t| t.name.value.as_str())
            .collect();
        for user in users {
            let covered = file
                .traffic_management
                .iter()
                .any(|tm| tm.applies_to(user) && !tm.kubernetes.is_empty());
            if !covered {
                self.at(
                    pos,
                    format!(
                        "blueGreen needs an activeService (previewService is optional), here or in trafficManagement[].kubernetes for target \"{user}\""
                    ),
                    None,
                );
            }
        }
    }

    /// Reports every `dependsOn` entry that lies on a cycle, naming the cycle.
    fn cycles(&mut self, file: &DeployFile) {
        let index: HashMap<&str, usize> = file
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.value.as_str(), i))
            .collect();
        let edges: Vec<Vec<usize>> = file
            .targets
            .iter()
            .map(|t| {
                t.depends_on
                    .iter()
                    .filter_map(|d| index.get(d.value.as_str()).copied())
                    .collect()
            })
            .collect();
        let components = strongly_connected(&edges);
        for component in components.iter().filter(|c| c.len() > 1) {
            let members: HashSet<usize> = component.iter().copied().collect();
            let start = *component.iter().min().unwrap_or(&0);
            let cycle = find_cycle(start, &edges, &members);
            let names: Vec<&str> = cycle
                .iter()
                .map(|i| file.targets[*i].name.value.as_str())
                .collect();
            let text = names.join(" → ");
            let mut ordered: Vec<usize> = component.clone();
            ordered.sort_unstable();
            for i in ordered {
                for d in &file.targets[i].depends_on {
                    if index
                        .get(d.value.as_str())
                        .is_some_and(|j| members.contains(j))
                    {
                        let list_path = d
                            .pos
                            .path
                            .rsplit_once('[')
                            .map_or(d.pos.path.as_str(), |(p, _)| p);
                        let pos = Pos {
                            path: list_path.to_string(),
                            ..d.pos.clone()
                        };
                        self.at(&pos, format!("dependsOn cycle: {text}"), None);
                    }
                }
            }
        }
    }
}

/// The section a reference kind lives in, for [`Decoder::declared`].
fn what_section(what: &str) -> &'static str {
    match what {
        "strategy" => "strategy",
        "webhook" => "webhook",
        "query" => "query",
        _ => "",
    }
}

/// Tarjan's strongly connected components (iterative).
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

/// A cycle through `start` inside one strongly connected component, closed (`a, b, a`).
fn find_cycle(start: usize, edges: &[Vec<usize>], members: &HashSet<usize>) -> Vec<usize> {
    // Breadth-first search for the shortest way back to `start`.
    let mut previous: HashMap<usize, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &edges[v] {
            if !members.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![start];
                let mut cur = v;
                while cur != start {
                    path.push(cur);
                    cur = previous[&cur];
                }
                path.push(start);
                // Built backwards from the end; reverse, then present it in dependency order.
                path.reverse();
                return path;
            }
            if w != start && !previous.contains_key(&w) {
                previous.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start, start]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_components_and_cycles() {
        // 0 -> 1 -> 2 -> 0, 3 -> 0
        let edges = vec![vec![1], vec![2], vec![0], vec![0]];
        let comps = strongly_connected(&edges);
        let big: Vec<_> = comps.iter().filter(|c| c.len() > 1).collect();
        assert_eq!(big.len(), 1);
        let members: HashSet<usize> = big[0].iter().copied().collect();
        assert_eq!(members, HashSet::from([0, 1, 2]));
        assert_eq!(find_cycle(0, &edges, &members), vec![0, 1, 2, 0]);
    }
}
