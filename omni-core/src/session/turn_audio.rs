//! The audio of the turn being spoken, addressed by position on the session's
//! 16 kHz timeline (the samples the voice detector has heard).
//!
//! Audio at any rate is accepted: each run of pushes at one rate is kept as a
//! segment at that rate, and cut positions map into it by the rate ratio, so
//! a turn's audio is resampled once (a sinc resampler, `audio::resample`) when
//! it is taken. Every cut is by position, never "whatever is buffered", so a
//! large push is cut at the same places as the same audio pushed in pieces.

use crate::audio::{resample, SAMPLE_RATE};
use crate::Result;

struct Segment {
    rate: u32,
    /// Timeline position of `samples[0]`.
    start: u64,
    samples: Vec<f32>,
}

impl Segment {
    /// Index in `samples` of timeline position `pos` (clamped).
    fn index(&self, pos: u64) -> usize {
        if pos <= self.start {
            return 0;
        }
        let i = ((pos - self.start) as u128 * self.rate as u128 / SAMPLE_RATE as u128) as usize;
        i.min(self.samples.len())
    }
}

#[derive(Default)]
pub(crate) struct TurnAudio {
    segs: Vec<Segment>,
}

impl TurnAudio {
    /// Appends samples at `rate` whose first one sits at timeline position `at`.
    pub fn push(&mut self, rate: u32, at: u64, samples: &[f32]) {
        match self.segs.last_mut() {
            Some(s) if s.rate == rate => s.samples.extend_from_slice(samples),
            _ => self.segs.push(Segment {
                rate,
                start: at,
                samples: samples.to_vec(),
            }),
        }
    }

    /// Samples held, at their own rates.
    pub fn raw_len(&self) -> usize {
        self.segs.iter().map(|s| s.samples.len()).sum()
    }

    /// The audio between timeline positions `from` and `to` at 16 kHz
    /// (`to = u64::MAX`: everything from `from` on).
    pub fn extract(&self, from: u64, to: u64) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for (k, s) in self.segs.iter().enumerate() {
            let i0 = s.index(from);
            let i1 = if to == u64::MAX {
                s.samples.len()
            } else {
                s.index(to)
            };
            // A later segment starts where this one's audio ends.
            let i1 = match self.segs.get(k + 1) {
                Some(next) if to != u64::MAX && to > next.start => s.samples.len(),
                _ => i1,
            };
            if i1 > i0 {
                out.extend(resample(&s.samples[i0..i1], s.rate, SAMPLE_RATE)?);
            }
        }
        Ok(out)
    }

    /// Forgets the audio before timeline position `pos`.
    pub fn drop_before(&mut self, pos: u64) {
        let mut keep = Vec::with_capacity(self.segs.len());
        let segs = std::mem::take(&mut self.segs);
        let n = segs.len();
        for (k, mut s) in segs.into_iter().enumerate() {
            let i = s.index(pos);
            let ends_before = k + 1 < n && i == s.samples.len();
            if ends_before {
                continue;
            }
            if i > 0 {
                // A fresh vector: a huge push's memory goes back at once.
                s.samples = s.samples[i..].to_vec();
                s.start += (i as u128 * SAMPLE_RATE as u128 / s.rate as u128) as u64;
            }
            keep.push(s);
        }
        self.segs = keep;
    }

    /// Forgets everything (and releases the memory).
    pub fn clear(&mut self) {
        self.segs = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_16k_are_exact_sample_positions() {
        let mut a = TurnAudio::default();
        let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        a.push(16000, 0, &x[..300]);
        a.push(16000, 300, &x[300..]);
        assert_eq!(a.extract(100, 400).unwrap(), x[100..400].to_vec());
        a.drop_before(250);
        assert_eq!(a.extract(0, u64::MAX).unwrap(), x[250..].to_vec());
        assert_eq!(a.extract(260, 270).unwrap(), x[260..270].to_vec());
    }

    #[test]
    fn a_rate_change_starts_a_segment_and_everything_is_16k_out() {
        let mut a = TurnAudio::default();
        a.push(16000, 0, &vec![0.25; 1600]);
        a.push(8000, 1600, &vec![0.25; 800]);
        let all = a.extract(0, u64::MAX).unwrap();
        assert_eq!(all.len(), 3200);
        let tail = a.extract(1600, u64::MAX).unwrap();
        assert_eq!(tail.len(), 1600);
        a.drop_before(1600);
        assert_eq!(a.raw_len(), 800);
    }
}
