// attention_small: multi-head attention in one dispatch with scalar loads (any head size and
// column offsets; attention_vec4 is the same with vec4 loads): for each query row of each head,
// the scores, the softmax and the context, with no intermediate buffer but the saved
// probabilities. See the body's include.
alias V = f32;
const VW: u32 = 1u;
fn hsum(x: V) -> f32 { return x; }
//! include "attention_forward_body.wgsl"
