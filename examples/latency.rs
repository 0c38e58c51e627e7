//! End-of-speech → first-audio latency over several turns, with its breakdown
//! (speech encoder, LLM prefill, LLM decode up to the first audio chunk, speech
//! decoder, vocoder), as medians. Also the peak memory of the model load.
//!
//! ```text
//! cargo run --release --example latency -- [--model DIR --vocoder DIR] [--turns 5]
//!     [--dtype f32|f16] [--max-new-tokens 48] [--first-chunk 10] [--chunk 40] [--label NAME]
//!     [--live [--no-speculative]]          (--help lists every option)
//! ```
//! `--live`: the question is pushed in real time (20 ms every 20 ms) followed by
//! silence, and the voice detector ends the turn (default 640 ms endpoint):
//! latency then counts from the actual end of speech, the endpoint wait included.
//! Without it, the turn is ended explicitly (`end_turn`), as files are.
//! `scripts/latency.sh` runs it on the demo model and on a mid-size model.

#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use omni_core::audio::read_wav;
use omni_core::Timings;
use omni_core::{Event, Omni, Session, SessionOptions};

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// End-of-speech → first-audio latency over several turns.
#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    model: cli::ModelArgs,
    /// Turns measured after one warm-up turn.
    #[arg(long, default_value_t = 5)]
    turns: usize,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 48)]
    max_new_tokens: usize,
    /// Units in the first audio chunk.
    #[arg(long = "first-chunk", default_value_t = 10)]
    first_chunk: usize,
    /// Units per later audio chunk.
    #[arg(long, default_value_t = 40)]
    chunk: usize,
    /// Name of the table.
    #[arg(long, default_value = "model")]
    label: String,
    /// Push the question in real time and let the voice detector end the turn.
    #[arg(long)]
    live: bool,
    /// With --live: no speculative start (encoder and prefill wait for the endpoint).
    #[arg(long)]
    no_speculative: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = <Args as clap::Parser>::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (model, vocoder) = a.model.dirs();
    let (turns, dtype, max_new, first_chunk, chunk, live) = (
        a.turns,
        a.model.dtype,
        a.max_new_tokens,
        a.first_chunk,
        a.chunk,
        a.live,
    );
    let speculative = !a.no_speculative;
    let label = a.label.clone();
    let rss0 = status_kib("VmRSS:").unwrap_or(0);
    let t = Instant::now();
    let omni = Arc::new(Omni::load(&model, &vocoder, &a.model.options(), None)?);
    let load_s = t.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:").unwrap_or(0);
    let rss = status_kib("VmRSS:").unwrap_or(0);
    let (q, rate) = read_wav(&root.join("tests/fixtures/speech/question.wav"))?;

    let mut all: Vec<Timings> = Vec::new();
    for turn in 0..=turns {
        let mut o = SessionOptions::for_model(&omni);
        o.generation.max_new_tokens = max_new;
        o.vocoder.first_chunk_units = first_chunk;
        o.vocoder.chunk_units = chunk;
        o.endpoint.enabled = live;
        o.endpoint.speculative = speculative;
        let s = Session::new(omni.clone(), o)?;
        if live {
            // Real time: 20 ms of audio every 20 ms, then silence until the endpoint.
            let t0 = Instant::now();
            let mut pushed = 0usize;
            let silence = vec![0f32; rate as usize * 2];
            for c in q.chunks(320).chain(silence.chunks(320)) {
                s.push_audio(c, rate)?;
                pushed += c.len();
                let due = Duration::from_secs_f64(pushed as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        } else {
            for c in q.chunks(320) {
                s.push_audio(c, rate)?;
            }
            s.end_turn()?;
        }
        loop {
            match s.next_event(Duration::from_secs(900)) {
                Some(Event::TurnDone { timings, .. }) => {
                    if turn > 0 {
                        all.push(timings); // turn 0 warms up
                    }
                    break;
                }
                Some(Event::Error { message, .. }) => return Err(message.into()),
                Some(_) => {}
                None => return Err("timeout".into()),
            }
        }
    }
    let m = |f: &dyn Fn(&Timings) -> f64| median(all.iter().map(f).collect());
    let mode = match (live, speculative) {
        (false, _) => "explicit end of turn",
        (true, true) => "live, endpoint 640 ms, speculative start",
        (true, false) => "live, endpoint 640 ms, no speculative start",
    };
    println!(
        "\n### {label} ({} turns after 1 warm-up, dtype {dtype:?}, first chunk {first_chunk} units then {chunk}; {mode})\n",
        all.len()
    );
    println!("| stage (median) | ms |\n|---|---|");
    println!(
        "| endpoint wait (end of speech → turn committed) | {:.1} |",
        m(&|t| t.endpoint_wait_ms)
    );
    println!("| speech encoder + adaptor | {:.1} |", m(&|t| t.encode_ms));
    println!("| LLM prefill | {:.1} |", m(&|t| t.prefill_ms));
    println!(
        "| LLM decode until first audio ({} tokens) | {:.1} |",
        m(&|t| t.tokens_to_first_audio as f64),
        m(&|t| t.decode_ms_to_first_audio)
    );
    println!(
        "| speech decoder until first audio | {:.1} |",
        m(&|t| t.speech_decoder_ms_to_first_audio)
    );
    println!(
        "| vocoder, first chunk | {:.1} |",
        m(&|t| t.vocoder_ms_first_chunk)
    );
    println!(
        "| **end of speech → first text** | {:.1} |",
        m(&|t| t.first_text_ms.unwrap_or(f64::NAN))
    );
    println!(
        "| **end of speech → first audio** | {:.1} |",
        m(&|t| t.first_audio_ms.unwrap_or(f64::NAN))
    );
    println!(
        "| whole answer ({} tokens, {:.2} s audio) | {:.1} |",
        m(&|t| t.tokens as f64),
        m(&|t| t.audio_s),
        m(&|t| t.total_ms)
    );
    println!("| decode tokens/s | {:.2} |", m(&|t| t.tokens_per_s));
    println!("| real-time factor | {:.3} |", m(&|t| t.real_time_factor));
    println!(
        "\nload: {load_s:.2} s; resident memory after load {:.0} MiB (+{:.0} MiB for the model), peak during load {:.0} MiB",
        rss as f64 / 1024.0,
        (rss.saturating_sub(rss0)) as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    Ok(())
}
