// rms_norm_backward: the gradient of rms_norm with respect to x per row (and the fused dropouts'
// backward), with scalar loads (any C; rms_norm_backward_vec4 is the same with vec4 loads). See
// the body's include.
//! include "row_f32.wgsl"
//! include "rms_norm_backward_body.wgsl"
