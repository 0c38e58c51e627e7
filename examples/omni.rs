//! The omni command line (`cargo run --release --example omni -- <command> ...`;
//! `--help` on any command lists every option).
//!
//! ```text
//! omni demo  [--output answer.wav] [--json]               the demo model on a bundled question
//! omni run   --model DIR --vocoder DIR (--input question.wav | --text "typed question")
//!            [--output answer.wav] [--device cpu|wgpu|cuda:0] [--dtype f32|f16|bf16|q8_0|q4_0] [--json] ...
//! omni live  --model DIR --vocoder DIR [--rate HZ] [--output answer.raw|answer.wav] [...]
//!            reads mono s16le PCM from stdin (e.g. `sox -d -t raw -r 16000 -e signed -b 16 -c 1 -`)
//! omni train --stage 1|2 --model DIR --data MANIFEST --out DIR [--steps N --batch B --accum K
//!            --lr X --warmup W --eval-every E --eval-data M --save-every S --resume DIR --seed S]
//!            (build with `--features train`)
//! ```
//! `run` answers the whole file as one turn (explicit mode: every sample, no
//! trimming, as the reference encodes a file); `live` ends turns with the voice
//! detector (pauses, speculative start, barge-in). `--json` prints one JSON
//! object per event (the serde form of `omni_core::Event`, plus `t_ms`).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/train.rs"]
mod train;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use omni_core::audio::{f32_to_i16, read_audio, write_wav};
use omni_core::Progress;
use omni_core::Timings;
use omni_core::{Event, Omni, Session};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(
    name = "omni",
    about = "LLaMA-Omni: speech in, text and speech out, streamed"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Debug)]
struct Common {
    #[command(flatten)]
    model: cli::ModelArgs,
    #[command(flatten)]
    generation: cli::GenerationArgs,
    /// Where the answer's audio goes (WAV; `live` also takes .raw s16le).
    #[arg(long)]
    output: Option<PathBuf>,
    /// One JSON object per event on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// The demo model (tiny, random weights, real file layouts) on a bundled question.
    Demo {
        #[command(flatten)]
        common: Common,
        /// Question WAV (default: the bundled espeak-ng question).
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Answers one question: an audio file (explicit turn: the whole file) or typed text.
    Run {
        #[command(flatten)]
        common: Common,
        /// Question audio file.
        #[arg(long, conflicts_with = "text", required_unless_present = "text")]
        input: Option<PathBuf>,
        /// Typed question.
        #[arg(long)]
        text: Option<String>,
    },
    /// A live conversation over s16le PCM on stdin; the voice detector ends turns.
    Live {
        #[command(flatten)]
        common: Common,
        /// Sample rate of the PCM on stdin.
        #[arg(long, default_value_t = 16000)]
        rate: u32,
    },
    /// Trains stage 1 (adaptor + LLM) or stage 2 (speech decoder); needs `--features train`.
    Train(train::TrainArgs),
}

fn load(a: &Common) -> AnyResult<Arc<Omni>> {
    let (model, vocoder) = a.model.dirs();
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
    let omni = Omni::load(&model, &vocoder, &a.model.options(), Some(&mut on_progress))?;
    bar.finish_and_clear();
    if !a.json {
        eprintln!(
            "loaded {} on {} in {:.2} s",
            model.display(),
            a.model.device,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(Arc::new(omni))
}

/// Prints one event (text mode: text streams on stdout, the rest on stderr).
fn print_event(e: &Event, t0: Instant, json: bool) {
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if json {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            t_ms: f64,
            #[serde(flatten)]
            event: &'a Event,
        }
        match serde_json::to_string(&Line {
            t_ms: (ms * 10.0).round() / 10.0,
            event: e,
        }) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("cannot print event as JSON: {err}"),
        }
        return;
    }
    match e {
        Event::TextDelta { text, .. } => {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
        Event::Audio { seq, pcm, .. } => {
            eprintln!("\n  [{ms:8.1} ms] audio chunk {seq}: {} samples", pcm.len())
        }
        Event::Units { .. } => {}
        Event::TurnDone { timings, .. } => {
            println!();
            print_timeline(timings);
        }
        other => eprintln!("\n  [{ms:8.1} ms] {other:?}"),
    }
}

fn print_timeline(t: &Timings) {
    let opt = |x: Option<f64>| {
        x.map(|v| format!("{v:.1} ms"))
            .unwrap_or_else(|| "-".into())
    };
    eprintln!("latency timeline (from end of speech):");
    eprintln!(
        "  endpoint wait             {:>9.1} ms{}",
        t.endpoint_wait_ms,
        if t.speculative {
            " (encoder and prefill ran during it)"
        } else {
            ""
        }
    );
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

/// What the user says in `omni run`.
enum Question<'a> {
    Audio(&'a [f32], u32),
    Text(&'a str),
}

/// Gives the session one turn (a clip streamed in 20 ms chunks then
/// `end_turn`, or typed text) and collects the answer's audio and its rate.
/// An answer that does not complete is an error: nothing is lost silently.
fn answer_turn(session: &Session, q: Question<'_>, json: bool) -> AnyResult<(Vec<f32>, u32)> {
    match q {
        Question::Audio(samples, rate) => {
            let chunk = (rate as usize / 50).max(1);
            for c in samples.chunks(chunk) {
                session.push_audio(c, rate)?;
            }
            session.end_turn()?;
        }
        Question::Text(t) => session.push_text(t)?,
    }
    let t0 = Instant::now();
    let mut audio = Vec::new();
    let mut out_rate = 16000;
    loop {
        let Some(e) = session.next_event(Duration::from_secs(600)) else {
            return Err("no answer within 10 minutes".into());
        };
        print_event(&e, t0, json);
        match e {
            Event::Audio {
                pcm, sample_rate, ..
            } => {
                out_rate = sample_rate;
                audio.extend(pcm)
            }
            Event::TurnDone { .. } => return Ok((audio, out_rate)),
            Event::Interrupted { reason, .. } => {
                return Err(format!("the answer was interrupted ({reason:?})").into())
            }
            Event::Error { message, .. } => return Err(message.into()),
            _ => {}
        }
    }
}

fn cmd_run(a: &Common, input: Option<&Path>, text: Option<&str>, demo: bool) -> AnyResult<()> {
    let omni = load(a)?;
    let (samples, rate) = match input {
        Some(p) if text.is_none() => read_audio(p)?,
        _ => (Vec::new(), 16000),
    };
    if let (true, false, Some(input)) = (demo, a.json, input) {
        eprintln!(
            "NOTE: this is omni's DEMO model: tiny, with RANDOM weights (fixed seed), stored in the real \
             LLaMA-Omni / Whisper / vocoder file layouts. Its text and speech are gibberish by design; \
             it shows the whole streaming path and its latency. Use `omni run` with the real weights for answers."
        );
        eprintln!(
            "question: {} ({:.2} s at {rate} Hz)",
            input.display(),
            samples.len() as f64 / rate as f64
        );
    }
    let session = Session::new(omni.clone(), a.generation.session_options(&omni, false))?;
    let q = match text {
        Some(t) => Question::Text(t),
        None => Question::Audio(&samples, rate),
    };
    let (audio, out_rate) = answer_turn(&session, q, a.json)?;
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("answer.wav"));
    write_wav(&out, &audio, out_rate)?;
    if !a.json {
        eprintln!(
            "wrote {} ({:.2} s)",
            out.display(),
            audio.len() as f64 / out_rate as f64
        );
    }
    Ok(())
}

fn cmd_live(a: &Common, rate: u32) -> AnyResult<()> {
    let omni = load(a)?;
    let session = Arc::new(Session::new(
        omni.clone(),
        a.generation.session_options(&omni, true),
    )?);
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
                let pcm: Vec<i16> = buf[..n - n % 2]
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                s.push_audio_i16(&pcm, rate).map_err(|e| e.to_string())?;
            }
        })
    };
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) if p.extension().is_some_and(|e| e == "raw") => Box::new(std::fs::File::create(p)?),
        _ => Box::new(std::io::sink()),
    };
    let mut all = Vec::new();
    let mut out_rate = 16000;
    let t0 = Instant::now();
    loop {
        if let Some(e) = session.next_event(Duration::from_millis(100)) {
            print_event(&e, t0, a.json);
            if let Event::Audio {
                pcm, sample_rate, ..
            } = &e
            {
                out_rate = *sample_rate;
                for &s in pcm {
                    out.write_all(&f32_to_i16(s).to_le_bytes())?;
                }
                all.extend_from_slice(pcm);
            }
        } else if pusher.is_finished() && !session.is_busy() && session.pending_events() == 0 {
            break;
        }
    }
    if let Some(p) = &a.output {
        if p.extension().is_some_and(|e| e == "wav") {
            write_wav(p, &all, out_rate)?;
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Demo { common, input } => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let input = input
                .clone()
                .unwrap_or_else(|| root.join("tests/fixtures/speech/question.wav"));
            cmd_run(common, Some(&input), None, true)
        }
        Cmd::Run {
            common,
            input,
            text,
        } => {
            if common.model.model.is_none() || common.model.vocoder.is_none() {
                eprintln!("error: `omni run` needs --model and --vocoder (`omni demo` runs the demo model)");
                std::process::exit(2);
            }
            cmd_run(common, input.as_deref(), text.as_deref(), false)
        }
        Cmd::Live { common, rate } => cmd_live(common, *rate),
        Cmd::Train(args) => std::process::exit(train::cmd_train(args)),
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
