//! Training manifests: which question audio, answer text and answer units make
//! each example. Two layouts are read, told apart by their first character:
//!
//! - **omni's JSONL** (`{` first): one object per line,
//!   `{"speech": "q.wav", "answer": "text", "units": [1, 2] | "1 2", "instruction_text": "…"?}`.
//!   `speech` is relative to the manifest's folder (or absolute), any format and
//!   rate [`crate::audio::read_audio`] reads; `units` may be absent for stage 1;
//!   `instruction_text` replaces the user message of the prompt and must hold
//!   `<speech>` (default: the reference's
//!   [`DEFAULT_USER_MESSAGE`](crate::model::llama::prompt::DEFAULT_USER_MESSAGE)).
//! - **InstructS2S-200K** (`[` first), as published (HF dataset
//!   `ICTNLP/InstructS2S-200K`; its README: "cat en_part_* > instructs2s_200k.tar.gz;
//!   tar -xzf"; the turn layout is quoted in ictnlp/LLaMA-Omni issue #66): one
//!   JSON array of dialogues, each an array of turns
//!   `{"from": "human"|"gpt", "speech": "data/…/x-1-user.wav", "text": "…", "unit": null | "<12><7>…"}`,
//!   speech paths relative to the folder the archive was extracted in (put the
//!   manifest there). The first human → gpt pair of each dialogue is one
//!   example (question audio = the human turn's `speech`, answer = the gpt
//!   turn's `text`, units = its `unit`); later turns need the dialogue's history,
//!   which a single-turn example cannot hold, and are not read. Note: the units
//!   of the released file (`instruct_en_200k_data_cosy2.json`) go up to 6560
//!   (CosyVoice 2 tokens, issue #66), not LLaMA-Omni's 1000 HuBERT units: with a
//!   1000-unit speech decoder they are reported as out of range.
//!
//! A bad entry (JSON that does not parse, a missing field, a speech file that
//! does not exist, an empty answer, a unit outside the speech decoder's
//! vocabulary, no units when they are required) is a [`Skipped`] with its line
//! (JSONL) or dialogue number (InstructS2S, 1-based) and [`Problem`]; with
//! [`ManifestOptions::strict`] the first one is an error naming the file and line.
//! Nothing is dropped silently: the caller reports [`Manifest::skipped`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// What is wrong with one manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not valid JSON, or not the expected shape.
    BadJson(String),
    /// A required field is absent or of the wrong type.
    MissingField(&'static str),
    /// The speech file does not exist.
    MissingSpeech(PathBuf),
    /// The answer text is empty (or only whitespace).
    EmptyAnswer,
    /// A unit ≥ the speech decoder's `unit_vocab_size`.
    UnitOutOfRange { unit: u64, unit_vocab_size: usize },
    /// The units are not integers (`"1 2"`, `[1, 2]` or `"<1><2>"`).
    BadUnits(String),
    /// No units, and the stage needs them.
    NoUnits,
    /// `instruction_text` without the `<speech>` placeholder.
    NoSpeechPlaceholder,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::BadJson(e) => write!(f, "bad JSON: {e}"),
            Problem::MissingField(k) => write!(f, "no `{k}`"),
            Problem::MissingSpeech(p) => write!(f, "speech file {} does not exist", p.display()),
            Problem::EmptyAnswer => write!(f, "empty answer"),
            Problem::UnitOutOfRange {
                unit,
                unit_vocab_size,
            } => write!(
                f,
                "unit {unit} out of range of the speech decoder's {unit_vocab_size} units"
            ),
            Problem::BadUnits(e) => write!(f, "bad units: {e}"),
            Problem::NoUnits => write!(f, "no units (stage 2 needs them)"),
            Problem::NoSpeechPlaceholder => write!(f, "`instruction_text` has no `<speech>`"),
        }
    }
}

/// One usable manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Line (JSONL) or dialogue number (InstructS2S), 1-based.
    pub line: usize,
    /// The question audio, resolved against the manifest's folder.
    pub speech: PathBuf,
    /// The answer text (surrounding whitespace removed).
    pub answer: String,
    /// The answer's units (may be empty for stage 1).
    pub units: Vec<u32>,
    /// The user message, `<speech>` where the audio goes (`None`: the default).
    pub instruction: Option<String>,
}

/// An entry left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub problem: Problem,
}

/// The two layouts read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    Jsonl,
    InstructS2S,
}

/// A read manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub format: ManifestFormat,
    pub records: Vec<Record>,
    pub skipped: Vec<Skipped>,
}

impl Manifest {
    /// `path:line: problem` of a skipped entry (`path dialogue n: …` for InstructS2S).
    pub fn describe(&self, s: &Skipped) -> String {
        match self.format {
            ManifestFormat::Jsonl => format!("{}:{}: {}", self.path.display(), s.line, s.problem),
            ManifestFormat::InstructS2S => {
                format!("{} dialogue {}: {}", self.path.display(), s.line, s.problem)
            }
        }
    }
}

/// How to read a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestOptions {
    /// The speech decoder's `unit_vocab_size`: units must be below it.
    pub unit_vocab_size: usize,
    /// Whether every entry needs units (stage 2).
    pub require_units: bool,
    /// Fail on the first bad entry instead of skipping it.
    pub strict: bool,
}

/// Parses units: a JSON array of integers, a space-separated string, or
/// InstructS2S's `<12><7>` string.
pub fn parse_units(v: &Value) -> std::result::Result<Vec<u64>, Problem> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_u64()
                    .ok_or_else(|| Problem::BadUnits(format!("{x} is not a unit")))
            })
            .collect(),
        Value::String(s) => {
            let spaced = s.replace(['<', '>'], " ");
            spaced
                .split_whitespace()
                .map(|t| {
                    t.parse::<u64>()
                        .map_err(|_| Problem::BadUnits(format!("{t:?} is not a unit")))
                })
                .collect()
        }
        other => Err(Problem::BadUnits(format!("{other} is not a unit list"))),
    }
}

fn check_units(units: Vec<u64>, opts: &ManifestOptions) -> std::result::Result<Vec<u32>, Problem> {
    if let Some(&unit) = units.iter().find(|&&u| u >= opts.unit_vocab_size as u64) {
        return Err(Problem::UnitOutOfRange {
            unit,
            unit_vocab_size: opts.unit_vocab_size,
        });
    }
    if units.is_empty() && opts.require_units {
        return Err(Problem::NoUnits);
    }
    Ok(units.into_iter().map(|u| u as u32).collect())
}

fn resolve(base: &Path, p: &str) -> std::result::Result<PathBuf, Problem> {
    let path = base.join(p);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Problem::MissingSpeech(path))
    }
}

fn answer_text(v: Option<&Value>, key: &'static str) -> std::result::Result<String, Problem> {
    let a = v
        .and_then(Value::as_str)
        .ok_or(Problem::MissingField(key))?
        .trim();
    if a.is_empty() {
        Err(Problem::EmptyAnswer)
    } else {
        Ok(a.to_string())
    }
}

/// One line of omni's JSONL.
fn jsonl_record(
    base: &Path,
    line: usize,
    text: &str,
    opts: &ManifestOptions,
) -> std::result::Result<Record, Problem> {
    let v: Value = serde_json::from_str(text).map_err(|e| Problem::BadJson(e.to_string()))?;
    if !v.is_object() {
        return Err(Problem::BadJson("not an object".into()));
    }
    let speech = v["speech"]
        .as_str()
        .ok_or(Problem::MissingField("speech"))?;
    let answer = answer_text(v.get("answer"), "answer")?;
    let units = check_units(parse_units(v.get("units").unwrap_or(&Value::Null))?, opts)?;
    let instruction = match v.get("instruction_text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.contains("<speech>") => Some(s.clone()),
        Some(Value::String(_)) => return Err(Problem::NoSpeechPlaceholder),
        Some(_) => return Err(Problem::MissingField("instruction_text")),
    };
    let speech = resolve(base, speech)?;
    Ok(Record {
        line,
        speech,
        answer,
        units,
        instruction,
    })
}

/// The first human → gpt pair of one InstructS2S dialogue.
fn instructs2s_record(
    base: &Path,
    n: usize,
    dialogue: &Value,
    opts: &ManifestOptions,
) -> std::result::Result<Record, Problem> {
    let turns = dialogue
        .as_array()
        .ok_or_else(|| Problem::BadJson("a dialogue is not an array of turns".into()))?;
    let pair = turns
        .windows(2)
        .find(|w| w[0]["from"] == "human" && w[1]["from"] == "gpt")
        .ok_or(Problem::MissingField("human → gpt turns"))?;
    let speech = pair[0]["speech"]
        .as_str()
        .ok_or(Problem::MissingField("speech"))?;
    let answer = answer_text(pair[1].get("text"), "text")?;
    let units = check_units(
        parse_units(pair[1].get("unit").unwrap_or(&Value::Null))?,
        opts,
    )?;
    let speech = resolve(base, speech)?;
    Ok(Record {
        line: n,
        speech,
        answer,
        units,
        instruction: None,
    })
}

/// Reads a manifest in either layout (see the module doc).
pub fn read_manifest(path: &Path, opts: &ManifestOptions) -> Result<Manifest> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile {
                path: path.to_path_buf(),
                what: "training manifest".into(),
            }
        } else {
            Error::io(path, e)
        }
    })?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let format = if text.trim_start().starts_with('[') {
        ManifestFormat::InstructS2S
    } else {
        ManifestFormat::Jsonl
    };
    let mut m = Manifest {
        path: path.to_path_buf(),
        format,
        records: Vec::new(),
        skipped: Vec::new(),
    };
    let push = |m: &mut Manifest, line: usize, r: std::result::Result<Record, Problem>| match r {
        Ok(r) => m.records.push(r),
        Err(problem) => m.skipped.push(Skipped { line, problem }),
    };
    match format {
        ManifestFormat::Jsonl => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                push(&mut m, i + 1, jsonl_record(&base, i + 1, line, opts));
            }
        }
        ManifestFormat::InstructS2S => {
            let all: Value = serde_json::from_str(&text)
                .map_err(|e| Error::InvalidInput(format!("{}: bad JSON: {e}", path.display())))?;
            let dialogues = all.as_array().ok_or_else(|| {
                Error::InvalidInput(format!("{}: not an array of dialogues", path.display()))
            })?;
            for (i, d) in dialogues.iter().enumerate() {
                push(&mut m, i + 1, instructs2s_record(&base, i + 1, d, opts));
            }
        }
    }
    if opts.strict {
        if let Some(s) = m.skipped.first() {
            return Err(Error::InvalidInput(m.describe(s)));
        }
    }
    if m.records.is_empty() {
        let why = m
            .skipped
            .first()
            .map(|s| format!(" (first problem: {})", m.describe(s)))
            .unwrap_or_default();
        return Err(Error::InvalidInput(format!(
            "{}: no usable example{why}",
            path.display()
        )));
    }
    Ok(m)
}
