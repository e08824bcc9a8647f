// row_f32: the row type of the kernels written over `V` (attention and RMS-norm bodies) for
// scalar loads: `alias V = f32`, `VW` (floats per V), `hsum` (the sum of a V's lanes), `lane`
// (lane c of a V) and `from_lanes` (a V from the first VW lanes of a vec4).

alias V = f32;
const VW: u32 = 1u;
fn hsum(x: V) -> f32 { return x; }
fn lane(x: V, c: u32) -> f32 { return x; }
fn from_lanes(x: vec4<f32>) -> V { return x.x; }
