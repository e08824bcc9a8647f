// gelu_tanh: the constants of the tanh-form GELU ("gelu_new", T5 v1.1),
//   gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) = x sigmoid(2u),
// and the stable sigmoid the activation kernels evaluate it with. Declares SQRT_2_OVER_PI,
// GELU_C and sigmoid_pair().

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_C: f32 = 0.044715;

// (sigmoid(z), 1 - sigmoid(z)), both to full relative precision: computed from e = exp(-|z|)
// <= 1, so nothing overflows and there is no inf/inf.
fn sigmoid_pair(z: f32) -> vec2<f32> {
  let e = exp(-abs(z));
  let r = 1.0 / (1.0 + e);
  if (z >= 0.0) { return vec2<f32>(r, e * r); }
  return vec2<f32>(e * r, r);
}
