//! Inputs for the kernels' unit tests, shared so that every kernel is checked on the same kind
//! of values.

/// Deterministic values in −1..1 (xorshift), the same for a seed on every platform.
pub(crate) fn noise(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f32 / u32::MAX as f32 * 2.0 - 1.0
        })
        .collect()
}
