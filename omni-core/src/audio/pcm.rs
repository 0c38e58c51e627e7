//! 16-bit PCM ↔ f32, one convention everywhere: `k / 32768` (as the reference
//! loads audio: `whisper.load_audio`), and back by rounding `x · 32768`,
//! clamped, so `f32_to_i16(i16_to_f32(k)) == k` for every `k`.

/// A 16-bit sample as f32 in [-1, 1).
pub fn i16_to_f32(s: i16) -> f32 {
    s as f32 / 32768.0
}

/// An f32 sample as 16-bit PCM (rounded, clamped to the i16 range).
pub fn f32_to_i16(x: f32) -> i16 {
    (x as f64 * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_i16_round_trips_and_out_of_range_clamps() {
        for k in i16::MIN..=i16::MAX {
            assert_eq!(f32_to_i16(i16_to_f32(k)), k);
        }
        assert_eq!(f32_to_i16(1.0), 32767);
        assert_eq!(f32_to_i16(-1.5), -32768);
    }
}
