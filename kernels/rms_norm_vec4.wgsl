// rms_norm_vec4: rms_norm with vec4 loads (C a multiple of 4; the launcher checks): a quarter of
// the loads. See the body's include.
//! include "row_vec4.wgsl"
//! include "rms_norm_body.wgsl"
