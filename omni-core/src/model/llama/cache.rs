//! Per-layer key/value cache that grows in chunks (capacity doubles, so the
//! whole cache is copied O(log n) times, not every step) and can be truncated
//! (multi-turn history edits, cancel).
//!
//! A layer's keys and values live where the layer's computation runs: as burn
//! tensors for the burn path (every device, training), or as host f32 buffers for
//! the CPU's host path (`super::host`: prompts and decode steps with packed
//! weights), which reads them in place every step. A cache fed by one path and then
//! the other moves its positions over once (a copy), then stays.

use burn::tensor::{DType, Device, Tensor};

use crate::model::nn::host::{from_host_f32, to_host_f32};

/// Keys and values of one attention layer: `[1, kv_heads, capacity, head_dim]`
/// tensors or host buffers of the same layout, `len` positions of them valid.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    store: Store,
    len: usize,
}

// One per layer: the variants' sizes (two tensor handles vs. host buffers' headers)
// do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default)]
enum Store {
    #[default]
    Empty,
    Tensors {
        k: Tensor<4>,
        v: Tensor<4>,
    },
    Host(HostKv),
}

/// Host keys and values, each `[heads, cap, dim]` f32 (head-major: one head's
/// positions contiguous, as the attention kernel reads them), and the dtype and
/// device the tensors they came from (or go back to) have.
#[derive(Debug, Clone)]
struct HostKv {
    k: Vec<f32>,
    v: Vec<f32>,
    heads: usize,
    dim: usize,
    cap: usize,
    dtype: DType,
    device: Device,
}

/// All cached keys (or values) of a layer on the host, head `h`'s position `i` at
/// `data[h·head_stride + i·dim..][..dim]` (`omni_kernels::Heads`' strides).
pub struct HostHeads<'a> {
    pub data: &'a [f32],
    pub heads: usize,
    pub rows: usize,
    pub head_stride: usize,
}

const MIN_CAPACITY: usize = 64;

/// Positions a host cache makes room for past a prompt (decode steps before the
/// first regrowth).
const HOST_HEADROOM: usize = 256;

impl HostKv {
    /// Moves the first `len` positions to a buffer of `cap` positions per head.
    fn regrow(&mut self, len: usize, cap: usize) {
        let (h, d, old) = (self.heads, self.dim, self.cap);
        let move_to = |buf: &mut Vec<f32>| {
            let mut fresh = vec![0.0f32; h * cap * d];
            for hd in 0..h {
                fresh[hd * cap * d..][..len * d].copy_from_slice(&buf[hd * old * d..][..len * d]);
            }
            *buf = fresh;
        };
        move_to(&mut self.k);
        move_to(&mut self.v);
        self.cap = cap;
    }

    /// The buffers as `[1, heads, cap, dim]` tensors.
    fn into_tensors(self) -> (Tensor<4>, Tensor<4>) {
        let dims = [1, self.heads, self.cap, self.dim];
        (
            from_host_f32(self.k, dims, &self.device, self.dtype),
            from_host_f32(self.v, dims, &self.device, self.dtype),
        )
    }
}

impl LayerCache {
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the positions are held as host buffers (the host path's).
    pub fn on_host(&self) -> bool {
        matches!(self.store, Store::Host(_))
    }

    fn grow(buf: Option<Tensor<4>>, len: usize, new_cap: usize, like: &Tensor<4>) -> Tensor<4> {
        let [b, h, _, d] = like.dims();
        let device: Device = like.device();
        let dtype: DType = like.dtype();
        let fresh = Tensor::<4>::zeros([b, h, new_cap, d], &device).cast(dtype);
        match buf {
            Some(old) if len > 0 => fresh.slice_assign(
                [0..b, 0..h, 0..len, 0..d],
                old.slice([0..b, 0..h, 0..len, 0..d]),
            ),
            _ => fresh,
        }
    }

    /// Appends `k`, `v` (`[1, kv_heads, n, head_dim]`) and returns views of all
    /// cached keys and values (`[1, kv_heads, len, head_dim]`). The burn path's.
    pub fn append(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, h, n, d] = k.dims();
        let end = self.len + n;
        if self.len == 0 && n >= MIN_CAPACITY {
            // An empty cache takes a long first chunk (a prompt) as its buffers: no
            // zeroed buffer and copy (20 MB per layer for 1250 positions × 4096).
            self.store = Store::Tensors {
                k: k.clone(),
                v: v.clone(),
            };
            self.len = n;
            return (k, v);
        }
        let (mut kb, mut vb) = match std::mem::take(&mut self.store) {
            Store::Tensors { k, v } => (Some(k), Some(v)),
            Store::Host(host) => {
                let (k, v) = host.into_tensors();
                (Some(k), Some(v))
            }
            Store::Empty => (None, None),
        };
        if end > kb.as_ref().map_or(0, |t| t.dims()[2]) {
            let cap = kb.as_ref().map_or(0, |t| t.dims()[2]);
            let new_cap = (cap * 2).max(end).max(MIN_CAPACITY);
            kb = Some(Self::grow(kb, self.len, new_cap, &k));
            vb = Some(Self::grow(vb, self.len, new_cap, &v));
        }
        let range = [0..b, 0..h, self.len..end, 0..d];
        // The buffers were taken out of the store: uniquely owned, so the backend
        // can write in place.
        let (Some(kb), Some(vb)) = (kb, vb) else {
            unreachable!("buffers were allocated above")
        };
        let kb = kb.slice_assign(range.clone(), k);
        let vb = vb.slice_assign(range, v);
        self.len = end;
        let all = [0..b, 0..h, 0..end, 0..d];
        let views = (kb.clone().slice(all.clone()), vb.clone().slice(all));
        self.store = Store::Tensors { k: kb, v: vb };
        views
    }

    /// Appends `n` positions of keys and values given token-major (`[n, heads·dim]`,
    /// as the projections produce them) to the host buffers, and returns all cached
    /// keys and values. The host path's (`super::host`); a cache holding tensors moves
    /// its positions to the host first. `dtype`/`device`: those of the layer's tensors.
    #[allow(clippy::too_many_arguments)] // two buffers and their shape, and where they came from
    pub fn append_host(
        &mut self,
        k: &[f32],
        v: &[f32],
        n: usize,
        heads: usize,
        dim: usize,
        dtype: DType,
        device: &Device,
    ) -> (HostHeads<'_>, HostHeads<'_>) {
        assert_eq!(k.len(), n * heads * dim, "k is not [{n}, {heads}·{dim}]");
        assert_eq!(v.len(), n * heads * dim, "v is not [{n}, {heads}·{dim}]");
        let len = self.len;
        let end = len + n;
        let mut host = match std::mem::take(&mut self.store) {
            Store::Host(h) => h,
            Store::Tensors { k, v } => {
                let [_, heads, cap, dim] = k.dims();
                HostKv {
                    dtype: k.dtype(),
                    k: to_host_f32(k),
                    v: to_host_f32(v),
                    heads,
                    dim,
                    cap,
                    device: device.clone(),
                }
            }
            Store::Empty => HostKv {
                k: Vec::new(),
                v: Vec::new(),
                heads,
                dim,
                cap: 0,
                dtype,
                device: device.clone(),
            },
        };
        assert!(
            host.heads == heads && host.dim == dim,
            "cache of {} heads × {} appended with {heads} × {dim}",
            host.heads,
            host.dim
        );
        if end > host.cap {
            host.regrow(len, (end + HOST_HEADROOM).max(2 * host.cap));
        }
        let cap = host.cap;
        for (p, (kr, vr)) in k
            .chunks_exact(heads * dim)
            .zip(v.chunks_exact(heads * dim))
            .enumerate()
        {
            for hd in 0..heads {
                let at = (hd * cap + len + p) * dim;
                host.k[at..at + dim].copy_from_slice(&kr[hd * dim..(hd + 1) * dim]);
                host.v[at..at + dim].copy_from_slice(&vr[hd * dim..(hd + 1) * dim]);
            }
        }
        self.len = end;
        self.store = Store::Host(host);
        let Store::Host(host) = &self.store else {
            unreachable!("stored above")
        };
        let last = ((heads - 1) * cap + end) * dim;
        let view = |data| HostHeads {
            data,
            heads,
            rows: end,
            head_stride: cap * dim,
        };
        (view(&host.k[..last]), view(&host.v[..last]))
    }

    /// Forgets every position at or after `len`.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// The caches of all layers of a model.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    pub layers: Vec<LayerCache>,
}

impl KvCache {
    pub fn new(n_layers: usize) -> Self {
        KvCache {
            layers: vec![LayerCache::default(); n_layers],
        }
    }

    /// Cached positions (the same in every layer).
    pub fn len(&self) -> usize {
        self.layers.first().map(|l| l.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every position at or after `len` in every layer.
    pub fn truncate(&mut self, len: usize) {
        for l in &mut self.layers {
            l.truncate(len);
        }
    }

    /// Empties the cache.
    pub fn clear(&mut self) {
        self.truncate(0);
    }
}
