//! Greedy CTC post-processing as the reference's `ctc_postprocess`: collapse
//! consecutive equal frame labels (blanks included), then drop blanks. Kept
//! incremental: the label of the previous frame is the only state.

use crate::streaming::Streaming;
use crate::Result;

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

    /// The units completed by `frames`.
    fn collapse(&mut self, frames: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        for &f in frames {
            if Some(f) != self.prev && f != self.blank {
                out.push(f);
            }
            self.prev = Some(f);
        }
        out
    }
}

impl Streaming for CtcCollapser {
    /// Frame labels.
    type Input<'a> = &'a [u32];
    /// Units.
    type Output = Vec<u32>;

    /// Feeds frame labels; returns the units they complete (every frame label is final:
    /// nothing is held back).
    fn push(&mut self, frames: &[u32]) -> Result<Vec<u32>> {
        Ok(self.collapse(frames))
    }

    /// Nothing is held back; forgets the previous frame (a new utterance).
    fn flush(&mut self) -> Result<Vec<u32>> {
        self.prev = None;
        Ok(Vec::new())
    }

    /// Forgets the previous frame.
    fn reset(&mut self) {
        self.prev = None;
    }
}

/// Collapses a whole frame sequence at once.
pub fn collapse(frames: &[u32], blank: u32) -> Vec<u32> {
    CtcCollapser::new(blank).collapse(frames)
}
