//! The omni command line.
//!
//! ```text
//! omni demo  [--output answer.wav] [--device cpu] [--json]
//! omni run   --model DIR --vocoder DIR --input question.wav [--output answer.wav]
//!            [--device cpu|wgpu|cuda:0] [--dtype f32|f16|q8_0|q4_0] [--speech-encoder large-v3.pt]
//!            [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]
//!            [--first-chunk UNITS] [--chunk UNITS] [--json]
//! omni live  --model DIR --vocoder DIR [--rate HZ] [--output answer.raw|answer.wav] [...]
//!            reads mono s16le PCM from stdin (e.g. `sox -d -t raw -r 16000 -e signed -b 16 -c 1 -`),
//!            endpointing ends each turn; answers go to --output (raw s16le 16 kHz, or WAV)
//! ```
//! Run with `cargo run --release --example omni -- <command> ...`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use omni::audio::{read_wav, write_wav};
use omni::progress::Progress;
use omni::session::Timings;
use omni::weights::RunDType;
use omni::{Event, Omni, OmniOptions, Session, SessionOptions};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Default)]
struct Args {
    cmd: String,
    model: Option<PathBuf>,
    vocoder: Option<PathBuf>,
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    device: String,
    dtype: Option<String>,
    speech_encoder: Option<PathBuf>,
    max_new_tokens: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u64>,
    first_chunk: Option<usize>,
    chunk: Option<usize>,
    rate: u32,
    json: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage:\n  omni demo [--output answer.wav] [--device cpu] [--json]\n  \
         omni run --model DIR --vocoder DIR --input question.wav [--output answer.wav] [--device D] \
         [--dtype f32|f16|q8_0|q4_0] [--json] ...\n  omni live --model DIR --vocoder DIR [--rate HZ] [--output FILE]\n\
         see examples/omni.rs for every option"
    );
    std::process::exit(2)
}

fn parse_args() -> AnyResult<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args { device: "cpu".into(), rate: 16000, ..Default::default() };
    a.cmd = it.next().unwrap_or_else(|| usage());
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = Some(val()?.into()),
            "--vocoder" => a.vocoder = Some(val()?.into()),
            "--input" => a.input = Some(val()?.into()),
            "--output" => a.output = Some(val()?.into()),
            "--device" => a.device = val()?,
            "--dtype" => a.dtype = Some(val()?),
            "--speech-encoder" => a.speech_encoder = Some(val()?.into()),
            "--max-new-tokens" => a.max_new_tokens = Some(val()?.parse()?),
            "--temperature" => a.temperature = Some(val()?.parse()?),
            "--top-p" => a.top_p = Some(val()?.parse()?),
            "--seed" => a.seed = Some(val()?.parse()?),
            "--first-chunk" => a.first_chunk = Some(val()?.parse()?),
            "--chunk" => a.chunk = Some(val()?.parse()?),
            "--rate" => a.rate = val()?.parse()?,
            "--json" => a.json = true,
            "-h" | "--help" => usage(),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(a)
}

fn load(model: &Path, vocoder: &Path, a: &Args) -> AnyResult<Arc<Omni>> {
    let dtype = match &a.dtype {
        Some(s) => RunDType::parse(s).ok_or_else(|| format!("unknown dtype {s} (f32, f16, bf16, q8_0, q4_0)"))?,
        None => RunDType::F32,
    };
    let opts = OmniOptions { device: a.device.clone(), dtype, speech_encoder: a.speech_encoder.clone() };
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{msg:>16} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut on_progress = |p: &Progress| {
        bar.set_message(p.stage.clone());
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
    };
    let t = Instant::now();
    let omni = Omni::load(model, vocoder, &opts, Some(&mut on_progress))?;
    bar.finish_and_clear();
    if !a.json {
        eprintln!("loaded {} on {} in {:.2} s", model.display(), a.device, t.elapsed().as_secs_f64());
    }
    Ok(Arc::new(omni))
}

fn session_options(omni: &Omni, a: &Args) -> SessionOptions {
    let mut o = SessionOptions::for_model(omni);
    if let Some(n) = a.max_new_tokens {
        o.generation.max_new_tokens = n;
    }
    if let Some(t) = a.temperature {
        o.generation.sampling.temperature = t;
    }
    if let Some(p) = a.top_p {
        o.generation.sampling.top_p = p;
    }
    if let Some(s) = a.seed {
        o.generation.sampling.seed = s;
    }
    if let Some(c) = a.first_chunk {
        o.first_chunk_units = c;
    }
    if let Some(c) = a.chunk {
        o.chunk_units = c;
    }
    o
}

fn json_escape(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Prints one event (text mode: text streams on stdout, the rest on stderr).
fn print_event(e: &Event, t0: Instant, json: bool) {
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if json {
        let line = match e {
            Event::SpeechStarted { at_ms } => format!(r#"{{"t_ms":{ms:.1},"event":"speech_started","at_ms":{at_ms}}}"#),
            Event::SpeechEnded { at_ms } => format!(r#"{{"t_ms":{ms:.1},"event":"speech_ended","at_ms":{at_ms}}}"#),
            Event::TurnStarted { turn, audio_ms } => {
                format!(r#"{{"t_ms":{ms:.1},"event":"turn_started","turn":{turn},"audio_ms":{audio_ms}}}"#)
            }
            Event::TextDelta { turn, text, token } => format!(
                r#"{{"t_ms":{ms:.1},"event":"text","turn":{turn},"token":{token},"text":{}}}"#,
                json_escape(text)
            ),
            Event::Units { turn, units } => {
                format!(r#"{{"t_ms":{ms:.1},"event":"units","turn":{turn},"units":{units:?}}}"#)
            }
            Event::Audio { turn, seq, pcm, sample_rate } => format!(
                r#"{{"t_ms":{ms:.1},"event":"audio","turn":{turn},"seq":{seq},"samples":{},"sample_rate":{sample_rate}}}"#,
                pcm.len()
            ),
            Event::TurnDone { turn, text, timings } => format!(
                r#"{{"t_ms":{ms:.1},"event":"turn_done","turn":{turn},"text":{},"timings":{}}}"#,
                json_escape(text),
                timings_json(timings)
            ),
            Event::Interrupted { turn, reason, text } => format!(
                r#"{{"t_ms":{ms:.1},"event":"interrupted","turn":{turn},"reason":"{reason:?}","text":{}}}"#,
                json_escape(text)
            ),
            Event::Warning { message } => {
                format!(r#"{{"t_ms":{ms:.1},"event":"warning","message":{}}}"#, json_escape(message))
            }
            Event::Error { code, message, recoverable } => format!(
                r#"{{"t_ms":{ms:.1},"event":"error","code":"{code:?}","message":{},"recoverable":{recoverable}}}"#,
                json_escape(message)
            ),
        };
        println!("{line}");
        return;
    }
    match e {
        Event::TextDelta { text, .. } => {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
        Event::Audio { seq, pcm, .. } => eprintln!("\n  [{ms:8.1} ms] audio chunk {seq}: {} samples", pcm.len()),
        Event::Units { .. } => {}
        Event::TurnDone { timings, .. } => {
            println!();
            print_timeline(timings);
        }
        other => eprintln!("\n  [{ms:8.1} ms] {other:?}"),
    }
}

fn timings_json(t: &Timings) -> String {
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_else(|| "null".into());
    format!(
        r#"{{"encode_ms":{:.1},"prefill_ms":{:.1},"first_text_ms":{},"first_audio_ms":{},"total_ms":{:.1},"speech_decoder_ms":{:.1},"vocoder_ms":{:.1},"tokens":{},"units":{},"tokens_per_s":{:.2},"audio_s":{:.3},"real_time_factor":{:.3}}}"#,
        t.encode_ms,
        t.prefill_ms,
        opt(t.first_text_ms),
        opt(t.first_audio_ms),
        t.total_ms,
        t.speech_decoder_ms,
        t.vocoder_ms,
        t.tokens,
        t.units,
        t.tokens_per_s,
        t.audio_s,
        t.real_time_factor
    )
}

fn print_timeline(t: &Timings) {
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.1} ms")).unwrap_or_else(|| "-".into());
    eprintln!("latency timeline (from end of speech):");
    eprintln!("  speech encoder + adaptor  {:>9.1} ms", t.encode_ms);
    eprintln!("  LLM prefill               {:>9.1} ms", t.prefill_ms);
    eprintln!("  first text                {:>12}", opt(t.first_text_ms));
    eprintln!("  first audio               {:>12}", opt(t.first_audio_ms));
    eprintln!("  turn done                 {:>9.1} ms", t.total_ms);
    eprintln!(
        "  {} tokens ({:.1} tok/s), {} units, {:.2} s audio, RTF {:.2} (speech decoder {:.1} ms, vocoder {:.1} ms)",
        t.tokens, t.tokens_per_s, t.units, t.audio_s, t.real_time_factor, t.speech_decoder_ms, t.vocoder_ms
    );
}

/// Streams a clip into a session in 20 ms chunks, ends the turn and collects the answer.
fn answer_clip(session: &Session, samples: &[f32], rate: u32, json: bool) -> AnyResult<(Vec<f32>, bool)> {
    let chunk = (rate as usize / 50).max(1);
    for c in samples.chunks(chunk) {
        session.push_audio(c, rate)?;
    }
    session.end_turn()?;
    let t0 = Instant::now();
    let mut audio = Vec::new();
    loop {
        let Some(e) = session.next_event(Duration::from_secs(600)) else {
            return Err("no answer within 10 minutes".into());
        };
        print_event(&e, t0, json);
        match e {
            Event::Audio { pcm, .. } => audio.extend(pcm),
            Event::TurnDone { .. } => return Ok((audio, true)),
            Event::Interrupted { .. } => return Ok((audio, false)),
            Event::Error { message, .. } => return Err(message.into()),
            _ => {}
        }
    }
}

fn cmd_run(a: &Args, model: &Path, vocoder: &Path, input: &Path, demo: bool) -> AnyResult<()> {
    let omni = load(model, vocoder, a)?;
    let (samples, rate) = read_wav(input)?;
    if demo && !a.json {
        eprintln!(
            "NOTE: this is omni's DEMO model: tiny, with RANDOM weights (fixed seed), stored in the real \
             LLaMA-Omni / Whisper / vocoder file layouts. Its text and speech are gibberish by design; \
             it shows the whole streaming path and its latency. Use `omni run` with the real weights for answers."
        );
        eprintln!("question: {} ({:.2} s at {rate} Hz)", input.display(), samples.len() as f64 / rate as f64);
    }
    let session = Session::new(omni.clone(), session_options(&omni, a))?;
    let (audio, _) = answer_clip(&session, &samples, rate, a.json)?;
    let out = a.output.clone().unwrap_or_else(|| PathBuf::from("answer.wav"));
    write_wav(&out, &audio, 16000)?;
    if !a.json {
        eprintln!("wrote {} ({:.2} s)", out.display(), audio.len() as f64 / 16000.0);
    }
    Ok(())
}

fn cmd_live(a: &Args, model: &Path, vocoder: &Path) -> AnyResult<()> {
    let omni = load(model, vocoder, a)?;
    let session = Arc::new(Session::new(omni.clone(), session_options(&omni, a))?);
    let rate = a.rate;
    let pusher = {
        let s = session.clone();
        std::thread::spawn(move || -> Result<(), String> {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; (rate as usize / 50) * 2];
            loop {
                let n = stdin.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Ok(());
                }
                let pcm: Vec<i16> = buf[..n - n % 2].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
                s.push_audio_i16(&pcm, rate).map_err(|e| e.to_string())?;
            }
        })
    };
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) if p.extension().map(|e| e == "raw").unwrap_or(false) => Box::new(std::fs::File::create(p)?),
        _ => Box::new(std::io::sink()),
    };
    let mut all = Vec::new();
    let t0 = Instant::now();
    loop {
        if let Some(e) = session.next_event(Duration::from_millis(100)) {
            print_event(&e, t0, a.json);
            if let Event::Audio { pcm, .. } = &e {
                for s in pcm {
                    out.write_all(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())?;
                }
                all.extend_from_slice(pcm);
            }
        } else if pusher.is_finished() && !session.is_busy() && session.pending_events() == 0 {
            break;
        }
    }
    if let Some(p) = &a.output {
        if p.extension().map(|e| e == "wav").unwrap_or(false) {
            write_wav(p, &all, 16000)?;
        }
    }
    Ok(())
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            usage()
        }
    };
    let need = |p: &Option<PathBuf>, name: &str| -> PathBuf {
        p.clone().unwrap_or_else(|| {
            eprintln!("error: --{name} is required");
            usage()
        })
    };
    let r = match a.cmd.as_str() {
        "demo" => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let model = a.model.clone().unwrap_or_else(|| root.join("tests/fixtures/omni_tiny"));
            let vocoder = a.vocoder.clone().unwrap_or_else(|| root.join("tests/fixtures/vocoder/tiny"));
            let input = a.input.clone().unwrap_or_else(|| root.join("tests/fixtures/speech/question.wav"));
            cmd_run(&a, &model, &vocoder, &input, true)
        }
        "run" => cmd_run(&a, &need(&a.model, "model"), &need(&a.vocoder, "vocoder"), &need(&a.input, "input"), false),
        "live" => cmd_live(&a, &need(&a.model, "model"), &need(&a.vocoder, "vocoder")),
        _ => usage(),
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
