//! Lead score tiers: hot, warm or cold by a tenant's two thresholds.

/// The thresholds of a tenant that has set none (also the defaults of
/// `audience.settings`).
pub const DEFAULT_HOT: i32 = 50;
pub const DEFAULT_WARM: i32 = 20;

/// The tier of `score`: hot at or above `hot`, warm at or above `warm`,
/// else cold; a missing threshold is its default, a missing score cold.
pub fn tier(score: Option<i32>, hot: Option<i32>, warm: Option<i32>) -> &'static str {
    match score {
        Some(score) if score >= hot.unwrap_or(DEFAULT_HOT) => "hot",
        Some(score) if score >= warm.unwrap_or(DEFAULT_WARM) => "warm",
        _ => "cold",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_inclusive() {
        assert_eq!(tier(Some(50), None, None), "hot");
        assert_eq!(tier(Some(49), None, None), "warm");
        assert_eq!(tier(Some(20), None, None), "warm");
        assert_eq!(tier(Some(19), None, None), "cold");
    }

    #[test]
    fn a_tenant_s_thresholds_replace_the_defaults() {
        assert_eq!(tier(Some(30), Some(30), Some(10)), "hot");
        assert_eq!(tier(Some(10), Some(30), Some(10)), "warm");
        assert_eq!(tier(Some(-5), Some(30), Some(10)), "cold");
    }

    #[test]
    fn no_score_is_cold() {
        assert_eq!(tier(None, None, None), "cold");
    }
}
