//! The tiny Omni fixture as the training tests load it (`tests/fixtures/omni_tiny`, its
//! golden arrays `train_tiny/golden.safetensors`), all in f32 on the CPU device.

use std::collections::HashMap;

use omni_core::model::adaptor::{AdaptorConfig, SpeechAdaptor};
use omni_core::model::llama::{Llama, OmniConfig};
use omni_core::weights::{RunDType, WeightStore};
use omni_core::Device;

use super::{fixture, read_arrays, Array};

pub struct Tiny {
    pub cfg: OmniConfig,
    pub store: WeightStore,
    pub g: HashMap<String, Array>,
}

pub fn tiny() -> Tiny {
    let dir = fixture("omni_tiny");
    Tiny {
        cfg: OmniConfig::from_file(&dir.join("config.json")).expect("config"),
        store: WeightStore::open_hf_dir(&dir).expect("shards").dense_only(),
        g: read_arrays("train_tiny/golden.safetensors"),
    }
}

pub fn dev() -> Device {
    Device::flex()
}

pub fn load_adaptor(t: &Tiny) -> SpeechAdaptor {
    let acfg = AdaptorConfig::from_config_json(&fixture("omni_tiny/config.json")).unwrap();
    SpeechAdaptor::load(
        &t.store,
        "model.speech_projector.",
        &acfg,
        RunDType::F32,
        &dev(),
    )
    .unwrap()
}

pub fn load_llm(t: &Tiny) -> Llama {
    Llama::load(&t.store, &t.cfg.llm, RunDType::F32, &dev(), None).unwrap()
}
