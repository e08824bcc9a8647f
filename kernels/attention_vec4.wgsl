// attention_vec4: attention_small with vec4 loads of the head columns of q, k, v and ctx (head
// size, row widths and column offsets multiples of 4; the launcher checks). See the body's
// include.
alias V = vec4<f32>;
const VW: u32 = 4u;
fn hsum(x: V) -> f32 { return (x.x + x.y) + (x.z + x.w); }
//! include "attention_forward_body.wgsl"
