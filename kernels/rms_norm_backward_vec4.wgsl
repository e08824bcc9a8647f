// rms_norm_backward_vec4: rms_norm_backward with vec4 loads (C a multiple of 4; the launcher
// checks). See the body's include.
//! include "row_vec4.wgsl"
//! include "rms_norm_backward_body.wgsl"
