// attention_small_backward_kv: the second half of attention_small's backward pass with scalar
// loads (any head size and column offsets; attention_vec4_backward_kv is the same with vec4
// loads). See the body's include.
//! include "row_f32.wgsl"
//! include "attention_backward_kv_body.wgsl"
