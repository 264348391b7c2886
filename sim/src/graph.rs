//! Overlay analysis: the graph measures the HyParView and Plumtree papers report and the
//! invariants their simulations check (symmetry, connectivity), over any peer type.
//!
//! Nodes are dense indices `0..n`; [`Graph::from_views`] maps peers to indices in peer
//! order, so every result is deterministic.

use std::collections::{BTreeMap, VecDeque};

/// A directed graph over nodes `0..n` (an edge `a → b`: `b` is in `a`'s view).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    out: Vec<Vec<u32>>,
}

impl Graph {
    /// `n` nodes, no edges.
    #[must_use]
    pub fn new(n: usize) -> Self {
        Self {
            out: vec![Vec::new(); n],
        }
    }

    /// The graph of `views` (each node and the peers in its view), and the peers in index
    /// order. Peers that appear only inside views become nodes too; self-loops and repeats
    /// are dropped.
    pub fn from_views<P: Ord + Clone>(
        views: impl IntoIterator<Item = (P, Vec<P>)>,
    ) -> (Self, Vec<P>) {
        let views: Vec<(P, Vec<P>)> = views.into_iter().collect();
        let mut index: BTreeMap<P, u32> = BTreeMap::new();
        for (p, view) in &views {
            index.entry(p.clone()).or_insert(0);
            for q in view {
                index.entry(q.clone()).or_insert(0);
            }
        }
        let peers: Vec<P> = index.keys().cloned().collect();
        for (i, slot) in index.values_mut().enumerate() {
            // A graph of four billion nodes does not fit in memory first.
            *slot = u32::try_from(i).expect("fewer than 2^32 nodes");
        }
        let mut g = Self::new(peers.len());
        for (p, view) in &views {
            let a = index[p];
            for q in view {
                g.add_edge(a, index[q]);
            }
        }
        (g, peers)
    }

    /// Adds `a → b` (ignored if it is a self-loop or already there).
    ///
    /// # Panics
    /// If `a` or `b` is not a node (a caller bug, not input).
    pub fn add_edge(&mut self, a: u32, b: u32) {
        assert!(
            (b as usize) < self.out.len(),
            "edge to node {b} of {}",
            self.out.len()
        );
        let out = &mut self.out[a as usize];
        if a != b && !out.contains(&b) {
            out.push(b);
        }
    }

    /// Nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether there are no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The out-neighbours of `a`.
    #[must_use]
    pub fn neighbors(&self, a: u32) -> &[u32] {
        &self.out[a as usize]
    }

    /// Edges `a → b` whose reverse `b → a` is missing, in order: empty for a symmetric
    /// overlay (HyParView's active views).
    #[must_use]
    pub fn asymmetric_edges(&self) -> Vec<(u32, u32)> {
        let mut bad = Vec::new();
        for (a, out) in (0u32..).zip(&self.out) {
            for &b in out {
                if !self.out[b as usize].contains(&a) {
                    bad.push((a, b));
                }
            }
        }
        bad
    }

    /// In-degree of every node.
    #[must_use]
    pub fn in_degrees(&self) -> Vec<u32> {
        let mut d = vec![0u32; self.out.len()];
        for out in &self.out {
            for &b in out {
                d[b as usize] += 1;
            }
        }
        d
    }

    /// `histogram[k]` = how many nodes have in-degree `k`.
    #[must_use]
    pub fn in_degree_histogram(&self) -> Vec<usize> {
        let d = self.in_degrees();
        let mut h = vec![0usize; d.iter().max().map_or(0, |&m| m as usize + 1)];
        for k in d {
            h[k as usize] += 1;
        }
        h
    }

    /// Nodes with no edge in either direction: cut off from the overlay.
    #[must_use]
    pub fn isolated(&self) -> usize {
        let d = self.in_degrees();
        (0..self.out.len())
            .filter(|&a| d[a] == 0 && self.out[a].is_empty())
            .count()
    }

    /// The undirected version: `a – b` when either direction exists.
    #[must_use]
    pub fn undirected(&self) -> Self {
        let mut g = self.clone();
        for (a, out) in (0u32..).zip(&self.out) {
            for &b in out {
                g.add_edge(b, a);
            }
        }
        g
    }

    /// Connected components of the undirected version, each sorted, largest first (ties:
    /// smallest node first).
    #[must_use]
    pub fn components(&self) -> Vec<Vec<u32>> {
        let u = self.undirected();
        let mut seen = vec![false; u.len()];
        let mut comps = Vec::new();
        for start in 0..u.len() {
            if seen[start] {
                continue;
            }
            seen[start] = true;
            let mut comp = vec![u32::try_from(start).unwrap_or(u32::MAX)];
            let mut i = 0;
            while i < comp.len() {
                for &b in &u.out[comp[i] as usize] {
                    if !seen[b as usize] {
                        seen[b as usize] = true;
                        comp.push(b);
                    }
                }
                i += 1;
            }
            comp.sort_unstable();
            comps.push(comp);
        }
        comps.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
        comps
    }

    /// Hops from `src` to every node along directed edges (`None`: unreachable).
    #[must_use]
    pub fn hops_from(&self, src: u32) -> Vec<Option<u32>> {
        let mut dist = vec![None; self.out.len()];
        let mut queue = VecDeque::new();
        dist[src as usize] = Some(0);
        queue.push_back(src);
        while let Some(a) = queue.pop_front() {
            let next = dist[a as usize].map_or(0, |d| d + 1);
            for &b in &self.out[a as usize] {
                if dist[b as usize].is_none() {
                    dist[b as usize] = Some(next);
                    queue.push_back(b);
                }
            }
        }
        dist
    }

    /// The hops a flood from `src` needs to reach every node it can reach (its
    /// eccentricity): the paper's "max hops of a flood".
    #[must_use]
    pub fn flood_hops(&self, src: u32) -> u32 {
        self.hops_from(src).into_iter().flatten().max().unwrap_or(0)
    }

    /// Mean hops over all reachable ordered pairs from the given sources (all nodes for the
    /// exact value; a sample for large graphs).
    #[must_use]
    pub fn average_shortest_path(&self, sources: impl IntoIterator<Item = u32>) -> f64 {
        let (mut total, mut pairs) = (0u64, 0u64);
        for s in sources {
            for d in self.hops_from(s).into_iter().flatten().filter(|&d| d > 0) {
                total += u64::from(d);
                pairs += 1;
            }
        }
        if pairs == 0 {
            0.0
        } else {
            total as f64 / pairs as f64
        }
    }

    /// Mean local clustering coefficient of the undirected version (nodes with fewer than
    /// two neighbours count as 0), as in the HyParView paper.
    #[must_use]
    pub fn clustering_coefficient(&self) -> f64 {
        let u = self.undirected();
        if u.is_empty() {
            return 0.0;
        }
        let mut sum = 0.0;
        for out in &u.out {
            let k = out.len();
            if k < 2 {
                continue;
            }
            let mut links = 0usize;
            for (i, &a) in out.iter().enumerate() {
                for &b in &out[i + 1..] {
                    if u.out[a as usize].contains(&b) {
                        links += 1;
                    }
                }
            }
            sum += links as f64 / (k * (k - 1) / 2) as f64;
        }
        sum / u.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: u32) -> Graph {
        let mut g = Graph::new(n as usize);
        for a in 0..n {
            g.add_edge(a, (a + 1) % n);
            g.add_edge((a + 1) % n, a);
        }
        g
    }

    fn complete(n: u32) -> Graph {
        let mut g = Graph::new(n as usize);
        for a in 0..n {
            for b in 0..n {
                g.add_edge(a, b);
            }
        }
        g
    }

    #[test]
    fn ring_measures() {
        let g = ring(10);
        assert!(g.asymmetric_edges().is_empty());
        assert_eq!(g.components().len(), 1);
        assert_eq!(g.flood_hops(0), 5);
        assert!((g.clustering_coefficient() - 0.0).abs() < 1e-12);
        // Ring of 10: distances 1,1,2,2,3,3,4,4,5 from each node: mean 25/9.
        assert!((g.average_shortest_path(0..10) - 25.0 / 9.0).abs() < 1e-12);
        assert_eq!(g.in_degree_histogram(), [0, 0, 10]);
    }

    #[test]
    fn complete_graph_has_clustering_one() {
        let g = complete(6);
        assert!((g.clustering_coefficient() - 1.0).abs() < 1e-12);
        assert!((g.average_shortest_path(0..6) - 1.0).abs() < 1e-12);
        assert_eq!(g.in_degrees(), [5; 6]);
    }

    #[test]
    fn asymmetry_and_components_are_found() {
        let (mut g, peers) = Graph::from_views([
            ("a", vec!["b"]),
            ("b", vec!["a", "c"]),
            ("d", vec!["e"]),
            ("x", vec!["x"]), // a self-loop is dropped; x stays isolated
        ]);
        assert_eq!(peers, ["a", "b", "c", "d", "e", "x"]);
        // b → c and d → e lack their reverse.
        assert_eq!(g.asymmetric_edges(), [(1, 2), (3, 4)]);
        assert_eq!(g.components(), [vec![0, 1, 2], vec![3, 4], vec![5]]);
        // c and e have an edge only towards them: not isolated; x has none.
        assert_eq!(g.isolated(), 1);
        assert_eq!(
            g.hops_from(0),
            [Some(0), Some(1), Some(2), None, None, None]
        );
        g.add_edge(2, 3);
        assert_eq!(g.components()[0], [0, 1, 2, 3, 4]);
        assert_eq!(g.flood_hops(0), 4);
    }
}
