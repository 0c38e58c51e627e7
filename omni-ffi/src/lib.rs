//! C ABI for omni: see include/omni.h. Filled in by the session API issue.
