// Hugging Face's own tokenizer (npm `tokenizers`, the Rust implementation) as a filter, for the
// exactness tests and the benchmark:
//   node hf_reference.js encode TOKENIZER_JSON [special] < strings.jsonl > ids.jsonl
//   node hf_reference.js decode TOKENIZER_JSON [skip] < ids.jsonl > strings.jsonl
// `special` applies the post-processor (what it adds around the text, e.g. BOS). Each input line
// is one JSON value; each output line is one JSON value. The package is loaded
// from $DSINFER_NPM_DIR/node_modules (the test installs it there).
'use strict';
const fs = require('fs');
const path = require('path');

const npmDir = process.env.DSINFER_NPM_DIR;
if (!npmDir) throw new Error('set DSINFER_NPM_DIR to the folder holding node_modules/tokenizers');
const { Tokenizer } = require(path.join(npmDir, 'node_modules', 'tokenizers'));

async function main() {
  const [mode, file, flag] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(file);
  const lines = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.length > 0);
  const out = [];
  for (const line of lines) {
    const value = JSON.parse(line);
    if (mode === 'encode') {
      const enc = await tok.encode(value, null, { addSpecialTokens: flag === 'special' });
      out.push(JSON.stringify(Array.from(enc.getIds())));
    } else if (mode === 'decode') {
      out.push(JSON.stringify(await tok.decode(value, flag === 'skip')));
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  }
  fs.writeFileSync(1, out.join('\n') + (out.length ? '\n' : ''));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
