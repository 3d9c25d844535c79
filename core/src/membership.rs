//! A contact's stored membership: the numbers of the segments it is in,
//! sorted, each with a value beside it (when it entered), as two parallel
//! arrays in one row per contact. Changing them is one rewrite of that
//! row, which PostgreSQL can keep on its page (a HOT update).

/// The membership after `entered` segments are added (those not already
/// in, with `since`) and `exited` ones removed; numbers stay sorted and
/// each keeps its value. `numbers` and `values` are parallel; a number in
/// both `entered` and `exited` ends up out.
pub fn merge<T: Copy>(
    numbers: &[i32],
    values: &[T],
    entered: &[i32],
    exited: &[i32],
    since: T,
) -> (Vec<i32>, Vec<T>) {
    let mut added: Vec<i32> = entered
        .iter()
        .copied()
        .filter(|n| !exited.contains(n))
        .collect();
    added.sort_unstable();
    added.dedup();
    let capacity = numbers.len() + added.len();
    let (mut merged, mut merged_values) =
        (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
    let mut added = added.into_iter().peekable();
    for (&number, &value) in numbers.iter().zip(values) {
        while let Some(new) = added.next_if(|&new| new < number) {
            merged.push(new);
            merged_values.push(since);
        }
        added.next_if_eq(&number);
        if !exited.contains(&number) {
            merged.push(number);
            merged_values.push(value);
        }
    }
    for new in added {
        merged.push(new);
        merged_values.push(since);
    }
    (merged, merged_values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn adds_in_order_and_keeps_the_time_of_members() {
        let (numbers, since) = merge(&[2, 5, 9], &[20, 50, 90], &[7, 1, 5], &[9], 0);
        assert_eq!(numbers, vec![1, 2, 5, 7]);
        assert_eq!(since, vec![0, 20, 50, 0]);
    }

    #[test]
    fn leaving_every_segment_leaves_nothing() {
        assert_eq!(merge(&[3], &[1], &[], &[3], 0), (vec![], vec![]));
        assert_eq!(merge::<i64>(&[], &[], &[], &[4], 0), (vec![], vec![]));
    }

    proptest! {
        /// The result is the set the changes describe, sorted, with the
        /// old value of every number that stayed.
        #[test]
        fn is_the_set_the_changes_describe(
            stored in prop::collection::btree_map(0i32..40, 0i64..1000, 0..12),
            entered in prop::collection::vec(0i32..40, 0..10),
            exited in prop::collection::vec(0i32..40, 0..10),
        ) {
            let numbers: Vec<i32> = stored.keys().copied().collect();
            let values: Vec<i64> = stored.values().copied().collect();
            let (merged, merged_values) = merge(&numbers, &values, &entered, &exited, -1);
            let mut expected: BTreeMap<i32, i64> = stored.clone();
            for n in &entered {
                expected.entry(*n).or_insert(-1);
            }
            for n in &exited {
                expected.remove(n);
            }
            prop_assert_eq!(merged, expected.keys().copied().collect::<Vec<_>>());
            prop_assert_eq!(merged_values, expected.values().copied().collect::<Vec<_>>());
        }
    }
}
