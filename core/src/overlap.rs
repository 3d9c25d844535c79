//! How many members every pair of sets has in common, in one pass over
//! their members: each distinct member gets a dense number, each set a
//! bitmap over those numbers, and a pair's overlap is the population count
//! of the two bitmaps' intersection. For the tenant's segments that is one
//! read of every membership instead of a join per pair.

use foldhash::HashMap;
use std::hash::Hash;

/// For `members` given as (set number, member) pairs, the overlap of every
/// pair of set numbers `a < b` among `sets` (pairs with nothing in common
/// included), in order of `a`, then `b`. A member listed twice for one set
/// counts once.
pub fn intersections<M: Hash + Eq>(
    sets: &[i32],
    members: impl IntoIterator<Item = (i32, M)>,
) -> Vec<(i32, i32, i64)> {
    let mut sets = sets.to_vec();
    sets.sort_unstable();
    sets.dedup();
    let slot: HashMap<i32, usize> = sets.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let mut numbers: HashMap<M, usize> = HashMap::default();
    let mut bitmaps: Vec<Vec<u64>> = vec![Vec::new(); sets.len()];
    for (set, member) in members {
        let Some(&index) = slot.get(&set) else {
            continue;
        };
        let next = numbers.len();
        let number = *numbers.entry(member).or_insert(next);
        let bitmap = &mut bitmaps[index];
        if bitmap.len() <= number / 64 {
            bitmap.resize(number / 64 + 1, 0);
        }
        bitmap[number / 64] |= 1 << (number % 64);
    }
    let mut pairs = Vec::with_capacity(sets.len() * sets.len().saturating_sub(1) / 2);
    for (i, a) in sets.iter().enumerate() {
        for (j, b) in sets.iter().enumerate().skip(i + 1) {
            let common: u32 = bitmaps[i]
                .iter()
                .zip(&bitmaps[j])
                .map(|(x, y)| (x & y).count_ones())
                .sum();
            pairs.push((*a, *b, common as i64));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn counts_every_pair_once_with_empty_and_repeated_members() {
        let members = vec![
            (1, "x"),
            (1, "y"),
            (2, "y"),
            (2, "z"),
            (1, "y"),
            (3, "q"),
            (9, "x"),
        ];
        assert_eq!(
            intersections(&[3, 2, 1, 4], members),
            vec![
                (1, 2, 1),
                (1, 3, 0),
                (1, 4, 0),
                (2, 3, 0),
                (2, 4, 0),
                (3, 4, 0)
            ]
        );
        assert!(intersections::<u8>(&[1], []).is_empty());
    }

    proptest! {
        #[test]
        fn agrees_with_intersecting_sets(members in proptest::collection::vec((0..6i32, 0..300u16), 0..2000)) {
            let sets: Vec<i32> = (0..6).collect();
            let expected: Vec<(i32, i32, i64)> = sets.iter().flat_map(|&a| sets.iter().filter(move |&&b| b > a).map(move |&b| (a, b))).map(|(a, b)| {
                let of = |s: i32| members.iter().filter(|(set, _)| *set == s).map(|(_, m)| *m).collect::<BTreeSet<_>>();
                (a, b, of(a).intersection(&of(b)).count() as i64)
            }).collect();
            prop_assert_eq!(intersections(&sets, members.iter().copied()), expected);
        }
    }
}
