// The Hugging Face side of tokenizer_bench: encodes a JSON Lines corpus with npm `tokenizers`
// (Rust) and prints {"seconds", "tokens", "method", "version"} for the fastest pass after a warm-up.
// Two ways are timed, document by document (`encode`) and all at once (`encodeBatch`, which
// RAYON_NUM_THREADS=1 keeps on one thread), and the faster one is reported.
'use strict';
const fs = require('fs');
const path = require('path');

const npmDir = process.env.DSINFER_NPM_DIR;
const { Tokenizer } = require(path.join(npmDir, 'node_modules', 'tokenizers'));
const version = require(path.join(npmDir, 'node_modules', 'tokenizers', 'package.json')).version;

async function main() {
  const [file, corpus, passesArg] = process.argv.slice(2);
  const passes = Number(passesArg || 4);
  const tok = Tokenizer.fromFile(file);
  const docs = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
  let best = { seconds: Infinity, tokens: 0, method: '' };
  for (const method of ['encode', 'encodeBatch']) {
    for (let pass = 0; pass < passes; ++pass) {
      let tokens = 0;
      const t0 = process.hrtime.bigint();
      if (method === 'encode') {
        for (const d of docs) tokens += (await tok.encode(d, null, { addSpecialTokens: false })).getIds().length;
      } else {
        for (const e of await tok.encodeBatch(docs, { addSpecialTokens: false })) tokens += e.getIds().length;
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (pass > 0 && seconds < best.seconds) best = { seconds, tokens, method };
    }
  }
  process.stdout.write(JSON.stringify({ ...best, version }) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
