// A custom eventgate gateway in TypeScript: polls a URL and emits an event whenever its
// HTTP status or the hash of its body changes (a page edited, a service going down or coming
// back, a release file replaced).
//
// It is a plain gRPC server implementing gateways.Eventing (protos/gateways/eventing.proto)
// on @grpc/grpc-js and the stubs `tools/protogen.sh stubs ts` generates into protos/gen/ts
// (copied into src/gen by `npm run stubs`). Any gateway-client (eventgate's, or Argo Events
// v0.10's) drives it: ValidateEventSource for each event source of the ConfigMap, then one
// StartEventSource stream per source, each Event becoming a CloudEvent for the sensors.
//
// To make it yours: replace Config/parseConfig (the fields of one event source and their
// checks) and poll() (what produces the events); the server, the signals and the stream
// handling stay.
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { parse as parseYAML } from "yaml";
import {
  Event,
  EventingServer,
  EventingService,
  EventSource,
  ValidEventSource,
} from "./gen/gateways/eventing";

// Config is one event source:
//
//   url: https://example.com/health   # required, http or https
//   interval: 30s                     # between polls, at least 100ms, default 30s
//   timeout: 10s                      # per request, default 10s
//   headers: {Authorization: "Bearer ..."}
//   on: [status, body]                # what counts as a change, default both
//   includeBody: false                # put the body (as text) in the event
//   emitFirst: false                  # also emit the first poll's result
interface Config {
  url: string;
  intervalMs: number;
  timeoutMs: number;
  headers: Record<string, string>;
  on: Array<"status" | "body">;
  includeBody: boolean;
  emitFirst: boolean;
}

class Invalid extends Error {}

const maxBody = 1 << 20; // bodies are hashed up to 1 MiB

function durationMs(v: unknown): number | undefined {
  if (typeof v === "number") return v * 1000;
  if (typeof v !== "string") return undefined;
  const m = /^((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)$/.exec(v.trim());
  if (!m) return undefined;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  for (const [, n, u] of v.trim().matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) total += Number(n) * unit[u];
  return total;
}

// parseConfig returns the source's config, or throws Invalid listing every problem with its
// field path, which the client shows as the source's reason.
function parseConfig(data: string): Config {
  let raw: unknown;
  try {
    raw = data.trim() === "" ? {} : parseYAML(data);
  } catch (err) {
    throw new Invalid(`config: not YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Invalid("config: must be a mapping with url, interval, ...");
  }
  const r = raw as Record<string, unknown>;
  const problems: string[] = [];
  const known = ["url", "interval", "timeout", "headers", "on", "includeBody", "emitFirst"];
  for (const k of Object.keys(r).sort()) if (!known.includes(k)) problems.push(`${k}: unknown field`);

  let url = "";
  if (r.url === undefined || r.url === null || r.url === "") {
    problems.push("url: required");
  } else if (typeof r.url !== "string") {
    problems.push(`url: must be a string, got ${JSON.stringify(r.url)}`);
  } else {
    try {
      const u = new URL(r.url);
      if (u.protocol !== "http:" && u.protocol !== "https:") problems.push(`url: must be http or https, got ${u.protocol}`);
      url = r.url;
    } catch {
      problems.push(`url: not a URL: ${JSON.stringify(r.url)}`);
    }
  }
  const duration = (field: string, dflt: number, min: number): number => {
    if (r[field] === undefined) return dflt;
    const ms = durationMs(r[field]);
    if (ms === undefined) problems.push(`${field}: not a duration (like 500ms, 30s, 5m): ${JSON.stringify(r[field])}`);
    else if (ms < min) problems.push(`${field}: must be at least ${min}ms, got ${r[field]}`);
    return ms ?? dflt;
  };
  const intervalMs = duration("interval", 30000, 100);
  const timeoutMs = duration("timeout", 10000, 1);

  const headers: Record<string, string> = {};
  if (r.headers !== undefined) {
    if (r.headers === null || typeof r.headers !== "object" || Array.isArray(r.headers)) {
      problems.push("headers: must be a mapping of header names to values");
    } else {
      for (const [k, v] of Object.entries(r.headers)) {
        if (typeof v !== "string") problems.push(`headers.${k}: must be a string`);
        else headers[k] = v;
      }
    }
  }
  let on: Config["on"] = ["status", "body"];
  if (r.on !== undefined) {
    if (!Array.isArray(r.on) || r.on.length === 0) {
      problems.push("on: must be a non-empty list of status, body");
    } else {
      r.on.forEach((v, i) => {
        if (v !== "status" && v !== "body") problems.push(`on[${i}]: must be status or body, got ${JSON.stringify(v)}`);
      });
      on = r.on;
    }
  }
  const flag = (field: string): boolean => {
    if (r[field] === undefined) return false;
    if (typeof r[field] !== "boolean") problems.push(`${field}: must be true or false, got ${JSON.stringify(r[field])}`);
    return r[field] === true;
  };
  const includeBody = flag("includeBody");
  const emitFirst = flag("emitFirst");
  if (problems.length > 0) throw new Invalid(problems.join("; "));
  return { url, intervalMs, timeoutMs, headers, on, includeBody, emitFirst };
}

interface Result {
  status: number; // 0 when the request failed
  error?: string;
  bodyHash: string;
  body?: string;
  contentType?: string;
}

async function fetchOnce(cfg: Config, signal: AbortSignal): Promise<Result> {
  // One controller per request, so that neither the timeout nor the stream's signal
  // collects listeners across polls.
  const request = new AbortController();
  const onStop = () => request.abort();
  signal.addEventListener("abort", onStop, { once: true });
  const timer = setTimeout(() => request.abort(new Error(`no answer within ${cfg.timeoutMs}ms`)), cfg.timeoutMs);
  try {
    const resp = await fetch(cfg.url, { headers: cfg.headers, redirect: "follow", signal: request.signal });
    const body = Buffer.from(await resp.arrayBuffer()).subarray(0, maxBody);
    return {
      status: resp.status,
      bodyHash: createHash("sha256").update(body).digest("hex"),
      body: cfg.includeBody ? body.toString("utf8") : undefined,
      contentType: resp.headers.get("content-type") ?? undefined,
    };
  } catch (err) {
    if (signal.aborted) throw err;
    const e = (request.signal.aborted ? request.signal.reason : err) as Error & { cause?: { code?: string } };
    return { status: 0, error: e.cause?.code ?? e.message, bodyHash: "" };
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onStop);
  }
}

// sleep waits ms, or less when signal aborts.
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

// poll calls emit for every change of the URL's status or body until signal aborts.
async function poll(cfg: Config, signal: AbortSignal, emit: (payload: object) => Promise<void>): Promise<void> {
  let prev: Result | undefined;
  while (!signal.aborted) {
    const cur = await fetchOnce(cfg, signal);
    const changed: string[] = [];
    if (prev && cfg.on.includes("status") && (cur.status !== prev.status || cur.error !== prev.error)) changed.push("status");
    if (prev && cfg.on.includes("body") && cur.bodyHash !== prev.bodyHash) changed.push("body");
    if (changed.length > 0 || (!prev && cfg.emitFirst)) {
      await emit({
        url: cfg.url,
        changed,
        status: cur.status,
        previousStatus: prev?.status,
        error: cur.error,
        bodyHash: cur.bodyHash,
        previousBodyHash: prev?.bodyHash,
        contentType: cur.contentType,
        body: cur.body,
      });
    }
    prev = cur;
    await sleep(cfg.intervalMs, signal);
  }
}

const running = new Set<AbortController>(); // one per open stream
let shuttingDown = false;

const service: EventingServer = {
  validateEventSource(call, callback) {
    try {
      parseConfig(call.request.data);
      callback(null, ValidEventSource.fromPartial({ isValid: true }));
    } catch (err) {
      if (!(err instanceof Invalid)) return callback(err as Error);
      callback(null, ValidEventSource.fromPartial({ isValid: false, reason: err.message }));
    }
  },

  // Acknowledged delivery is optional: a gateway that answers UNIMPLEMENTED here gets
  // StartEventSource calls instead, as v0.10 gateways do.
  streamEventSource(call) {
    call.emit("error", { code: grpc.status.UNIMPLEMENTED, details: "StreamEventSource is not implemented: use StartEventSource" });
  },

  startEventSource(call) {
    const source: EventSource = call.request;
    const fail = (code: grpc.status, details: string) => call.emit("error", { code, details });
    let cfg: Config;
    try {
      cfg = parseConfig(source.data);
    } catch (err) {
      return fail(grpc.status.INVALID_ARGUMENT, (err as Error).message);
    }
    if (shuttingDown) return fail(grpc.status.UNAVAILABLE, "gateway server is shutting down");
    const stop = new AbortController();
    running.add(stop);
    // The client cancels when the source is removed or changed: stop polling at once.
    call.on("cancelled", () => stop.abort());
    console.log(`event source started: ${source.name} polling ${cfg.url} every ${cfg.intervalMs}ms`);
    let seq = 0;
    const emit = async (payload: object) => {
      const body = Buffer.from(JSON.stringify(payload));
      const ev = Event.fromPartial({
        name: source.name,
        payload: body,
        id: `${source.id || source.name}-${Date.now()}-${seq++}`,
        time: new Date(),
        contentType: "application/json",
      });
      // Wait while the client is not reading, rather than buffering without bound.
      if (!call.write(ev)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            call.off("drain", done);
            stop.signal.removeEventListener("abort", done);
            resolve();
          };
          call.once("drain", done);
          stop.signal.addEventListener("abort", done, { once: true });
        });
      }
    };
    poll(cfg, stop.signal, emit)
      .catch((err) => { if (!stop.signal.aborted) console.error(`event source ${source.name}: ${err}`); })
      .finally(() => {
        running.delete(stop);
        console.log(`event source stopped: ${source.name}`);
        if (shuttingDown) fail(grpc.status.UNAVAILABLE, "gateway server is shutting down");
        else if (!call.cancelled) call.end();
      });
  },
};

function main() {
  const host = process.env.GATEWAY_SERVER_HOST || "0.0.0.0";
  const port = process.env.GATEWAY_SERVER_PORT || "9330";
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const server = new grpc.Server();
  server.addService(EventingService, service);
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      console.error(`httppoll: cannot listen on ${address}: ${err.message}`);
      process.exit(1);
    }
    console.log(`httppoll gateway serving on ${address}`);
  });
  const shutdown = (sig: string) => {
    console.log(`${sig}: stopping`);
    shuttingDown = true;
    for (const stop of running) stop.abort(); // ends every stream with UNAVAILABLE
    const force = setTimeout(() => server.forceShutdown(), 5000);
    server.tryShutdown(() => { clearTimeout(force); console.log("stopped"); });
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main();
