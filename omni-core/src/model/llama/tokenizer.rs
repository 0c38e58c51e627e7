//! The Llama-3 tokenizer: the checkpoint's HF `tokenizer.json` (byte-level BPE + added special
//! tokens + a post-processor that prepends `<|begin_of_text|>`), read with the `tokenizers`
//! crate, with the decoding rules of transformers' `PreTrainedTokenizerFast` that the reference
//! uses (`AutoTokenizer.from_pretrained`, transformers 4.43):
//!
//! - `encode(text, true)` is `tokenizer(text).input_ids`: the post-processor adds the BOS.
//! - `decode(ids, skip)` is `tokenizer.decode(ids, skip_special_tokens=skip)`: the byte-level
//!   decoder (lossy UTF-8, so a cut character becomes U+FFFD), unknown ids dropped, then, when
//!   `tokenizer_config.json` says `clean_up_tokenization_spaces` (Llama-3.1's does; transformers
//!   4.43 defaults to it), transformers' `clean_up_tokenization` (`" ."` → `"."`, `" n't"` →
//!   `"n't"`, ...).
//! - [`TextStream`] gives the same text one token at a time, holding back bytes of a character
//!   that is not complete yet (and the few characters the clean-up could still change).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::streaming::Streaming;

/// The BOS token of Llama 3.
pub const BEGIN_OF_TEXT: &str = "<|begin_of_text|>";
/// The end-of-turn token of Llama 3 (what the instruct model ends its answer with).
pub const EOT_ID: &str = "<|eot_id|>";
/// The end-of-text token of Llama 3.
pub const END_OF_TEXT: &str = "<|end_of_text|>";
/// Opens a role header (`<|start_header_id|>user<|end_header_id|>`).
pub const START_HEADER_ID: &str = "<|start_header_id|>";
/// Closes a role header.
pub const END_HEADER_ID: &str = "<|end_header_id|>";

/// A HF fast tokenizer as transformers runs it. Cheap to clone (the vocabulary is shared).
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<tokenizers::Tokenizer>,
    path: PathBuf,
    bos: Option<u32>,
    eos: Option<u32>,
    clean_up: bool,
    special: Arc<HashSet<u32>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("clean_up_tokenization_spaces", &self.clean_up)
            .finish()
    }
}

/// What `tokenizer_config.json` contributes.
struct TokenizerConfig {
    bos_token: Option<String>,
    eos_token: Option<String>,
    clean_up: bool,
}

impl TokenizerConfig {
    /// Without a config: Llama-3's names and transformers 4.43's default clean-up.
    fn llama3_default() -> Self {
        TokenizerConfig {
            bos_token: Some(BEGIN_OF_TEXT.to_string()),
            eos_token: Some(EOT_ID.to_string()),
            clean_up: true,
        }
    }

    fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.to_path_buf(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        // A special token is written either as a string or as an AddedToken dict.
        let token = |key: &str| -> Result<Option<String>> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(serde_json::Value::Object(o)) => match o.get("content") {
                    Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                    _ => Err(bad(format!("`{key}` has no string `content`"))),
                },
                Some(other) => Err(bad(format!(
                    "`{key}` is neither a string nor a token: {other}"
                ))),
            }
        };
        let clean_up = match obj.get("clean_up_tokenization_spaces") {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(other) => {
                return Err(bad(format!(
                    "`clean_up_tokenization_spaces` is not a bool: {other}"
                )))
            }
        };
        Ok(TokenizerConfig {
            bos_token: token("bos_token")?,
            eos_token: token("eos_token")?,
            clean_up,
        })
    }
}

impl Tokenizer {
    /// Loads a checkpoint's `tokenizer.json` (or the directory holding it). A
    /// `tokenizer_config.json` beside it sets the BOS/EOS tokens and `clean_up_tokenization_spaces`;
    /// without one, Llama-3's `<|begin_of_text|>`/`<|eot_id|>` and clean-up on are assumed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let mut path = path.as_ref().to_path_buf();
        if path.is_dir() {
            path = path.join("tokenizer.json");
        }
        let json = read_file(&path, "the checkpoint's tokenizer.json")?;
        let config_path = path.with_file_name("tokenizer_config.json");
        let config = if config_path.is_file() {
            Some(read_file(&config_path, "tokenizer_config.json")?)
        } else {
            None
        };
        Self::from_json_bytes(&json, config.as_deref(), path)
    }

    /// Builds a tokenizer from the bytes of a `tokenizer.json` (and optionally of a
    /// `tokenizer_config.json`); `source` names them in errors.
    pub fn from_json_bytes(
        json: &[u8],
        config_json: Option<&[u8]>,
        source: impl Into<PathBuf>,
    ) -> Result<Self> {
        let path = source.into();
        let inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| Error::Config {
            path: path.clone(),
            reason: format!("not a valid HF tokenizer.json: {e}"),
        })?;
        let config = match config_json {
            Some(bytes) => {
                TokenizerConfig::parse(bytes, &path.with_file_name("tokenizer_config.json"))?
            }
            None => TokenizerConfig::llama3_default(),
        };
        let lookup = |name: &Option<String>, what: &str| -> Result<Option<u32>> {
            match name {
                None => Ok(None),
                Some(n) => match inner.token_to_id(n) {
                    Some(id) => Ok(Some(id)),
                    // No config: the Llama-3 defaults are only a guess, so a tokenizer
                    // without them simply has no BOS/EOS.
                    None if config_json.is_none() => Ok(None),
                    None => Err(Error::Config {
                        path: path.with_file_name("tokenizer_config.json"),
                        reason: format!(
                            "{what} `{n}` is not in the vocabulary of {}",
                            path.display()
                        ),
                    }),
                },
            }
        };
        let bos = lookup(&config.bos_token, "bos_token")?;
        let eos = lookup(&config.eos_token, "eos_token")?;
        let special = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect();
        Ok(Tokenizer {
            inner: Arc::new(inner),
            path,
            bos,
            eos,
            clean_up: config.clean_up,
            special: Arc::new(special),
        })
    }

    /// The file this tokenizer was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Token ids of `text`. With `add_special_tokens` the post-processor runs (Llama 3: BOS
    /// prepended), as `tokenizer(text).input_ids` does. Special-token text in `text`
    /// (`<|eot_id|>`...) becomes its id.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, add_special_tokens)
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "cannot tokenize text with {}: {e}",
                    self.path.display()
                ))
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, as transformers' `decode(ids, skip_special_tokens)` gives it (clean-up of
    /// tokenization spaces as the config says). Ids outside the vocabulary are dropped, as HF does.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let text = self.decode_raw(ids, skip_special_tokens)?;
        Ok(if self.clean_up {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// [`decode`](Self::decode) without the clean-up of tokenization spaces
    /// (`clean_up_tokenization_spaces=False`).
    pub fn decode_raw(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| {
            Error::InvalidInput(format!(
                "cannot decode ids with {}: {e}",
                self.path.display()
            ))
        })
    }

    /// The id of a token given by its text (`<|eot_id|>`, `<|start_header_id|>`...).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The text of one token as stored in the vocabulary (byte-level symbols, e.g. `Ġthe`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// `tokenizer.bos_token_id` (from `tokenizer_config.json`).
    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos
    }

    /// `tokenizer.eos_token_id` (from `tokenizer_config.json`; `<|eot_id|>` for Llama-3.1
    /// Instruct). Generation also stops on the ids of the model's `generation_config.json`.
    pub fn eos_token_id(&self) -> Option<u32> {
        self.eos
    }

    /// Whether `id` is a special added token (skipped by `skip_special_tokens`).
    pub fn is_special(&self, id: u32) -> bool {
        self.special.contains(&id)
    }

    /// `len(tokenizer)`: the vocabulary with the added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Whether decoding applies transformers' `clean_up_tokenization`.
    pub fn clean_up_tokenization_spaces(&self) -> bool {
        self.clean_up
    }

    /// The same tokenizer with `clean_up_tokenization_spaces` set.
    pub fn with_clean_up_tokenization_spaces(mut self, on: bool) -> Self {
        self.clean_up = on;
        self
    }

    /// An incremental detokenizer over this tokenizer.
    pub fn text_stream(&self, skip_special_tokens: bool) -> TextStream {
        TextStream::new(self.clone(), skip_special_tokens)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile {
                path: path.to_path_buf(),
                what: what.to_string(),
            }
        } else {
            Error::io(path, e)
        }
    })
}

/// transformers' `clean_up_tokenization` (4.43): ten plain replacements, in this order.
pub fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

/// What may follow the space of a clean-up pattern (`" ."` ... `" 're"`).
const CLEAN_UP_TAILS: [&str; 10] = [".", "?", "!", ",", "' ", "n't", "'m", "'s", "'ve", "'re"];

/// Byte offset up to which `text` can be cleaned up now, whatever text comes after it:
/// every clean-up pattern is a space followed by one of [`CLEAN_UP_TAILS`], so a pattern can
/// only straddle the end of `text` from a space followed (up to the end) by a proper prefix
/// of a tail. The cut goes before the earliest such space, and again until there is none;
/// then `clean(text[..cut] + more) == clean(text[..cut]) + clean(more)`. (The replacements
/// only delete spaces that are followed by a whole tail, so they cannot make such an ending.)
fn clean_up_safe_len(text: &str) -> usize {
    let mut cut = text.len();
    loop {
        let head = &text[..cut];
        let risky = head
            .char_indices()
            .rev()
            .take(3)
            .filter(|&(i, c)| {
                let after = &head[i + c.len_utf8()..];
                c == ' '
                    && CLEAN_UP_TAILS
                        .iter()
                        .any(|t| t.len() > after.len() && t.starts_with(after))
            })
            .map(|(i, _)| i)
            .last();
        match risky {
            Some(i) => cut = i,
            None => return cut,
        }
    }
}

/// Incremental detokenizer: push generated ids one at a time, get the new text. The
/// concatenation of every [`push`](Streaming::push) and the final [`flush`](Streaming::flush) equals
/// `tokenizer.decode(all_ids, skip_special_tokens)`.
///
/// A character whose UTF-8 bytes span several byte-level tokens is held back until its last
/// byte arrives (a delta never ends in a cut character); with clean-up on, a trailing space
/// (or a space followed by `'`, `n`, `n'`, `'v`, `'r`) waits for the next token, which may
/// start a `" ."`-like pattern that the clean-up rewrites.
#[derive(Debug, Clone)]
pub struct TextStream {
    tok: Tokenizer,
    skip_special: bool,
    /// Ids since the last emission point: `ids[..prefix_ids]` decode to `prefix`.
    ids: Vec<u32>,
    prefix: String,
    /// Decoded text not given out yet because the clean-up could still change it.
    pending: String,
}

impl TextStream {
    /// A stream over `tok`; `skip_special_tokens` drops `<|eot_id|>` and the like.
    pub fn new(tok: Tokenizer, skip_special_tokens: bool) -> Self {
        TextStream {
            tok,
            skip_special: skip_special_tokens,
            ids: Vec::new(),
            prefix: String::new(),
            pending: String::new(),
        }
    }

    fn delta<'t>(&self, text: &'t str) -> Result<&'t str> {
        text.strip_prefix(self.prefix.as_str()).ok_or_else(|| {
            Error::InvalidInput(format!(
                "incremental decode with {}: {text:?} does not extend {:?}",
                self.tok.path.display(),
                self.prefix
            ))
        })
    }

    fn take_ready(&mut self) -> String {
        if !self.tok.clean_up {
            return std::mem::take(&mut self.pending);
        }
        let cut = clean_up_safe_len(&self.pending);
        let ready = clean_up_tokenization(&self.pending[..cut]);
        self.pending.drain(..cut);
        ready
    }
}

impl Streaming for TextStream {
    /// One generated token id.
    type Input<'a> = u32;
    /// Text that is final (possibly empty).
    type Output = String;

    /// Adds one token id; returns the text that is now final (possibly empty).
    fn push(&mut self, id: u32) -> Result<String> {
        if self.skip_special && self.tok.is_special(id) {
            return Ok(String::new());
        }
        self.ids.push(id);
        let text = self.tok.decode_raw(&self.ids, self.skip_special)?;
        if text.ends_with('\u{FFFD}') {
            // A character is not complete yet (or the token is an invalid byte run: `flush`
            // gives it out as the full decode would).
            return Ok(String::new());
        }
        let delta = self.delta(&text)?;
        // Keep the last token as context, so that decoders that treat the first token of a
        // sequence differently see the next one in the middle of a text.
        let keep_from = self.ids.len() - 1;
        self.ids.drain(..keep_from);
        self.prefix = self.tok.decode_raw(&self.ids, self.skip_special)?;
        self.pending.push_str(delta);
        Ok(self.take_ready())
    }

    /// Ends the stream: returns the text still held back and resets the stream.
    fn flush(&mut self) -> Result<String> {
        let text = self.tok.decode_raw(&self.ids, self.skip_special)?;
        let delta = self.delta(&text)?.to_string();
        self.pending.push_str(&delta);
        let rest = std::mem::take(&mut self.pending);
        self.reset();
        Ok(if self.tok.clean_up {
            clean_up_tokenization(&rest)
        } else {
            rest
        })
    }

    /// Forgets everything pushed (the held-back text too).
    fn reset(&mut self) {
        self.ids.clear();
        self.prefix.clear();
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string over the characters of the patterns, up to 5 long: cutting at the safe
    /// length and cleaning the two parts apart gives the clean-up of the whole, whether the
    /// text comes in two parts or one character at a time (the stream's `pending` logic).
    #[test]
    fn clean_up_is_compositional_at_safe_cuts() {
        let alphabet: Vec<char> = " .,'ntmsvre".chars().collect();
        let mut strings = vec![String::new()];
        let mut checked = 0;
        for _ in 0..5 {
            let mut next = Vec::new();
            for s in &strings {
                for &c in &alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            for t in &next {
                let whole = clean_up_tokenization(t);
                for split in 0..=t.len() {
                    let (a, b) = t.split_at(split);
                    let cut = clean_up_safe_len(a);
                    let joined = clean_up_tokenization(&a[..cut])
                        + &clean_up_tokenization(&(a[cut..].to_string() + b));
                    assert_eq!(joined, whole, "{t:?} split at {split}");
                }
                let mut pending = String::new();
                let mut out = String::new();
                for c in t.chars() {
                    pending.push(c);
                    let cut = clean_up_safe_len(&pending);
                    out += &clean_up_tokenization(&pending[..cut]);
                    pending.drain(..cut);
                }
                out += &clean_up_tokenization(&pending);
                assert_eq!(out, whole, "{t:?} one char at a time");
                checked += 1;
            }
            strings = next;
        }
        assert!(checked > 150_000);
    }

    #[test]
    fn safe_len_holds_only_what_may_change() {
        assert_eq!(clean_up_safe_len("hello"), 5);
        assert_eq!(clean_up_safe_len("hello "), 5);
        assert_eq!(clean_up_safe_len("a b c"), 5);
        assert_eq!(clean_up_safe_len("abc 'm"), 6);
        assert_eq!(clean_up_safe_len("abc '"), 3);
        assert_eq!(clean_up_safe_len("do n"), 2);
        assert_eq!(clean_up_safe_len("x ' "), 1);
        assert_eq!(clean_up_safe_len(" 🦀"), 5);
        assert_eq!(clean_up_safe_len(""), 0);
    }
}
