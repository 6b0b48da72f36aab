// Text in, text out: tokenise prompts, decode greedily (exactly the
// evaluation's decoding, greedyGenerate) or by seeded sampling, stop at EOS or
// a stop string, and report text as it is generated (streaming).
import { Xoshiro128 } from "../peft/rng.js";
import type { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { NonFiniteLogitsError, greedyGenerate } from "./generate.js";
import { type CausalLM, tokenPositions } from "./causal-lm.js";
import { sampler } from "./sampling.js";
import { checkTokenIds } from "../tokenizer/vocab-check.js";

export interface TextGenerationOptions {
  /** Tokens generated at most per prompt (default 50). */
  maxNewTokens?: number;
  /** 0 (default): greedy decoding. > 0: sample from softmax(logits / temperature). */
  temperature?: number;
  /** Sampling: keep the k most likely tokens; 0 (default) keeps all. */
  topK?: number;
  /** Sampling: nucleus mass kept; 1 (default) keeps all. */
  topP?: number;
  /** Sampling: prompt i draws from the stream (seed, "generate:i"), so its text does not depend on batching. */
  seed?: number;
  /** Generation of a prompt ends where one of these strings appears; the text stops before it. */
  stop?: string[];
  /** Prompts per forward pass (left-padded together; default 8). */
  batchSize?: number;
  /** Streaming: called with each new piece of prompt `index`'s text as it is generated. */
  onText?: (index: number, piece: string) => void;
  /** Called as each prompt's generation is complete (in order within a batch). */
  onDone?: (index: number, g: Generation) => void;
}

export interface Generation {
  prompt: string;
  /** The continuation (without the prompt), cut before a stop string. */
  text: string;
  /** Generated token ids (EOS excluded; those of a stop string included). */
  tokens: number[];
  /** "stop": EOS or a stop string ended it; "length": maxNewTokens reached. */
  finishReason: "stop" | "length";
  /** Prompt tokens fed to the model (after truncation from the left). */
  promptTokens: number;
  /** Prompt tokens dropped (oldest first, BOS kept) so prompt + maxNewTokens fit the model's positions. */
  truncated: number;
}

/** "the model has N positions", and how many of them an adapter's prefix takes. */
export function positionsText(model: CausalLM): string {
  const prefix = model.hooks.prefix?.length ?? 0;
  return `the model has ${model.config.maxPositionEmbeddings} positions${prefix ? `, ${prefix} of them taken by the adapter's prefix` : ""}`;
}

/**
 * Continues each prompt. Greedy decoding (temperature 0) equals
 * greedyGenerate on the same token ids; sampling follows ./sampling.ts.
 * A prompt that encodes to no tokens (empty, with a tokenizer that adds no BOS) starts from config.json's
 * bos_token_id, as transformers' generate() does without inputs.
 * Throws a RangeError naming the option for out-of-range options, or the prompt when it is empty and there is no BOS;
 * an Error naming the prompt whose next-token logits are not finite (NaN or ±Inf).
 */
export function generate(model: CausalLM, tok: BpeTokenizer, prompts: string[], opts: TextGenerationOptions = {}): Generation[] {
  const maxNew = opts.maxNewTokens ?? 50;
  const maxLen = tokenPositions(model);
  if (!(Number.isSafeInteger(maxNew) && maxNew >= 1 && maxNew < maxLen)) {
    throw new RangeError(`maxNewTokens must be an integer in [1, ${maxLen - 1}] (${positionsText(model)}), got ${maxNew}`);
  }
  const temperature = opts.temperature ?? 0;
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  if (temperature === 0 && (topK !== 0 || topP !== 1)) {
    throw new RangeError("topK/topP apply to sampling only: give a temperature > 0 (temperature 0 decodes greedily)");
  }
  const batchSize = opts.batchSize ?? 8;
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1)) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const stops = (opts.stop ?? []).filter((s) => s !== "");
  const eos = tok.eosId !== null ? [tok.eosId] : [];

  const results: Generation[] = [];
  const wasTraining = model.training;
  model.training = false; // no dropout
  try {
    for (let start = 0; start < prompts.length; start += batchSize) {
      const texts = prompts.slice(start, start + batchSize);
      const encoded = texts.map((t, b) => {
        let ids = tok.encode(t);
        if (ids.length === 0) {
          // as transformers' generate() without inputs: start from config.json's BOS
          if (model.config.bosTokenId === null) {
            throw new RangeError(`prompt ${start + b} is empty and adds no token (the tokenizer adds no BOS, config.json has no bos_token_id): give a non-empty prompt`);
          }
          ids = [model.config.bosTokenId];
        }
        checkTokenIds([ids], model.config.vocabSize);
        const room = maxLen - maxNew;
        return ids.length <= room ? { ids, truncated: 0 } : { ids: [ids[0], ...ids.slice(ids.length - room + 1)], truncated: ids.length - room };
      });
      const promptText = encoded.map((e) => tok.decode(e.ids));
      const state = texts.map(() => ({ text: "", emitted: 0, stopped: false }));
      // the continuation is the decoded whole minus the decoded prompt, so
      // tokenizers that merge across the boundary (sentencepiece spaces) decode right
      const continuation = (b: number, tokens: number[]) => {
        const full = tok.decode([...encoded[b].ids, ...tokens]);
        return full.startsWith(promptText[b]) ? full.slice(promptText[b].length) : tok.decode(tokens);
      };
      const emit = (b: number, upTo: number) => {
        const s = state[b];
        if (upTo > s.emitted) { opts.onText?.(start + b, s.text.slice(s.emitted, upTo)); s.emitted = upTo; }
      };
      const onToken = (b: number, tokens: number[]): boolean => {
        const s = state[b];
        s.text = continuation(b, tokens);
        const hit = stops.map((x) => s.text.indexOf(x)).filter((i) => i >= 0);
        if (hit.length) {
          s.text = s.text.slice(0, Math.min(...hit));
          s.stopped = true;
          emit(b, s.text.length);
          return true;
        }
        if (opts.onText) {
          // hold back an incomplete UTF-8 character and what may begin a stop string
          let safe = s.text.endsWith("\uFFFD") ? s.text.length - 1 : s.text.length;
          for (const x of stops) {
            for (let k = Math.min(x.length - 1, safe); k > 0; k--) {
              if (s.text.slice(0, safe).endsWith(x.slice(0, k))) { safe -= k; break; }
            }
          }
          emit(b, safe);
        }
        return false;
      };
      const seed = opts.seed ?? 0;
      const chooseNext = temperature > 0
        ? sampler({ temperature, topK, topP }, texts.map((_, b) => new Xoshiro128(seed, `generate:${start + b}`)))
        : undefined;
      let out: number[][];
      try {
        out = greedyGenerate(model, encoded.map((e) => e.ids), {
          maxNewTokens: maxNew, stopTokenIds: eos, chooseNext, onToken: stops.length || opts.onText ? onToken : undefined,
        });
      } catch (e) {
        // the batch's row is the prompt start + row (it printed nothing, or sampled garbage, before)
        if (!(e instanceof NonFiniteLogitsError)) throw e;
        throw new Error(`the model's next-token logits for prompt ${start + e.row} are not finite after ${e.step} new token(s) ` +
          "(NaN or infinite logits: the weights or the adapter overflowed)");
      }
      out.forEach((tokens, b) => {
        const s = state[b];
        if (!s.stopped) s.text = continuation(b, tokens);
        emit(b, s.text.length);
        const g: Generation = {
          prompt: texts[b], text: s.text, tokens, finishReason: s.stopped || tokens.length < maxNew ? "stop" : "length",
          promptTokens: encoded[b].ids.length, truncated: encoded[b].truncated,
        };
        results.push(g);
        opts.onDone?.(start + b, g);
      });
    }
  } finally {
    model.training = wasTraining;
  }
  return results;
}
