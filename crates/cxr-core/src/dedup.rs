//! Grouping images that are the same radiograph, across every source at once.
//!
//! Pairs are found in two stages (see [`crate::phash`] for why): a pHash Hamming search finds
//! candidates, and the thumbnail correlation confirms them. The search is a multi-index over
//! hash chunks: with the 64 bits cut into `max_distance + 1` chunks, two hashes within
//! `max_distance` bits must agree exactly on at least one chunk (pigeonhole), so only images
//! sharing a chunk value are compared — roughly n·(n / 2^chunk_bits) comparisons instead of n².

use crate::phash::{Fingerprint, hamming};
use std::collections::HashMap;

/// When two fingerprints count as the same picture.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DuplicateCriteria {
    /// Largest pHash Hamming distance of a candidate pair (0..=63).
    pub max_distance: u32,
    /// Smallest thumbnail correlation that confirms a candidate.
    pub min_correlation: f32,
}

impl Default for DuplicateCriteria {
    /// Chosen on `../shared/datasets` (numbers in the crate's `tests/datasets.rs`).
    fn default() -> Self {
        DuplicateCriteria { max_distance: 12, min_correlation: 0.97 }
    }
}

/// Disjoint sets over `0..n` with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        UnionFind { parent: (0..n).collect(), size: vec![1; n] }
    }

    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    /// Joins the sets of `a` and `b`; returns false when they already were one.
    pub fn union(&mut self, a: usize, b: usize) -> bool {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        if self.size[ra] < self.size[rb] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb] = ra;
        self.size[ra] += self.size[rb];
        true
    }

    /// Component number of every element, numbered 0.. in order of each component's
    /// smallest element, so the numbering depends only on the input order.
    pub fn component_ids(&mut self) -> Vec<usize> {
        let mut ids_by_root = HashMap::new();
        (0..self.parent.len())
            .map(|i| {
                let root = self.find(i);
                let next = ids_by_root.len();
                *ids_by_root.entry(root).or_insert(next)
            })
            .collect()
    }
}

/// Every confirmed near-duplicate pair `(i, j)`, `i < j`, sorted.
pub fn near_duplicate_pairs(fingerprints: &[Fingerprint], criteria: DuplicateCriteria) -> Vec<(usize, usize)> {
    let chunks = (criteria.max_distance.min(63) + 1) as usize;
    let mut pairs = Vec::new();
    for chunk in 0..chunks {
        let (lo, hi) = (chunk * 64 / chunks, (chunk + 1) * 64 / chunks);
        let mask = if hi - lo == 64 { u64::MAX } else { ((1u64 << (hi - lo)) - 1) << lo };
        let mut buckets: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, f) in fingerprints.iter().enumerate() {
            buckets.entry(f.phash & mask).or_default().push(i);
        }
        for members in buckets.values() {
            for (k, &i) in members.iter().enumerate() {
                for &j in &members[k + 1..] {
                    let (a, b) = (&fingerprints[i], &fingerprints[j]);
                    // A pair agreeing on several chunks is found once: at its first agreeing chunk.
                    if first_equal_chunk(a.phash, b.phash, chunks) == chunk
                        && hamming(a.phash, b.phash) <= criteria.max_distance
                        && a.correlation(b) >= criteria.min_correlation
                    {
                        pairs.push((i.min(j), i.max(j)));
                    }
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs
}

fn first_equal_chunk(a: u64, b: u64, chunks: usize) -> usize {
    let diff = a ^ b;
    (0..chunks)
        .find(|&c| {
            let (lo, hi) = (c * 64 / chunks, (c + 1) * 64 / chunks);
            let mask = if hi - lo == 64 { u64::MAX } else { ((1u64 << (hi - lo)) - 1) << lo };
            diff & mask == 0
        })
        .unwrap_or(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phash::THUMB_SIDE;

    fn fingerprint(phash: u64, pattern: usize) -> Fingerprint {
        let mut thumb = [0.0f32; THUMB_SIDE * THUMB_SIDE];
        thumb[pattern] = 1.0;
        thumb[pattern + 1] = -1.0;
        let norm = 2f32.sqrt();
        thumb.iter_mut().for_each(|v| *v /= norm);
        Fingerprint { phash, thumb }
    }

    #[test]
    fn finds_pairs_within_the_distance_once_each() {
        let prints = vec![
            fingerprint(0, 0),
            fingerprint(0b1011, 0),                // 3 bits from #0, same picture
            fingerprint(u64::MAX, 0),              // far in hash
            fingerprint(0b1, 10),                  // close in hash, different picture
            fingerprint(0xFFFF_0000_0000_0000, 0), // 16 bits away
        ];
        let criteria = DuplicateCriteria { max_distance: 4, min_correlation: 0.9 };
        assert_eq!(near_duplicate_pairs(&prints, criteria), vec![(0, 1)]);
    }

    #[test]
    fn union_find_numbers_components_by_first_member() {
        let mut uf = UnionFind::new(5);
        uf.union(3, 4);
        uf.union(1, 4);
        assert!(!uf.union(3, 1));
        assert_eq!(uf.component_ids(), vec![0, 1, 2, 1, 1]);
    }
}
