// attention_vec4: attention_small with vec4 loads of the head columns of q, k, v and ctx (head
// size, row widths and column offsets multiples of 4; the launcher checks). See the body's
// include.
//! include "row_vec4.wgsl"
//! include "attention_forward_body.wgsl"
