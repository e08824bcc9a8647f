// attention_vec4_backward_q: the first half of attention_vec4's backward pass: as
// attention_small_backward_q with vec4 loads of the head columns (head size, row widths and
// column offsets multiples of 4; the launcher checks). See the body's include.
alias V = vec4<f32>;
const VW: u32 = 4u;
fn hsum(x: V) -> f32 { return (x.x + x.y) + (x.z + x.w); }
//! include "attention_backward_q_body.wgsl"
