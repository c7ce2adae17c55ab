// `helm test` check, run with the chart's own image: the router answers its health endpoint and
// the OpenAI model list. Usage: ROUTER_URL=http://host:port node router-check.mjs
const base = (process.env.ROUTER_URL ?? '').replace(/\/+$/, '');
const timeoutMs = Number(process.env.ROUTER_CHECK_TIMEOUT_MS ?? 60000);
if (!base) {
  console.error('ROUTER_URL is not set');
  process.exit(2);
}

async function get(path) {
  const res = await fetch(base + path, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

// The Service may need a moment after install to list the pod: retry until timeoutMs.
async function check() {
  const health = await get('/health');
  if (health.status !== 200) throw new Error(`GET /health answered ${health.status}: ${health.body}`);
  const models = await get('/v1/models');
  if (models.status !== 200) throw new Error(`GET /v1/models answered ${models.status}: ${models.body}`);
  const list = JSON.parse(models.body);
  if (list.object !== 'list' || !Array.isArray(list.data)) {
    throw new Error(`GET /v1/models is not an OpenAI model list: ${models.body}`);
  }
  return list.data.map((m) => m.id);
}

const deadline = Date.now() + timeoutMs;
for (;;) {
  try {
    const ids = await check();
    console.log(`router at ${base} answers; models: ${ids.length ? ids.join(', ') : '(none yet)'}`);
    process.exit(0);
  } catch (err) {
    if (Date.now() >= deadline) {
      console.error(`router at ${base} does not answer: ${err instanceof Error ? err.message : err}`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
