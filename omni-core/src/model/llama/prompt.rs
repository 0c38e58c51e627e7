//! LLaMA-Omni's prompt: the `llama_3` conversation template (`omni_speech/conversation.py`)
//! and `tokenizer_speech_token` (`omni_speech/datasets/preprocess.py`), which turns the
//! prompt text into ids with [`SPEECH_TOKEN_INDEX`] where `<speech>` stood.
//!
//! The one-turn prompt of the reference (`infer.py`, the user text of
//! `infer/examples/question.json`) is
//!
//! ```text
//! <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>
//! <|start_header_id|>user<|end_header_id|>\n\n<speech>\nPlease directly answer the questions in the user's speech.<|eot_id|>
//! <|start_header_id|>assistant<|end_header_id|>\n\n
//! ```
//!
//! (one line, no newlines between the blocks). Each `<speech>`-separated chunk is tokenized
//! with special tokens, so the Llama-3 post-processor prepends a BOS to the chunk that already
//! starts with the `<|begin_of_text|>` text: the ids start with **two** BOS (128000, 128000),
//! as in training. The BOS the post-processor puts before the later chunks is dropped.

use crate::error::{Error, Result};
use crate::model::llama::tokenizer::Tokenizer;

/// The id standing for the speech features in prompt ids (`SPEECH_TOKEN_INDEX`).
pub const SPEECH_TOKEN_INDEX: i64 = -200;
/// The placeholder text of the speech in a message (`DEFAULT_SPEECH_TOKEN`).
pub const DEFAULT_SPEECH_TOKEN: &str = "<speech>";
/// The system text of the `llama_3` template.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful language and speech assistant. \
You are able to understand the speech content that the user provides, \
and assist the user with a variety of tasks using natural language.";
/// The user message of the reference's inference examples (`infer/examples/question.json`).
pub const DEFAULT_USER_MESSAGE: &str =
    "<speech>\nPlease directly answer the questions in the user's speech.";

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    /// The role name in the header (`user`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation; `content: None` (or empty) renders the header only, which
/// leaves the turn open for the model to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: Option<String>,
}

/// A conversation in the `llama_3` template of the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// System text; empty means no system block.
    pub system: String,
    pub messages: Vec<Message>,
}

impl Default for Conversation {
    fn default() -> Self {
        Self::llama_3()
    }
}

impl Conversation {
    /// The reference's `conv_llama_3`: the default system text, no messages.
    pub fn llama_3() -> Self {
        Conversation {
            system: DEFAULT_SYSTEM_PROMPT.to_string(),
            messages: Vec::new(),
        }
    }

    /// A conversation with another system text (empty: no system block).
    pub fn with_system(system: impl Into<String>) -> Self {
        Conversation {
            system: system.into(),
            messages: Vec::new(),
        }
    }

    /// The reference's one-turn inference prompt: default system text, the default user
    /// message (speech + instruction), the assistant turn left open.
    pub fn single_turn() -> Self {
        let mut c = Self::llama_3();
        c.push_user(DEFAULT_USER_MESSAGE).open_assistant();
        c
    }

    /// Appends a message (`append_message`).
    pub fn push(&mut self, role: Role, content: Option<String>) -> &mut Self {
        self.messages.push(Message { role, content });
        self
    }

    /// Appends a user message; put [`DEFAULT_SPEECH_TOKEN`] where the speech goes.
    pub fn push_user(&mut self, content: impl Into<String>) -> &mut Self {
        self.push(Role::User, Some(content.into()))
    }

    /// Appends a finished assistant message (a previous answer).
    pub fn push_assistant(&mut self, content: impl Into<String>) -> &mut Self {
        self.push(Role::Assistant, Some(content.into()))
    }

    /// Appends the open assistant header the model answers after.
    pub fn open_assistant(&mut self) -> &mut Self {
        self.push(Role::Assistant, None)
    }

    /// The prompt text (`get_prompt` of the `LLAMA_3` separator style): `<|begin_of_text|>`,
    /// the system block when the system text is not empty, then per message its header and,
    /// when it has content, the content stripped of surrounding whitespace + `<|eot_id|>`.
    pub fn render(&self) -> String {
        let mut out = String::from("<|begin_of_text|>");
        if !self.system.is_empty() {
            out.push_str("<|start_header_id|>system<|end_header_id|>\n\n");
            out.push_str(&self.system);
            out.push_str("<|eot_id|>");
        }
        for m in &self.messages {
            out.push_str("<|start_header_id|>");
            out.push_str(m.role.as_str());
            out.push_str("<|end_header_id|>\n\n");
            if let Some(content) = m.content.as_deref().filter(|c| !c.is_empty()) {
                out.push_str(python_strip(content));
                out.push_str("<|eot_id|>");
            }
        }
        out
    }

    /// The prompt ids (see [`PromptIds::from_prompt`]).
    pub fn tokenize(&self, tok: &Tokenizer) -> Result<PromptIds> {
        PromptIds::from_prompt(tok, &self.render())
    }
}

/// Python's `str.strip()`: Unicode whitespace, which for Python also covers U+001C..U+001F.
fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// The reference's `tokenizer_speech_token(prompt, tokenizer)`: the prompt is split on
/// `<speech>`, each chunk encoded with special tokens; when the first chunk starts with the BOS
/// id, that BOS is kept once and the first id of every chunk is dropped; one
/// [`SPEECH_TOKEN_INDEX`] goes between consecutive chunks.
pub fn tokenizer_speech_token(tok: &Tokenizer, prompt: &str) -> Result<Vec<i64>> {
    let chunks = prompt
        .split(DEFAULT_SPEECH_TOKEN)
        .map(|c| tok.encode(c, true))
        .collect::<Result<Vec<_>>>()?;
    let mut ids: Vec<i64> = Vec::new();
    let mut skip = 0;
    if let (Some(&first), Some(bos)) = (chunks.first().and_then(|c| c.first()), tok.bos_token_id())
    {
        if first == bos {
            skip = 1;
            ids.push(i64::from(first));
        }
    }
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            ids.push(SPEECH_TOKEN_INDEX);
        }
        ids.extend(chunk.iter().skip(skip).map(|&id| i64::from(id)));
    }
    Ok(ids)
}

/// A run of prompt ids: text to embed, or the place of one speech input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(Vec<u32>),
    Speech,
}

/// Prompt ids: token ids with [`SPEECH_TOKEN_INDEX`] at each speech placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptIds {
    ids: Vec<i64>,
}

impl PromptIds {
    /// Checks that every id is a token id (`0..=u32::MAX`) or [`SPEECH_TOKEN_INDEX`].
    pub fn new(ids: Vec<i64>) -> Result<Self> {
        if let Some(bad) = ids
            .iter()
            .find(|&&id| id != SPEECH_TOKEN_INDEX && u32::try_from(id).is_err())
        {
            return Err(Error::InvalidInput(format!(
                "prompt id {bad} is neither a token id nor the speech placeholder {SPEECH_TOKEN_INDEX}"
            )));
        }
        Ok(PromptIds { ids })
    }

    /// [`tokenizer_speech_token`] of `prompt`.
    pub fn from_prompt(tok: &Tokenizer, prompt: &str) -> Result<Self> {
        Self::new(tokenizer_speech_token(tok, prompt)?)
    }

    /// The ids, [`SPEECH_TOKEN_INDEX`] included.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// The ids, [`SPEECH_TOKEN_INDEX`] included.
    pub fn into_ids(self) -> Vec<i64> {
        self.ids
    }

    /// Number of ids (each placeholder counts one).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of speech placeholders.
    pub fn speech_count(&self) -> usize {
        self.ids
            .iter()
            .filter(|&&id| id == SPEECH_TOKEN_INDEX)
            .count()
    }

    /// Positions of the placeholders in [`ids`](Self::ids).
    pub fn speech_positions(&self) -> Vec<usize> {
        self.ids
            .iter()
            .enumerate()
            .filter(|&(_, &id)| id == SPEECH_TOKEN_INDEX)
            .map(|(i, _)| i)
            .collect()
    }

    /// The text ids between placeholders: `speech_count() + 1` runs (possibly empty), the
    /// first before the first speech, the last after the last speech.
    pub fn text_chunks(&self) -> Vec<Vec<u32>> {
        self.ids
            .split(|&id| id == SPEECH_TOKEN_INDEX)
            .map(|run| run.iter().map(|&id| id as u32).collect())
            .collect()
    }

    /// The prompt in order as text runs and speech places, empty text runs left out: the
    /// splice embeds each text run and puts one speech input's features at each `Speech`.
    pub fn segments(&self) -> Vec<Segment> {
        let chunks = self.text_chunks();
        let n = chunks.len();
        let mut out = Vec::with_capacity(2 * n);
        for (i, chunk) in chunks.into_iter().enumerate() {
            if !chunk.is_empty() {
                out.push(Segment::Text(chunk));
            }
            if i + 1 < n {
                out.push(Segment::Speech);
            }
        }
        out
    }

    /// Length of the spliced sequence when speech input `i` brings `speech_lens[i]` embeddings
    /// (300 for 30 s); fails when the count of lengths is not the count of placeholders.
    pub fn spliced_len(&self, speech_lens: &[usize]) -> Result<usize> {
        spliced_len(&self.ids, speech_lens)
    }
}

/// Length of the sequence `ids` becomes once each [`SPEECH_TOKEN_INDEX`] is replaced by
/// `speech_lens[i]` embeddings (what `prepare_inputs_labels_for_speech_and_text` builds);
/// fails when the count of lengths is not the count of placeholders.
pub fn spliced_len(ids: &[i64], speech_lens: &[usize]) -> Result<usize> {
    let n = ids.iter().filter(|&&id| id == SPEECH_TOKEN_INDEX).count();
    if speech_lens.len() != n {
        return Err(Error::InvalidInput(format!(
            "the prompt has {n} speech placeholder(s) but {} speech input(s) were given",
            speech_lens.len()
        )));
    }
    Ok(ids.len() - n + speech_lens.iter().sum::<usize>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_reference_one_turn_prompt() {
        let expected = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful language and speech assistant. You are able to understand the speech content that the user provides, and assist the user with a variety of tasks using natural language.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<speech>\nPlease directly answer the questions in the user's speech.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        assert_eq!(Conversation::single_turn().render(), expected);
    }

    #[test]
    fn strip_matches_python() {
        assert_eq!(python_strip("\u{1c} a b\u{3000}\n"), "a b");
        assert_eq!(python_strip("\u{200b}x"), "\u{200b}x"); // ZWSP is not whitespace in Python
    }

    #[test]
    fn segments_and_chunks() {
        let p = PromptIds::new(vec![1, 1, 5, SPEECH_TOKEN_INDEX, 7, SPEECH_TOKEN_INDEX]).unwrap();
        assert_eq!(p.speech_count(), 2);
        assert_eq!(p.speech_positions(), vec![3, 5]);
        assert_eq!(p.text_chunks(), vec![vec![1, 1, 5], vec![7], vec![]]);
        assert_eq!(
            p.segments(),
            vec![
                Segment::Text(vec![1, 1, 5]),
                Segment::Speech,
                Segment::Text(vec![7]),
                Segment::Speech
            ]
        );
        assert_eq!(p.spliced_len(&[300, 10]).unwrap(), 4 + 310);
        assert!(p.spliced_len(&[300]).is_err());
        assert!(PromptIds::new(vec![-1]).is_err());
        assert!(PromptIds::new(vec![i64::from(u32::MAX) + 1]).is_err());
    }
}
