/**
 * Models: T5 configs and weights, the T5 forward/backward session and greedy
 * generation.
 *
 * @module
 */

export * from "./position_bias.ts";
export {
  loadT5,
  type LoadT5Options,
  type T5Batch,
  T5Model,
  T5Session,
  type T5SessionOptions,
  type T5Shape,
} from "./t5.ts";
export * from "./t5_config.ts";
export * from "./t5_generate.ts";
export * from "./t5_weights.ts";
