// HTTP surface of the simulator: the vLLM OpenAI endpoints plus /tokenize, /health, /metrics and /sim/*.
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { SimEngine, TokenSink } from './engine.js';
import {
  errorBody,
  fullResponse,
  responseId,
  roleChunk,
  sse,
  SSE_DONE,
  tokenChunk,
  usage,
  usageChunk,
  type ApiKind,
  type ResponseMeta,
} from './openai-format.js';
import { parseRequest, RequestError } from './openai-request.js';
import type { SimRequest } from './requests-log.js';
import { applyChatTemplate, isTokenIdList, tokenizeText, type ChatMessage } from './tokenizer.js';

function sendError(res: Response, status: number, message: string, param: string | null = null): void {
  res.status(status).json(errorBody(status, message, param));
}

/** Writes and waits for drain, so a slow client slows generation instead of growing buffers. */
function write(res: Response, data: string): Promise<void> {
  if (res.write(data)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export function createApp(engine: SimEngine): express.Express {
  const cfg = engine.cfg;
  const app = express();
  app.disable('x-powered-by');
  // Parse every POST body as JSON whatever its content type, like FastAPI does for vLLM.
  app.use(express.json({ limit: '64mb', type: () => true }));

  app.get('/health', (_req, res) => {
    if (!engine.ready) return sendError(res, 503, 'engine is starting');
    res.status(200).end();
  });

  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', engine.metrics.registry.contentType);
    res.send(await engine.metrics.registry.metrics());
  });

  app.get('/v1/models', (_req, res) => {
    res.json({
      object: 'list',
      data: [
        {
          id: cfg.model,
          object: 'model',
          created: Math.floor(Date.now() / 1000),
          owned_by: 'vllm',
          root: cfg.model,
          parent: null,
          max_model_len: cfg.maxModelLen,
          permission: [
            {
              id: `modelperm-${randomUUID().replace(/-/g, '').slice(0, 16)}`,
              object: 'model_permission',
              created: Math.floor(Date.now() / 1000),
              allow_create_engine: false,
              allow_sampling: true,
              allow_logprobs: true,
              allow_search_indices: false,
              allow_view: true,
              allow_fine_tuning: false,
              organization: '*',
              group: null,
              is_blocking: false,
            },
          ],
        },
      ],
    });
  });

  app.post('/tokenize', (req, res) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    if (b.model !== undefined && b.model !== null && b.model !== cfg.model) {
      return sendError(res, 404, `The model \`${String(b.model)}\` does not exist.`);
    }
    let tokens: number[];
    if (Array.isArray(b.messages)) {
      tokens = applyChatTemplate(b.messages as ChatMessage[], b.add_generation_prompt !== false);
    } else if (typeof b.prompt === 'string') {
      tokens = tokenizeText(b.prompt);
    } else if (isTokenIdList(b.prompt)) {
      tokens = [...b.prompt];
    } else {
      return sendError(res, 400, 'tokenize needs a prompt (string or token ids) or messages');
    }
    res.json({ count: tokens.length, max_model_len: cfg.maxModelLen, tokens, token_strs: null });
  });

  const completions = (kind: ApiKind) => async (req: Request, res: Response) => {
    const requestId = req.get('x-request-id') ?? randomUUID();
    res.set('X-Request-Id', requestId);
    if (!engine.ready) return sendError(res, 503, 'engine is starting');
    let parsed;
    let leg;
    try {
      parsed = parseRequest(kind, req.body, {
        servedModel: cfg.model,
        maxModelLen: cfg.maxModelLen,
        defaultMaxTokens: cfg.defaultMaxTokens,
      });
      leg = engine.classify(parsed);
    } catch (e) {
      if (e instanceof RequestError) return sendError(res, e.status, e.message, e.param);
      throw e;
    }
    const entry: SimRequest = engine.log.add({
      id: requestId,
      path: req.path,
      leg: 'direct',
      kvSource: 'local',
      model: parsed.model,
      promptTokens: parsed.promptTokens.length,
      maxTokens: parsed.maxTokens,
      stream: parsed.stream,
      status: 0,
      ts: Date.now(),
    });
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });

    const fault = engine.faults.next();
    if (fault.kind === 'fail') {
      engine.metrics.faultsInjected.inc({ kind: 'fail' });
      entry.status = fault.status;
      entry.error = 'injected failure';
      return sendError(res, fault.status, 'injected failure (sim fault)');
    }
    if (fault.kind === 'hang') {
      engine.metrics.faultsInjected.inc({ kind: 'hang' });
      entry.error = 'injected hang';
      await new Promise<void>((resolve) =>
        abort.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
      entry.status = 499;
      return;
    }
    const { dropAfterChunks, stallAfterChunks } = engine.faults.current;

    const meta: ResponseMeta = {
      kind,
      id: responseId(kind, requestId),
      created: Math.floor(Date.now() / 1000),
      model: parsed.model,
    };
    let chunks = 0;
    let started = false;
    let cut = false;
    // Applies drop/stall faults at chunk boundaries; returns false once the stream is cut.
    const chunkFault = async (): Promise<boolean> => {
      if (dropAfterChunks !== null && chunks >= dropAfterChunks) {
        engine.metrics.faultsInjected.inc({ kind: 'drop' });
        entry.error = 'injected drop';
        cut = true;
        // Flush what was sent, then end the socket mid-body (no terminating chunk, no [DONE]).
        res.socket?.destroySoon();
        abort.abort();
        return false;
      }
      if (stallAfterChunks !== null && chunks >= stallAfterChunks) {
        engine.metrics.faultsInjected.inc({ kind: 'stall' });
        entry.error = 'injected stall';
        cut = true;
        await new Promise<void>((resolve) =>
          abort.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        return false;
      }
      return true;
    };
    const sink: TokenSink = {
      token: async (text, _index, finish) => {
        if (!parsed.stream || cut) return;
        if (!started) {
          started = true;
          res.status(200).set({
            'Content-Type': 'text/event-stream; charset=utf-8',
            'Cache-Control': 'no-cache',
            Connection: 'keep-alive',
          });
          res.flushHeaders();
          if (kind === 'chat') {
            if (!(await chunkFault())) return;
            await write(res, sse(roleChunk(meta)));
            chunks++;
          }
        }
        if (!(await chunkFault())) return;
        // system_fingerprint rides on the last chunk before [DONE]: this one unless a usage chunk follows
        await write(res, sse(tokenChunk(meta, text, finish, finish !== null && !parsed.includeUsage)));
        chunks++;
      },
    };

    try {
      const result = await engine.run(parsed, leg, { requestId, signal: abort.signal, entry }, sink);
      entry.kvTransferParams = result.kvTransferParams;
      if (cut) {
        entry.status = 499;
        return;
      }
      const u = usage(parsed.promptTokens.length, result.outputTokens);
      if (parsed.stream) {
        if (parsed.includeUsage) await write(res, sse(usageChunk(meta, u)));
        res.end(SSE_DONE);
      } else {
        if (dropAfterChunks !== null) {
          engine.metrics.faultsInjected.inc({ kind: 'drop' });
          entry.error = 'injected drop';
          entry.status = 499;
          res.socket?.destroy();
          return;
        }
        res.json(fullResponse(meta, result.text, result.finish, u, result.kvTransferParams));
      }
      entry.status = 200;
    } catch (e) {
      const err = e as Error;
      if (err.name === 'AbortError' || abort.signal.aborted) {
        entry.status = 499;
        return;
      }
      const status = e instanceof RequestError ? e.status : 500;
      const param = e instanceof RequestError ? e.param : null;
      entry.status = status;
      entry.error = err.message;
      engine.logger.warn('request failed', { requestId, status, error: err.message });
      if (!started) return sendError(res, status, err.message, param);
      // Streaming already began: an error event (then [DONE], as vLLM's generators do), never a finish_reason.
      res.end(sse(errorBody(status, err.message, param)) + SSE_DONE);
    }
  };
  app.post('/v1/completions', completions('completion'));
  app.post('/v1/chat/completions', completions('chat'));

  app.get('/sim/requests', (_req, res) => res.json(engine.log.list()));
  app.get('/sim/faults', (_req, res) => res.json(engine.faults.current));
  app.post('/sim/faults', (req, res) => {
    const problem = engine.faults.update((req.body ?? {}) as Record<string, unknown>);
    if (problem) return sendError(res, 400, problem);
    res.json(engine.faults.current);
  });
  app.post('/sim/reset', (_req, res) => {
    engine.reset();
    res.json({ ok: true });
  });

  app.use((_req: Request, res: Response) => sendError(res, 404, 'Not Found'));
  // Body-parser failures (bad JSON, too large) and anything unexpected, in OpenAI error shape.
  app.use(
    (err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
      if (res.headersSent) return res.end();
      if (err.type === 'entity.parse.failed') return sendError(res, 400, `invalid JSON body: ${err.message}`);
      const status = err.status && err.status >= 400 && err.status < 600 ? err.status : 500;
      sendError(res, status, err.message);
    },
  );
  return app;
}
