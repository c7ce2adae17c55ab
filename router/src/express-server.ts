// An http.Server for an Express 5 app whose requests and responses are created with the app's
// prototypes already in place.
//
// Express gives every request and response its app's prototype with Object.setPrototypeOf
// (expressjs/express#5998). On V8 an object whose prototype was changed that way outlives the
// young-generation GC: a minimal Express app kept about 15 KB per request past every scavenge,
// a plain node:http server under 0.2 KB (sampling heap profile without minor-GC garbage, 500
// req/s; docs/benchmarks.md). Copying and promoting those objects is what made the GC pauses
// long. When the server already creates req and res with the app's prototypes, Express's
// setPrototypeOf finds the prototype it wants and changes nothing.
import { createServer, IncomingMessage, ServerResponse, type RequestListener, type Server } from 'node:http';
import type { Express } from 'express';

/** A constructor that builds `base` instances whose prototype is `proto`. */
function bornWith<T extends new (...args: never[]) => object>(base: T, proto: object): T {
  function Born(...args: unknown[]): object {
    return Reflect.construct(base, args, Born) as object;
  }
  Born.prototype = proto;
  return Born as unknown as T;
}

/**
 * `createServer` for `app`. `listener` is what handles each request (default: the app itself);
 * a listener that serves some routes without Express still gets the same request objects.
 */
export function createExpressServer(app: Express, listener: RequestListener = app): Server {
  return createServer(
    {
      IncomingMessage: bornWith<typeof IncomingMessage>(IncomingMessage, app.request),
      ServerResponse: bornWith<typeof ServerResponse>(ServerResponse, app.response),
    },
    listener,
  );
}
