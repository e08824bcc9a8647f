// rms_norm: T5's LayerNorm per row, optionally fused with the residual add and the dropouts
// around it, with scalar loads (any C; rms_norm_vec4 is the same with vec4 loads). See the
// body's include.
//! include "row_f32.wgsl"
//! include "rms_norm_body.wgsl"
