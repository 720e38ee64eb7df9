// Presets for OpenAI-compatible servers: default base URL, what each accepts (logprobs and their maximum, n > 1,
// the request shape of logprobs, the max-tokens field) and notes shown to the user. remote.ts shapes every request
// through `constrainRequest` so that no server is sent a parameter it rejects. Facts: shared/ECOSYSTEM.md
// "OpenAI-compatible servers" and each project's docs; servers change, so the client also DETECTS missing logprobs.

import type { PresetName } from './types.ts';

export interface TeacherPreset {
  name: PresetName;
  label: string;
  /** Default base URL ('' = the user must give one). */
  baseURL: string;
  /** Whether chat completions accept logprobs at all (false = never ask: some servers answer 400). */
  logprobs: boolean;
  /** Largest top_logprobs the server accepts. */
  maxTopLogprobs: number;
  /**
   * How logprobs are asked for and returned: 'openai' = `logprobs: true, top_logprobs: k` →
   * `logprobs.content[]`; 'together' = `logprobs: k` (an integer) → `logprobs.{tokens, token_logprobs, top_logprobs}`.
   */
  logprobsShape: 'openai' | 'together';
  /** Whether n > 1 is accepted. */
  nAllowed: boolean;
  /** The request field for the completion length. */
  maxTokensField: 'max_tokens' | 'max_completion_tokens';
  /** Whether a key is usually needed (the UI asks for one). */
  needsApiKey: boolean;
  /** Shown to the user next to the preset. Plain text. */
  notes: string[];
}

export const PRESETS: Record<PresetName, TeacherPreset> = {
  custom: {
    name: 'custom',
    label: 'Other OpenAI-compatible server',
    baseURL: '',
    logprobs: true,
    maxTopLogprobs: 20,
    logprobsShape: 'openai',
    nAllowed: true,
    maxTokensField: 'max_tokens',
    needsApiKey: false,
    notes: [
      'Any server speaking the OpenAI chat-completions protocol. Logprobs are requested and their absence is detected.',
      'From a web page the server must allow the page origin (CORS).',
    ],
  },
  openai: {
    name: 'openai',
    label: 'OpenAI',
    baseURL: 'https://api.openai.com/v1',
    logprobs: true,
    maxTopLogprobs: 20,
    logprobsShape: 'openai',
    nAllowed: true,
    maxTokensField: 'max_completion_tokens',
    needsApiKey: true,
    notes: [
      'top_logprobs is at most 20. Reasoning models return no logprobs: token-level KD then falls back to sequence-level.',
      'The API key is kept in memory only and sent only to the base URL.',
    ],
  },
  openrouter: {
    name: 'openrouter',
    label: 'OpenRouter',
    baseURL: 'https://openrouter.ai/api/v1',
    logprobs: true,
    maxTopLogprobs: 20,
    logprobsShape: 'openai',
    nAllowed: false,
    maxTokensField: 'max_tokens',
    needsApiKey: true,
    notes: [
      'Logprobs depend on the upstream provider OpenRouter routes to; many return none (detected per response).',
      'n > 1 is not supported: requests are sent with n = 1.',
    ],
  },
  together: {
    name: 'together',
    label: 'Together AI',
    baseURL: 'https://api.together.xyz/v1',
    logprobs: true,
    maxTopLogprobs: 20,
    logprobsShape: 'together',
    nAllowed: true,
    maxTokensField: 'max_tokens',
    needsApiKey: true,
    notes: [
      'Chat `logprobs` is an integer (the number of alternatives) and the response gives `tokens`, `token_logprobs` ' +
        'and `top_logprobs` lists; they are converted to the OpenAI shape.',
    ],
  },
  groq: {
    name: 'groq',
    label: 'Groq',
    baseURL: 'https://api.groq.com/openai/v1',
    logprobs: false,
    maxTopLogprobs: 0,
    logprobsShape: 'openai',
    nAllowed: false,
    maxTokensField: 'max_tokens',
    needsApiKey: true,
    notes: [
      'Groq rejects logprobs, top_logprobs and n > 1 (400 error): only sequence-level KD (SFT on the teacher text).',
    ],
  },
  vllm: {
    name: 'vllm',
    label: 'vLLM',
    baseURL: 'http://localhost:8000/v1',
    logprobs: true,
    maxTopLogprobs: 20,
    logprobsShape: 'openai',
    nAllowed: true,
    maxTokensField: 'max_tokens',
    needsApiKey: false,
    notes: [
      'Logprobs are at most 20 by default (raise with `--max-logprobs`). CORS is open by default.',
      'Start with `vllm serve <model>`; pass `--api-key` to require a key.',
    ],
  },
  llamacpp: {
    name: 'llamacpp',
    label: 'llama.cpp server',
    baseURL: 'http://localhost:8080/v1',
    logprobs: true,
    maxTopLogprobs: 20,
    logprobsShape: 'openai',
    nAllowed: false,
    maxTokensField: 'max_tokens',
    needsApiKey: false,
    notes: [
      'n must be 1: requests are sent with n = 1 (ask several times for several samples).',
      'top_logprobs is mapped to n_probs by the server. It reflects the Origin header, so a web page can call it.',
    ],
  },
  ollama: {
    name: 'ollama',
    label: 'Ollama',
    baseURL: 'http://localhost:11434/v1',
    logprobs: true,
    maxTopLogprobs: 20,
    logprobsShape: 'openai',
    nAllowed: false,
    maxTokensField: 'max_tokens',
    needsApiKey: false,
    notes: [
      'From a web page Ollama must be started with the environment variable OLLAMA_ORIGINS set to this page\'s ' +
        'origin (for example OLLAMA_ORIGINS=http://127.0.0.1:5173 ollama serve); otherwise the browser blocks the requests.',
      'Logprobs need Ollama 0.12.11 or later. n is not supported: requests are sent with n = 1.',
    ],
  },
  lmstudio: {
    name: 'lmstudio',
    label: 'LM Studio',
    baseURL: 'http://localhost:1234/v1',
    logprobs: true,
    maxTopLogprobs: 20,
    logprobsShape: 'openai',
    nAllowed: false,
    maxTokensField: 'max_tokens',
    needsApiKey: false,
    notes: [
      'Enable CORS in LM Studio\'s server settings to call it from a web page.',
      'Its OpenAI-compatible endpoint may return no logprobs (detected per response); n is sent as 1.',
    ],
  },
};

export function getPreset(name: PresetName): TeacherPreset {
  return PRESETS[name];
}

/** What the request actually asks for after the preset's constraints, plus a warning per adjustment. */
export interface ConstrainedRequest {
  n: number;
  /** 0 = do not ask for logprobs. Otherwise logprobs are asked for with this many alternatives (may be 0 → see ask). */
  topLogprobs: number;
  /** Whether logprobs are requested at all. */
  askLogprobs: boolean;
  /** Set when logprobs are not requested because of the preset or config (user-facing). */
  logprobsNote?: string;
  warnings: string[];
}

/**
 * Applies the preset's limits to one call: n clamped to 1 where n > 1 is not allowed, top_logprobs clamped to the
 * preset's maximum, logprobs not requested at all when the preset (or the config's 'off') says so.
 */
export function constrainRequest(
  preset: TeacherPreset,
  want: { n: number; topLogprobs: number; logprobs: 'auto' | 'off' },
): ConstrainedRequest {
  const warnings: string[] = [];
  let n = want.n;
  if (n > 1 && !preset.nAllowed) {
    warnings.push(`${preset.label} does not accept n > 1: sent n = 1 instead of n = ${n}`);
    n = 1;
  }
  if (want.logprobs === 'off') {
    return { n, topLogprobs: 0, askLogprobs: false, logprobsNote: 'logprobs are turned off in the teacher config', warnings };
  }
  if (!preset.logprobs) {
    return {
      n,
      topLogprobs: 0,
      askLogprobs: false,
      logprobsNote: `${preset.label} does not support logprobs: token-level KD is unavailable; sequence-level KD (SFT on the teacher's text) still works`,
      warnings,
    };
  }
  let top = want.topLogprobs;
  if (top > preset.maxTopLogprobs) {
    warnings.push(`${preset.label} returns at most ${preset.maxTopLogprobs} top logprobs: sent ${preset.maxTopLogprobs} instead of ${top}`);
    top = preset.maxTopLogprobs;
  }
  return { n, topLogprobs: top, askLogprobs: true, warnings };
}
