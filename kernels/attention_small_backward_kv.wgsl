// attention_small_backward_kv: the second half of attention_small's backward pass with scalar
// loads (any head size and column offsets; attention_vec4_backward_kv is the same with vec4
// loads). See the body's include.
alias V = f32;
const VW: u32 = 1u;
fn hsum(x: V) -> f32 { return x; }
//! include "attention_backward_kv_body.wgsl"
