// attention_vec4_backward_kv: the second half of attention_vec4's backward pass: as
// attention_small_backward_kv with vec4 loads of the head columns (head size, row widths and
// column offsets multiples of 4; the launcher checks). See the body's include.
//! include "row_vec4.wgsl"
//! include "attention_backward_kv_body.wgsl"
