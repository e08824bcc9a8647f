// attention_small_backward_q: the first half of attention_small's backward pass with scalar
// loads (any head size and column offsets; attention_vec4_backward_q is the same with vec4
// loads). See the body's include.
//! include "row_f32.wgsl"
//! include "attention_backward_q_body.wgsl"
