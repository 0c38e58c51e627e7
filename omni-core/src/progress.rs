//! Progress reports of long work (model load, generation).

/// One progress report: `done` of `total` units of `stage` (e.g. "llm layers").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub stage: String,
    pub done: usize,
    pub total: usize,
}

/// A progress callback. Loaders call it after each unit of work.
pub type ProgressFn<'a> = &'a mut dyn FnMut(&Progress);

/// Calls `f` if present.
pub(crate) fn report(f: &mut Option<ProgressFn<'_>>, stage: &str, done: usize, total: usize) {
    if let Some(f) = f.as_mut() {
        f(&Progress {
            stage: stage.to_string(),
            done,
            total,
        });
    }
}
