//! Settings shared by the benchmarks.

use std::time::Duration;

use criterion::Criterion;

/// Short warm-up and measurement: enough for stable medians on the cases here, and `cargo bench`
/// stays within a few minutes on two cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}
