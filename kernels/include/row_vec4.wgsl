// row_vec4: the row type of the kernels written over `V` (attention and RMS-norm bodies) for
// vec4 loads: `alias V = vec4<f32>`, `VW` (floats per V), `hsum` (the sum of a V's lanes, in a
// fixed order), `lane` (lane c of a V) and `from_lanes` (a V from the first VW lanes of a vec4).

alias V = vec4<f32>;
const VW: u32 = 4u;
fn hsum(x: V) -> f32 { return (x.x + x.y) + (x.z + x.w); }
fn lane(x: V, c: u32) -> f32 { return x[c]; }
fn from_lanes(x: vec4<f32>) -> V { return x; }
