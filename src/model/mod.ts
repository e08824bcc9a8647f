/**
 * Models: T5 configs and weights, the typed buffer tables, the T5 forward/backward session and
 * greedy generation.
 *
 * @module
 */

export * from "./position_bias.ts";
export { loadT5, type LoadT5Options, T5Model } from "./t5.ts";
export * from "./t5_buffers.ts";
export * from "./t5_config.ts";
export * from "./t5_generate.ts";
export { embeddingTable, type FrozenT5, T5Graph } from "./t5_graph.ts";
export { checkBindings, type T5Batch, T5Session, type T5SessionOptions } from "./t5_session.ts";
export * from "./t5_weights.ts";
