/**
 * The tiny T5 fixtures (tests/fixtures/t5, made by tools/make_t5_fixtures.py) are well-formed:
 * their configs parse, their tokenizers reproduce the Python ids, and their weights and reference
 * tensors have the names, shapes and values that reference.json records.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "@huggingface/tokenizers";
import { openSafetensors, type SafetensorsReader } from "../../src/io/safetensors.ts";
import { loadT5Config, type T5Config } from "../../src/model/t5_config.ts";

const MODELS = ["tiny-t5-v1_0", "tiny-t5-v1_1"] as const;

interface TensorFact {
  dtype: string;
  shape: number[];
}

/** The subset of reference.json these tests read. */
interface ReferenceFacts {
  model: string;
  vocab_size: number;
  tokenizer_size: number;
  extra_ids: number;
  tied_lm_head: boolean;
  scale_decoder_outputs: boolean;
  dense_act_fn: string;
  is_gated_act: boolean;
  src_len: number;
  prompt_len: number;
  max_new_tokens: number;
  sources: string[];
  targets: string[];
  source_ids: number[][];
  target_ids: number[][];
  loss: number;
  prompt_loss: number;
  greedy_ids: number[][];
  greedy_decoded: string[];
  embedding_tensor_names: string[];
  weights: Record<string, number[]>;
  reference_tensors: Record<string, TensorFact>;
  tokenizer_reference: { text: string; ids: number[] }[];
  tokenizer_decode_reference: { ids: number[]; text: string }[];
}

interface Fixture {
  dir: string;
  config: T5Config;
  facts: ReferenceFacts;
  tokenizer: Tokenizer;
}

async function fixture(model: string): Promise<Fixture> {
  const dir = fileURLToPath(new URL(`../fixtures/t5/${model}`, import.meta.url));
  const readJson = async (f: string) => JSON.parse(await Deno.readTextFile(`${dir}/${f}`));
  const tokenizer = new Tokenizer(
    await readJson("tokenizer.json"),
    await readJson("tokenizer_config.json"),
  );
  return {
    dir,
    config: await loadT5Config(dir),
    facts: await readJson("reference.json"),
    tokenizer,
  };
}

/** Integer tensor as plain numbers (I64 comes back as BigInt64Array). */
async function readInts(st: SafetensorsReader, name: string): Promise<number[]> {
  const { data } = await st.read(name);
  return Array.from(data as ArrayLike<number | bigint>, Number);
}

/** Rows of a padded (rows, width) matrix as nested arrays. */
function rows(flat: number[], width: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < flat.length; i += width) out.push(flat.slice(i, i + width));
  return out;
}

function pad(row: number[], width: number, fill: number): number[] {
  return [...row, ...Array(width - row.length).fill(fill)];
}

for (const model of MODELS) {
  Deno.test(`${model}: config.json parses to the variant, tying and activation transformers used`, async () => {
    const { config, facts } = await fixture(model);
    assert.equal(config.variant, model.endsWith("v1_0") ? "v1_0" : "v1_1");
    assert.equal(config.tieWordEmbeddings, facts.tied_lm_head);
    assert.equal(config.scaleDecoderOutputs, facts.scale_decoder_outputs);
    assert.equal(config.denseActFn, facts.dense_act_fn);
    assert.equal(config.isGatedAct, facts.is_gated_act);
    assert.equal(config.vocabSize, facts.vocab_size);
    assert.ok(facts.tokenizer_size <= config.vocabSize, "tokenizer larger than the embedding");
    assert.deepEqual(
      [config.dModel, config.numLayers, config.numDecoderLayers, config.numHeads, config.dKv],
      [64, 2, 2, 4, 16],
    );
    assert.deepEqual([config.dFf, config.relativeAttentionNumBuckets], [128, 32]);
    assert.equal(config.relativeAttentionMaxDistance, 128);
    assert.equal(config.dropoutRate, 0.1);
  });

  Deno.test(`${model}: tokenizer.json loads in @huggingface/tokenizers and gives the Python ids`, async () => {
    const { tokenizer, facts } = await fixture(model);
    assert.equal(tokenizer.token_to_id("<pad>"), 0);
    assert.equal(tokenizer.token_to_id("</s>"), 1);
    assert.equal(tokenizer.token_to_id("<unk>"), 2);
    // T5 appends the sentinels in reverse: <extra_id_0> is the last id (32099 in t5-base).
    assert.equal(tokenizer.token_to_id("<extra_id_0>"), facts.tokenizer_size - 1);
    assert.equal(
      tokenizer.token_to_id(`<extra_id_${facts.extra_ids - 1}>`),
      facts.tokenizer_size - facts.extra_ids,
    );
    assert.equal(tokenizer.get_vocab(true).size, facts.tokenizer_size);
    for (const { text, ids } of facts.tokenizer_reference) {
      assert.deepEqual(tokenizer.encode(text).ids, ids, `encode(${JSON.stringify(text)})`);
    }
    for (const { ids, text } of facts.tokenizer_decode_reference) {
      assert.equal(tokenizer.decode(ids, { skip_special_tokens: true }), text);
    }
  });

  Deno.test(`${model}: the reference batch's sources and targets tokenize to the recorded ids; greedy ids decode to the recorded strings`, async () => {
    const { tokenizer, facts } = await fixture(model);
    facts.sources.forEach((text, i) => {
      const ids = tokenizer.encode(text).ids;
      // transformers' truncation keeps the EOS: the first src_len - 1 tokens, then </s>.
      const truncated = ids.length > facts.src_len ? [...ids.slice(0, facts.src_len - 1), 1] : ids;
      assert.deepEqual(truncated, facts.source_ids[i], `source ${i}`);
    });
    facts.targets.forEach((text, i) => {
      assert.deepEqual(tokenizer.encode(text).ids, facts.target_ids[i], `target ${i}`);
    });
    facts.greedy_ids.forEach((ids, i) => {
      // transformers stops once every row has produced EOS; later slots of finished rows are pad.
      assert.equal(ids.length, facts.greedy_ids[0].length);
      assert.ok(ids.length <= facts.max_new_tokens + 1);
      assert.equal(ids[0], 0, "greedy rows start with decoder_start_token_id 0");
      assert.equal(tokenizer.decode(ids, { skip_special_tokens: true }), facts.greedy_decoded[i]);
    });
  });

  Deno.test(`${model}: model.safetensors holds the tensors and shapes of a T5 ${model.slice(-4)} checkpoint`, async () => {
    const { dir, config, facts } = await fixture(model);
    using st = await openSafetensors(`${dir}/model.safetensors`);
    const names = st.names().toSorted();
    assert.deepEqual(names, Object.keys(facts.weights).toSorted());
    for (const name of names) {
      assert.equal(st.info(name).dtype, "F32", name);
      assert.deepEqual(st.info(name).shape, facts.weights[name], name);
    }
    const C = config.dModel, F = config.dFf, V = config.vocabSize, HD = config.innerDim;
    // transformers' save_pretrained keeps one name per tied tensor: shared.weight; lm_head.weight
    // only when it is a separate tensor (v1.1). encoder/decoder.embed_tokens are never written.
    assert.deepEqual(st.info("shared.weight").shape, [V, C]);
    assert.equal(st.has("encoder.embed_tokens.weight"), false);
    assert.equal(st.has("decoder.embed_tokens.weight"), false);
    assert.equal(st.has("lm_head.weight"), !config.tieWordEmbeddings);
    if (!config.tieWordEmbeddings) assert.deepEqual(st.info("lm_head.weight").shape, [V, C]);
    assert.deepEqual(
      facts.embedding_tensor_names,
      config.tieWordEmbeddings ? ["shared.weight"] : ["shared.weight", "lm_head.weight"],
    );
    const ffn = config.isGatedAct ? ["wi_0", "wi_1"] : ["wi"];
    for (
      const [stack, layers] of [["encoder", config.numLayers], [
        "decoder",
        config.numDecoderLayers,
      ]] as const
    ) {
      assert.deepEqual(st.info(`${stack}.final_layer_norm.weight`).shape, [C]);
      for (let l = 0; l < layers; l++) {
        const b = `${stack}.block.${l}.layer`;
        const attn = [
          `${b}.0.SelfAttention`,
          ...(stack === "decoder" ? [`${b}.1.EncDecAttention`] : []),
        ];
        for (const a of attn) {
          for (const p of ["q", "k", "v"]) {
            assert.deepEqual(st.info(`${a}.${p}.weight`).shape, [HD, C]);
          }
          assert.deepEqual(st.info(`${a}.o.weight`).shape, [C, HD]);
        }
        // Only the first block of each stack owns the relative position table, (buckets, H).
        assert.equal(st.has(`${b}.0.SelfAttention.relative_attention_bias.weight`), l === 0);
        if (l === 0) {
          assert.deepEqual(
            st.info(`${b}.0.SelfAttention.relative_attention_bias.weight`).shape,
            [config.relativeAttentionNumBuckets, config.numHeads],
          );
        }
        const ff = `${b}.${stack === "decoder" ? 2 : 1}`;
        for (const w of ffn) {
          assert.deepEqual(st.info(`${ff}.DenseReluDense.${w}.weight`).shape, [F, C]);
        }
        assert.deepEqual(st.info(`${ff}.DenseReluDense.wo.weight`).shape, [C, F]);
        for (let k = 0; k < attn.length + 1; k++) {
          assert.deepEqual(st.info(`${b}.${k}.layer_norm.weight`).shape, [C]);
        }
      }
    }
  });

  Deno.test(`${model}: reference.safetensors matches reference.json, the batch and the committed weights`, async () => {
    const { dir, config, facts } = await fixture(model);
    using ref = await openSafetensors(`${dir}/reference.safetensors`);
    assert.deepEqual(ref.names().toSorted(), Object.keys(facts.reference_tensors).toSorted());
    for (const [name, { dtype, shape }] of Object.entries(facts.reference_tensors)) {
      assert.equal(ref.info(name).dtype, dtype === "int64" ? "I64" : "F32", name);
      assert.deepEqual(ref.info(name).shape, shape, name);
    }
    const S = facts.src_len, M = facts.prompt_len, C = config.dModel;
    const T = Math.max(...facts.target_ids.map((t) => t.length));
    const B = facts.sources.length;

    // The batch: padded sources, masks, labels with -100, decoder inputs shifted right.
    assert.deepEqual(
      rows(await readInts(ref, "input_ids"), S),
      facts.source_ids.map((r) => pad(r, S, 0)),
    );
    assert.deepEqual(
      rows(await readInts(ref, "attention_mask"), S),
      facts.source_ids.map((r) => pad(r.map(() => 1), S, 0)),
    );
    const labels = facts.target_ids.map((r) => pad(r, T, -100));
    assert.deepEqual(rows(await readInts(ref, "labels"), T), labels);
    assert.deepEqual(
      rows(await readInts(ref, "decoder_input_ids"), T),
      labels.map((r) =>
        [config.decoderStartTokenId, ...r.slice(0, -1)].map((x) => x === -100 ? 0 : x)
      ),
    );
    assert.deepEqual(
      rows(await readInts(ref, "prompt_attention_mask"), M + S),
      facts.source_ids.map((r) => pad(Array(M + r.length).fill(1), M + S, 0)),
    );
    assert.deepEqual(
      rows(await readInts(ref, "greedy_ids"), facts.greedy_ids[0].length),
      facts.greedy_ids,
    );
    assert.ok(Math.abs((await ref.readFloat("loss"))[0] - facts.loss) < 1e-6);
    assert.ok(Math.abs((await ref.readFloat("prompt_loss"))[0] - facts.prompt_loss) < 1e-6);

    // inputs_embeds are rows of the committed shared.weight; the prompt case prepends the prompt.
    using weights = await openSafetensors(`${dir}/model.safetensors`);
    const shared = await weights.readFloat("shared.weight");
    const embeds = await ref.readFloat("inputs_embeds");
    const ids = await readInts(ref, "input_ids");
    ids.forEach((id, i) => {
      assert.deepEqual(embeds.subarray(i * C, (i + 1) * C), shared.subarray(id * C, (id + 1) * C));
    });
    const prompt = await ref.readFloat("prompt_embeds");
    const promptInputs = await ref.readFloat("prompt_inputs_embeds");
    for (let b = 0; b < B; b++) {
      const row = promptInputs.subarray(b * (M + S) * C, (b + 1) * (M + S) * C);
      assert.deepEqual(row.subarray(0, M * C), prompt);
      assert.deepEqual(row.subarray(M * C), embeds.subarray(b * S * C, (b + 1) * S * C));
    }

    // Every float reference is finite, and the gradients are not all zero.
    for (const name of ref.names()) {
      if (ref.info(name).dtype !== "F32") continue;
      const x = await ref.readFloat(name);
      assert.ok(x.every(Number.isFinite), `${name} has non-finite values`);
    }
    // Padded source positions are masked as keys and in cross-attention: their gradient is 0.
    for (
      const [grad, mask, L] of [["grad_inputs_embeds", "attention_mask", S], [
        "prompt_grad_inputs_embeds",
        "prompt_attention_mask",
        M + S,
      ]] as const
    ) {
      const g = await ref.readFloat(grad);
      (await readInts(ref, mask)).forEach((m, i) => {
        if (m === 0) {
          assert.ok(
            g.subarray(i * C, (i + 1) * C).every((v) => v === 0),
            `${grad} at padded ${i % L}`,
          );
        }
      });
    }
    for (const name of ["grad_inputs_embeds", "prompt_grad_inputs_embeds", "prompt_grad_prompt"]) {
      assert.ok((await ref.readFloat(name)).some((v) => v !== 0), `${name} is all zeros`);
    }
  });
}
