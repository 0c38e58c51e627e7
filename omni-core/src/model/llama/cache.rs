//! Per-layer key/value cache that grows in chunks (capacity doubles, so the
//! whole cache is copied O(log n) times, not every step) and can be truncated
//! (multi-turn history edits, cancel).

use burn::tensor::{DType, Device, Tensor};

/// Keys and values of one attention layer, `[1, kv_heads, capacity, head_dim]`.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    k: Option<Tensor<4>>,
    v: Option<Tensor<4>>,
    len: usize,
}

const MIN_CAPACITY: usize = 64;

impl LayerCache {
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn capacity(&self) -> usize {
        self.k.as_ref().map(|k| k.dims()[2]).unwrap_or(0)
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
    /// cached keys and values (`[1, kv_heads, len, head_dim]`).
    pub fn append(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, h, n, d] = k.dims();
        let end = self.len + n;
        if self.len == 0 && n >= MIN_CAPACITY {
            // An empty cache takes a long first chunk (a prompt) as its buffers: no
            // zeroed buffer and copy (20 MB per layer for 1250 positions × 4096).
            self.k = Some(k);
            self.v = Some(v);
            self.len = n;
            return match (&self.k, &self.v) {
                (Some(kk), Some(vv)) => (kk.clone(), vv.clone()),
                _ => unreachable!("buffers were set above"),
            };
        }
        if end > self.capacity() {
            let new_cap = (self.capacity() * 2).max(end).max(MIN_CAPACITY);
            self.k = Some(Self::grow(self.k.take(), self.len, new_cap, &k));
            self.v = Some(Self::grow(self.v.take(), self.len, new_cap, &v));
        }
        let range = [0..b, 0..h, self.len..end, 0..d];
        // Taking the buffers out keeps them uniquely owned, so the backend can
        // write in place.
        let kb = self.k.take().map(|buf| buf.slice_assign(range.clone(), k));
        let vb = self.v.take().map(|buf| buf.slice_assign(range, v));
        self.k = kb;
        self.v = vb;
        self.len = end;
        let all = [0..b, 0..h, 0..end, 0..d];
        match (&self.k, &self.v) {
            (Some(kk), Some(vv)) => (kk.clone().slice(all.clone()), vv.clone().slice(all)),
            _ => unreachable!("buffers were allocated above"),
        }
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
