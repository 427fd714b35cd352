//! Threads inside one inference ("intra-op"), as opposed to the one-session-per-worker
//! parallelism `cxr score` uses across images.
//!
//! A Pi beside a viewer scores one film at a time, so its other cores idle unless the matrix
//! products of that one film are split between them. tract does this with a rayon pool when
//! `tract-linalg`'s `multithread-mm` feature is on (it is, through this crate, except on 32-bit
//! ARM: see `Cargo.toml`) and the run is inside the pool's scope. Only the matrix products and
//! their packing are split; depthwise convolutions, pooling and element-wise ops stay on the
//! calling thread, so what it buys depends on the network (BENCHMARKS.md measures it per model at
//! 1 and N threads).
//!
//! Scoring many images should keep one thread per inference and spread the images instead:
//! there is no per-op hand-off, and every core stays busy.

#[cfg(not(target_arch = "arm"))]
use tract_linalg::multithread::{Executor, multithread_tract_scope};

/// How many threads one inference may use: one (the default) or a private pool of `n`.
#[derive(Debug, Clone, Default)]
pub struct IntraOpThreads {
    #[cfg(not(target_arch = "arm"))]
    pool: Option<(usize, Executor)>,
}

impl IntraOpThreads {
    /// `n` threads for each inference: 1 is the calling thread alone, 0 one per core (as the OS
    /// reports them to this process). On 32-bit ARM builds always one.
    pub fn new(n: usize) -> IntraOpThreads {
        let n = if n == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { n };
        Self::with_pool(n)
    }

    #[cfg(not(target_arch = "arm"))]
    fn with_pool(n: usize) -> IntraOpThreads {
        match n {
            0 | 1 => IntraOpThreads::default(),
            n => IntraOpThreads { pool: Some((n, Executor::multithread_with_name(n, "cxr-intra-op"))) },
        }
    }

    #[cfg(target_arch = "arm")]
    fn with_pool(_n: usize) -> IntraOpThreads {
        IntraOpThreads::default()
    }

    /// Whether this build can split one inference over several threads (not on 32-bit ARM).
    pub const SUPPORTED: bool = cfg!(not(target_arch = "arm"));

    /// The number of threads one inference uses.
    pub fn count(&self) -> usize {
        #[cfg(not(target_arch = "arm"))]
        if let Some((n, _)) = &self.pool {
            return *n;
        }
        1
    }

    /// Runs `f` (one tract run) with its matrix products spread over these threads.
    ///
    /// On a worker of another rayon pool (images spread over cores, as `cxr score` and the
    /// throughput figure of `cxr bench` do) it stays on the calling thread: while such a worker
    /// waits for the intra-op pool, rayon lets it steal the next image's run, which re-enters
    /// tract's per-thread scratch space and panics. Every core is busy there anyway.
    pub(crate) fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(not(target_arch = "arm"))]
        if let Some((_, executor)) = &self.pool
            && rayon::current_thread_index().is_none()
        {
            return multithread_tract_scope(executor.clone(), f);
        }
        f()
    }
}
