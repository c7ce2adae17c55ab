/* global process, console, fetch, AbortSignal */
// Run inside a client pod on the real node (`node --input-type=module -e`): requests to the router,
// direct and DPD, streamed and not; prints one JSON line {case: {status, done?, path?}}. The path
// is read from the router's own router_requests_total (exact while one router answers).
// env: ROUTER (the Service URL) or ROUTER_POD (one router pod's IP), MODEL, ROUNDS (default 1).
const base = process.env.ROUTER_POD ? `http://${process.env.ROUTER_POD}:8000` : process.env.ROUTER;
const model = process.env.MODEL;
const rounds = Number(process.env.ROUNDS ?? 1);
const LONG = 'lorem ipsum dolor sit amet '.repeat(60); // ~400 estimated tokens: over the threshold of 64
const SHORT = 'Hello there';

async function paths() {
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10000) })).text();
  const sum = (path) =>
    text
      .split('\n')
      .filter((l) => l.startsWith('router_requests_total{') && l.includes(`path="${path}"`))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return { direct: sum('direct'), dpd: sum('dpd') };
}

async function one(prompt, stream) {
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: 8, stream }),
    signal: AbortSignal.timeout(60000),
  });
  const body = await res.text();
  const out = { status: res.status };
  if (stream) out.done = body.trimEnd().endsWith('data: [DONE]') && !body.includes('"error"');
  if (res.status !== 200) out.body = body.slice(0, 300);
  return out;
}

const result = {};
for (let i = 0; i < rounds; i++) {
  for (const [name, prompt, stream] of [
    ['direct-json', SHORT, false],
    ['direct-stream', SHORT, true],
    ['dpd-json', LONG, false],
    ['dpd-stream', LONG, true],
  ]) {
    const before = await paths();
    let r;
    try {
      r = await one(prompt, stream);
    } catch (e) {
      r = { status: 0, error: String(e) };
    }
    const after = await paths();
    if (!process.env.ROUTER_POD && rounds === 1) {
      r.path = after.dpd > before.dpd ? 'dpd' : after.direct > before.direct ? 'direct' : 'none';
    }
    // keep the worst outcome of the rounds
    if (!result[name] || r.status !== 200) result[name] = r;
  }
}
console.log(JSON.stringify(result));
