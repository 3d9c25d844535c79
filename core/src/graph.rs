//! The graph of segments referring to other segments (`in segment '…'`).

use std::collections::{HashMap, VecDeque};

/// The shortest way from `refs` (the segments a rule would refer to) along
/// `edges` (each segment's references) to `target`: the segments visited,
/// ending with `target`; None when `target` cannot be reached. Visits each
/// segment once, so it takes time in proportion to the graph however its
/// references branch and rejoin.
pub fn path_to(
    target: &str,
    refs: &[String],
    edges: &HashMap<String, Vec<String>>,
) -> Option<Vec<String>> {
    // Each segment reached, with the one it was first reached from.
    let mut came_from: HashMap<&str, Option<&str>> = HashMap::new();
    let mut queue = VecDeque::new();
    for start in refs {
        if came_from.insert(start.as_str(), None).is_none() {
            queue.push_back(start.as_str());
        }
    }
    while let Some(at) = queue.pop_front() {
        if at == target {
            let mut path = vec![at.to_string()];
            let mut step = came_from[at];
            while let Some(previous) = step {
                path.push(previous.to_string());
                step = came_from[previous];
            }
            path.reverse();
            return Some(path);
        }
        for next in edges.get(at).into_iter().flatten() {
            if !came_from.contains_key(next.as_str()) {
                came_from.insert(next.as_str(), Some(at));
                queue.push_back(next.as_str());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(from, to)| (from.to_string(), to.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    #[test]
    fn finds_the_shortest_way_back() {
        let edges = graph(&[
            ("hot", &["canada"]),
            ("canada", &["all", "seg"]),
            ("all", &["seg"]),
        ]);
        let refs = vec!["hot".to_string()];
        assert_eq!(
            path_to("seg", &refs, &edges),
            Some(vec!["hot".into(), "canada".into(), "seg".into()])
        );
        assert_eq!(path_to("nowhere", &refs, &edges), None);
        assert_eq!(path_to("hot", &refs, &edges), Some(vec!["hot".into()]));
    }

    #[test]
    fn terminates_on_cycles_it_does_not_look_for() {
        let edges = graph(&[("a", &["b"]), ("b", &["a"])]);
        assert_eq!(path_to("c", &["a".to_string()], &edges), None);
    }

    #[test]
    fn rejoining_references_are_visited_once() {
        // D(n) refers to D(n-1) and D(n-2): 2^n ways down, 200 segments.
        let edges: HashMap<String, Vec<String>> = (2..200)
            .map(|n| {
                (
                    format!("d{n}"),
                    vec![format!("d{}", n - 1), format!("d{}", n - 2)],
                )
            })
            .collect();
        let started = std::time::Instant::now();
        assert_eq!(path_to("t", &["d199".to_string()], &edges), None);
        assert_eq!(
            path_to("d0", &["d199".to_string()], &edges).map(|p| p.len()),
            Some(101)
        );
        assert!(started.elapsed().as_millis() < 1_000);
    }
}
