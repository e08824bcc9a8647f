// attention_small: multi-head attention in one dispatch with scalar loads (any head size and
// column offsets; attention_vec4 is the same with vec4 loads): for each query row of each head,
// the scores, the softmax and the context, with no intermediate buffer but the saved
// probabilities. See the body's include.
//! include "row_f32.wgsl"
//! include "attention_forward_body.wgsl"
