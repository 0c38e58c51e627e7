//! Greedy CTC post-processing as the reference's `ctc_postprocess`: collapse
//! consecutive equal frame labels (blanks included), then drop blanks. Kept
//! incremental: the label of the previous frame is the only state.

/// Turns frame labels into units, one batch of frames at a time.
#[derive(Debug, Clone)]
pub struct CtcCollapser {
    blank: u32,
    prev: Option<u32>,
}

impl CtcCollapser {
    pub fn new(blank: u32) -> Self {
        CtcCollapser { blank, prev: None }
    }

    /// Feeds frame labels; returns the units they complete.
    pub fn push(&mut self, frames: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        for &f in frames {
            if Some(f) != self.prev && f != self.blank {
                out.push(f);
            }
            self.prev = Some(f);
        }
        out
    }

    /// Forgets the previous frame (a new utterance).
    pub fn reset(&mut self) {
        self.prev = None;
    }
}

/// Collapses a whole frame sequence at once.
pub fn collapse(frames: &[u32], blank: u32) -> Vec<u32> {
    CtcCollapser::new(blank).push(frames)
}
