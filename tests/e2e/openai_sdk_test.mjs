// End-to-end: the real `dsinfer serve` on 127.0.0.1, driven by the official OpenAI Node SDK and by
// raw HTTP for what the SDK would refuse to send. Every loop is bounded in count and time, and
// every server this starts is stopped (SIGTERM, which must drain and exit 0).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import OpenAI from 'openai';

// mode 'router': the same tests against `dsinfer router` in front of one prefill and one decode
// instance (disaggregated serving), where the engine's metrics are the instances'.
const [bin, modelDir, mode = 'serve'] = process.argv.slice(2);
const MODEL = 'tiny';
const servers = [];
const guard = setTimeout(() => { console.error('FAIL: e2e test over its 300 s budget'); cleanup(); process.exit(1); }, 300_000);

function cleanup() { for (const s of servers) if (s.proc.exitCode === null) s.proc.kill('SIGKILL'); }

async function startServer(extra = []) {
  return startProcess(['serve', '--model', modelDir, '--host', '127.0.0.1', '--port', '0', '--served-model-name', MODEL,
                       ...extra]);
}

async function startProcess(args) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const server = { proc, url: null, exited: new Promise(r => proc.on('exit', (code, sig) => r({ code, sig }))) };
  servers.push(server);
  server.url = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('server did not start in 60 s')), 60_000);
    proc.stdout.on('data', d => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    proc.on('exit', code => { clearTimeout(t); reject(new Error(`server exited early (${code}): ${out}`)); });
  });
  return server;
}

async function stopServer(server) {
  server.proc.kill('SIGTERM');
  const r = await Promise.race([server.exited, new Promise(r => setTimeout(() => r({ code: 'timeout' }), 30_000))]);
  assert.equal(r.code, 0, `server exit after SIGTERM: ${JSON.stringify(r)}`);
}

async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = name => {
    const m = text.match(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm'));
    return m ? Number(m[1]) : NaN;
  };
  return { text, get };
}

async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise(r => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

let main, engines;
if (mode === 'router') {
  const decode = await startServer(['--kv-cache-gb', '0.5', '--role', 'decode']);
  const prefill = await startServer(['--kv-cache-gb', '0.5', '--role', 'prefill']);
  main = await startProcess(['router', '--prefill', prefill.url, '--decode', decode.url, '--host', '127.0.0.1',
                             '--port', '0', '--poll-interval', '0.05']);
  engines = [decode, prefill];
  await waitFor(async () => (await fetch(`${main.url}/health`)).status === 200, 10_000, 'the router to see its instances');
} else {
  main = await startServer(['--kv-cache-gb', '0.5']);
  engines = [main];
}
console.log(`e2e against ${mode === 'router' ? 'dsinfer router (1 prefill + 1 decode instance)' : 'dsinfer serve'}`);
const client = new OpenAI({ baseURL: `${main.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });

function checkUsage(u) {
  assert.ok(u.prompt_tokens > 0);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.equal(typeof u.prompt_tokens_details.cached_tokens, 'number');
  assert.equal(u.prompt_cache_hit_tokens, u.prompt_tokens_details.cached_tokens);
  assert.equal(u.prompt_cache_hit_tokens + u.prompt_cache_miss_tokens, u.prompt_tokens);
}

await test('models list', async () => {
  const page = await client.models.list();
  assert.deepEqual(page.data.map(m => m.id), [MODEL]);
  assert.equal((await fetch(`${main.url}/health`)).status, 200);
});

await test('chat, non-streaming', async () => {
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there!' }],
    max_tokens: 6, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  checkUsage(r.usage);
  assert.ok(r.usage.completion_tokens <= 6 && r.usage.completion_tokens >= 1);
});

await test('chat, streaming with include_usage equals non-streaming', async () => {
  const body = { model: MODEL, messages: [{ role: 'user', content: 'Count to five.' }], max_tokens: 7, temperature: 0 };
  const whole = await client.chat.completions.create(body);
  const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    if (c.usage) { usage = c.usage; assert.equal(c.choices.length, 0); continue; }
    assert.equal(c.object, 'chat.completion.chunk');
    text += c.choices[0].delta.content ?? '';
    finish = c.choices[0].finish_reason ?? finish;
  }
  assert.ok(chunks >= 2);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.ok(usage, 'the last chunk carries usage');
  checkUsage(usage);
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
});

await test('completions, non-streaming and streaming, logprobs, n > 1, seed', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: 'The capital of France is', max_tokens: 5,
                                              temperature: 0, logprobs: 2 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].logprobs.tokens.length, r.usage.completion_tokens);
  assert.equal(r.choices[0].logprobs.top_logprobs[0] && Object.keys(r.choices[0].logprobs.top_logprobs[0]).length, 2);
  checkUsage(r.usage);
  const s = await client.completions.create({ model: MODEL, prompt: 'The capital of France is', max_tokens: 5,
                                              temperature: 0, stream: true });
  let text = '';
  for await (const c of s) text += c.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
  const body = { model: MODEL, prompt: 'Tell a story', max_tokens: 4, temperature: 1, n: 3, seed: 42, ignore_eos: true };
  const a = await client.completions.create(body), b = await client.completions.create(body);
  assert.equal(a.choices.length, 3);
  assert.deepEqual(a.choices.map(c => c.text), b.choices.map(c => c.text));
  assert.equal(a.usage.completion_tokens, 12);
});

await test('stop strings are never returned', async () => {
  const base = { model: MODEL, prompt: 'Stop test', max_tokens: 12, temperature: 0, ignore_eos: true };
  const full = (await client.completions.create(base)).choices[0].text;
  assert.ok(full.length >= 4);
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
  const cut = full.slice(0, full.indexOf(stop));
  const r = await client.completions.create({ ...base, stop: [stop] });
  assert.equal(r.choices[0].text, cut);
  assert.equal(r.choices[0].finish_reason, 'stop');
  let streamed = '';
  for await (const c of await client.completions.create({ ...base, stop: [stop], stream: true }))
    streamed += c.choices[0]?.text ?? '';
  assert.equal(streamed, cut);
});

await test('64 concurrent streaming clients each get exactly their solo tokens', async () => {
  const prompts = Array.from({ length: 64 }, (_, i) => `Request ${i}: describe the number ${i * 7 + 3}.`);
  const run = async p => {
    const s = await client.completions.create({ model: MODEL, prompt: p, max_tokens: 8, temperature: 0,
                                                ignore_eos: true, logprobs: 0, stream: true });
    const toks = [];
    let text = '';
    for await (const c of s) {
      if (!c.choices.length) continue;
      text += c.choices[0].text;
      if (c.choices[0].logprobs) toks.push(...c.choices[0].logprobs.tokens);
    }
    return { text, toks };
  };
  const solo = [];
  for (const p of prompts) solo.push(await run(p));
  const together = await Promise.all(prompts.map(run));
  let mismatches = 0;
  for (let i = 0; i < prompts.length; i++) {
    assert.equal(solo[i].toks.length, 8);
    if (JSON.stringify(together[i]) !== JSON.stringify(solo[i])) mismatches++;
  }
  assert.equal(mismatches, 0, `${mismatches} of 64 clients got other tokens batched than alone`);
  const steps = (await metrics(engines[0].url)).text.match(/^dsinfer_step_tokens_bucket\{[^}]*le="1"\} (\d+)/m);
  assert.ok(steps, 'metrics has the tokens-per-step histogram');
});

await test('a repeated prompt reports cached tokens', async () => {
  const long = 'In a quiet village by the sea there lived an old fisherman who told stories. '.repeat(12);
  const body = { model: MODEL, messages: [{ role: 'user', content: long }], max_tokens: 2, temperature: 0 };
  const first = await client.chat.completions.create(body);
  const second = await client.chat.completions.create(body);
  assert.ok(first.usage.prompt_tokens >= 128, `prompt has ${first.usage.prompt_tokens} tokens`);
  const p = second.usage.prompt_tokens;
  const expect = p % 64 === 0 ? p - 1 : Math.floor(p / 64) * 64;  // a whole cached prompt recomputes its last token
  assert.equal(second.usage.prompt_tokens_details.cached_tokens, expect);
  assert.equal(second.usage.prompt_cache_hit_tokens, expect);
  assert.equal(second.usage.prompt_cache_miss_tokens, second.usage.prompt_tokens - expect);
  assert.equal(second.choices[0].message.content, first.choices[0].message.content);
});

await test('at least 50 malformed requests get their documented 4xx; the server keeps serving', async () => {
  const chat = `${main.url}/v1/chat/completions`, comp = `${main.url}/v1/completions`;
  const msgs = [{ role: 'user', content: 'hi' }];
  const c = extra => JSON.stringify({ model: MODEL, messages: msgs, max_tokens: 2, ...extra });
  const p = extra => JSON.stringify({ model: MODEL, prompt: 'hi', max_tokens: 2, ...extra });
  const cases = [
    [chat, '{bad json', 400], [chat, '', 400], [chat, '[]', 400], [chat, '"text"', 400], [chat, 'null', 400],
    [chat, JSON.stringify({ messages: msgs }), 400, 'model'],
    [chat, c({ model: 5 }), 400, 'model'], [chat, c({ model: 'no-such-model' }), 400, 'model'],
    [chat, JSON.stringify({ model: MODEL }), 400, 'messages'], [chat, c({ messages: 'hi' }), 400, 'messages'],
    [chat, c({ messages: [] }), 400, 'messages'], [chat, c({ messages: [{ content: 'x' }] }), 400, 'messages'],
    [chat, c({ messages: [{ role: 'user', content: 5 }] }), 400, 'messages'], [chat, c({ messages: [5] }), 400, 'messages'],
    [chat, c({ temperature: 'hot' }), 400, 'temperature'], [chat, c({ temperature: -1 }), 400, 'temperature'],
    [chat, c({ temperature: 3 }), 400, 'temperature'], [chat, c({ top_p: 0 }), 400, 'top_p'],
    [chat, c({ top_p: 1.5 }), 400, 'top_p'], [chat, c({ top_k: -5 }), 400, 'top_k'], [chat, c({ top_k: 'a' }), 400, 'top_k'],
    [chat, c({ min_p: 2 }), 400, 'min_p'], [chat, c({ max_tokens: 0 }), 400, 'max_tokens'],
    [chat, c({ max_tokens: -1 }), 400, 'max_tokens'], [chat, c({ max_tokens: '10' }), 400, 'max_tokens'],
    [chat, c({ max_tokens: 1.5 }), 400, 'max_tokens'], [chat, c({ max_tokens: 10_000_000 }), 400, 'max_tokens'],
    [chat, c({ n: 0 }), 400, 'n'], [chat, c({ n: 1000 }), 400, 'n'], [chat, c({ stream: 'yes' }), 400, 'stream'],
    [chat, c({ stop: 5 }), 400, 'stop'], [chat, c({ stop: [1] }), 400, 'stop'], [chat, c({ stop: [''] }), 400],
    [chat, c({ logprobs: 'x' }), 400, 'logprobs'], [chat, c({ logprobs: true, top_logprobs: 50 }), 400, 'top_logprobs'],
    [chat, c({ top_logprobs: 3 }), 400, 'top_logprobs'], [chat, c({ presence_penalty: 5 }), 400, 'presence_penalty'],
    [chat, c({ frequency_penalty: -3 }), 400, 'frequency_penalty'], [chat, c({ repetition_penalty: 0 }), 400, 'repetition_penalty'],
    [chat, c({ seed: 'abc' }), 400, 'seed'], [chat, c({ stream_options: { include_usage: true } }), 400, 'stream_options'],
    [chat, c({ stream: true, stream_options: 3 }), 400, 'stream_options'], [chat, c({ stop_token_ids: [-1] }), 400, 'stop_token_ids'],
    [comp, JSON.stringify({ model: MODEL }), 400, 'prompt'], [comp, p({ prompt: 5 }), 400, 'prompt'],
    [comp, p({ prompt: [] }), 400, 'prompt'], [comp, p({ prompt: ['a', 'b'] }), 400, 'prompt'],
    [comp, p({ prompt: [999999] }), 400, 'prompt'], [comp, p({ prompt: [-4] }), 400, 'prompt'],
    [comp, p({ prompt: '' }), 400, 'prompt'], [comp, p({ echo: true }), 400, 'echo'], [comp, p({ logprobs: 10 }), 400, 'logprobs'],
    [comp, p({ suffix: 'x' }), 400, 'suffix'], [comp, p({ max_tokens: 0 }), 400, 'max_tokens'],
    [comp, 'x'.repeat(9 << 20), 413], [`${main.url}/v1/nothing`, '{}', 404],
  ];
  assert.ok(cases.length >= 50);
  const failures = [];
  for (const [url, body, status, param] of cases) {
    let r, text;
    try {
      r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
                             signal: AbortSignal.timeout(10_000) });
      text = await r.text();
    } catch (e) {
      failures.push(`${body.slice(0, 80)} -> ${e.message}`);
      continue;
    }
    let j = null;
    try { j = JSON.parse(text); } catch {}
    const ok = r.status === status && j && j.error && typeof j.error.message === 'string' && j.error.type &&
               (param === undefined || j.error.param === param);
    if (!ok) failures.push(`${body.slice(0, 80)} -> ${r.status} ${text.slice(0, 200)}`);
  }
  assert.deepEqual(failures, []);
  const r = await client.chat.completions.create({ model: MODEL, messages: msgs, max_tokens: 2 });
  assert.equal(r.choices.length, 1);
});

await test('a full queue answers 429 with Retry-After', async () => {
  const small = await startServer(['--max-running-requests', '1', '--max-queued-requests', '1', '--max-batch-tokens', '64']);
  try {
    const body = JSON.stringify({ model: MODEL, prompt: 'busy', max_tokens: 400, ignore_eos: true });
    const ctl = new AbortController();
    const inflight = [0, 1, 2, 3].map(() => fetch(`${small.url}/v1/completions`, { method: 'POST', body, signal: ctl.signal })
      .then(r => ({ status: r.status, retry: r.headers.get('retry-after') }), () => ({ status: 'aborted' })));
    const first = await Promise.race([...inflight, new Promise(r => setTimeout(() => r({ status: 'none' }), 20_000))]);
    assert.equal(first.status, 429);
    assert.ok(Number(first.retry) >= 1);
    ctl.abort();
    await Promise.all(inflight);
  } finally {
    await stopServer(small);
  }
});

await test('a disconnect storm leaves zero KV blocks in use', async () => {
  const body = { model: MODEL, prompt: 'A long answer, please: ', max_tokens: 300, ignore_eos: true, stream: true };
  const storm = [];
  for (let i = 0; i < 48; i++) {
    storm.push((async () => {
      if (i % 3 === 0) {  // gone before the first byte
        const ctl = new AbortController();
        const f = fetch(`${main.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...body, prompt: body.prompt + i }),
                                                         signal: ctl.signal }).catch(() => {});
        setTimeout(() => ctl.abort(), 5 + i);
        await f;
        return;
      }
      const s = await client.completions.create({ ...body, prompt: body.prompt + i });
      let n = 0;
      for await (const _ of s) if (++n >= 1 + (i % 5)) break;  // leaving the loop aborts the request
    })());
  }
  await Promise.all(storm);
  for (const e of engines) {
    await waitFor(async () => {
      const m = await metrics(e.url);
      return m.get('dsinfer_kv_blocks_used') === 0 && m.get('dsinfer_requests_running') === 0 &&
             m.get('dsinfer_requests_waiting') === 0;
    }, 15_000, `dsinfer_kv_blocks_used 0 on ${e.url} after the disconnect storm`);
  }
  const m = await metrics(engines[0].url);
  assert.ok(m.get('dsinfer_kv_blocks_total') > 0);
  assert.ok(/^dsinfer_requests_finished_total\{[^}]*reason="abort"\} [1-9]/m.test(m.text), 'aborts are counted');
  const r = await client.completions.create({ model: MODEL, prompt: 'still alive?', max_tokens: 2 });
  assert.equal(r.choices.length, 1);
});

await test('SIGTERM drains: an in-flight stream ends with [DONE] and the server exits 0', async () => {
  const s = await client.completions.create({ model: MODEL, prompt: 'drain me', max_tokens: 40, ignore_eos: true,
                                              temperature: 0, stream: true });
  let n = 0, finish = null;
  for await (const c of s) {
    if (n++ === 0) main.proc.kill('SIGTERM');
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'length');
  const r = await Promise.race([main.exited, new Promise(r => setTimeout(() => r({ code: 'timeout' }), 30_000))]);
  assert.equal(r.code, 0);
});

// The instances behind a router drain and exit 0 too.
await test('instances behind the router stop cleanly', async () => {
  for (const e of engines) if (e !== main) await stopServer(e);
});
clearTimeout(guard);
cleanup();
const failed = results.filter(r => !r[1]);
console.log(`${results.length - failed.length}/${results.length} e2e tests passed`);
process.exit(failed.length ? 1 : 0);
